#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd, kubectl) from the Go
# module proxy into bin/k8s/<version>-linux-amd64/. Prebuilt archives cannot be
# downloaded here, so they are compiled from the pinned throwaway modules in
# hack/envtest/. A binary that is already present is not rebuilt.
# Prints the assets directory on stdout (for KUBEBUILDER_ASSETS).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
K8S_VERSION="${K8S_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.7.3}"
OS_ARCH="$(go env GOOS)-$(go env GOARCH)"
DEST="${ROOT}/bin/k8s/${K8S_VERSION}-${OS_ARCH}"
mkdir -p "${DEST}"

log() { echo "setup-envtest: $*" >&2; }

k8s_ldflags() {
  local v="v${K8S_VERSION}"
  local flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X ${pkg}.gitVersion=${v}"
    flags+=" -X ${pkg}.gitMajor=${K8S_VERSION%%.*}"
    local minor="${K8S_VERSION#*.}"
    flags+=" -X ${pkg}.gitMinor=${minor%%.*}"
    flags+=" -X ${pkg}.gitTreeState=clean"
    flags+=" -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
  done
  echo "${flags}"
}

build() { # build <name> <module dir> <package> [ldflags]
  local name="$1" dir="$2" pkg="$3" ldflags="${4:-"-s -w"}"
  if [[ -x "${DEST}/${name}" ]]; then
    return 0
  fi
  log "building ${name} from ${pkg} (a cold build takes a few minutes)"
  local start=${SECONDS}
  (cd "${ROOT}/hack/envtest/${dir}" &&
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "${ldflags}" -o "${DEST}/${name}.tmp" "${pkg}")
  mv "${DEST}/${name}.tmp" "${DEST}/${name}"
  log "built ${name} in $((SECONDS - start))s"
}

build etcd etcd go.etcd.io/etcd/server/v3 "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v${ETCD_VERSION}"
build kube-apiserver kubernetes k8s.io/kubernetes/cmd/kube-apiserver "$(k8s_ldflags)"
build kubectl kubernetes k8s.io/kubernetes/cmd/kubectl "$(k8s_ldflags)"

echo "${DEST}"
