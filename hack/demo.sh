#!/usr/bin/env bash
# make demo: a local control plane, the operator and the samples. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KUBEBUILDER_ASSETS="$(hack/setup-envtest.sh)"
export KUBEBUILDER_ASSETS
exec go run ./hack/demo "$@"
