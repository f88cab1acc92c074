# chatgateway-operator — see README.md. `make help` lists the targets.

IMG ?= ghcr.io/chatgateway/chatgateway-operator:dev
K8S_VERSION ?= 1.37.2
LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_TOOLS_VERSION ?= v0.23.0
PROMTOOL_VERSION ?= v0.316.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
PROMTOOL ?= $(LOCALBIN)/promtool
# The Prometheus server, same version as promtool: the end-to-end test scrapes the gateway with it.
PROMETHEUS ?= $(LOCALBIN)/prometheus
OAUTH2_PROXY_VERSION ?= v7.15.6
OAUTH2_PROXY ?= $(LOCALBIN)/oauth2-proxy
# kubectl is built from source with the envtest binaries; its built-in kustomize renders config/.
KUBECTL ?= $(LOCALBIN)/k8s/$(K8S_VERSION)-linux-amd64/kubectl
KUSTOMIZE ?= $(KUBECTL) kustomize
# test/e2e waits out the rendered alerts' five-minute "for" on a real Prometheus, which with
# the rest of that package can outlast go test's default 10m timeout on a slow machine.
GO_TEST_FLAGS ?= -count=1 -timeout 25m
export GOTOOLCHAIN = local

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC into config/.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd:allowDangerousTypes=false paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	@# Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, generated from its Go
	@# types, for envtest (tests install them part-way to see the operator pick them up).
	@tmp=$$(mktemp -d) && $(CONTROLLER_GEN) crd:allowDangerousTypes=true,maxDescLen=0 \
		paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 output:crd:dir=$$tmp && \
		mkdir -p test/crds/monitoring && cp $$tmp/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml test/crds/monitoring/ && rm -rf $$tmp

.PHONY: generate
generate: controller-gen ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -s -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: verify-generated
verify-generated: generate manifests ## Fail when generated files are not current.
	@if [ -n "$$(git status --porcelain -- api config test/crds)" ]; then \
		echo "Generated files are stale; run 'make generate manifests' and commit:"; \
		git status --porcelain -- api config test/crds; git --no-pager diff --stat -- api config test/crds; exit 1; fi

.PHONY: envtest
envtest: ## Build kube-apiserver, etcd and kubectl from source into bin/k8s (skips present ones).
	@hack/setup-envtest.sh >/dev/null

.PHONY: test
test: manifests generate envtest promtool prometheus oauth2-proxy chromium ## Build what the tests need, then run every test.
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" PROMTOOL="$(PROMTOOL)" PROMETHEUS="$(PROMETHEUS)" OAUTH2_PROXY="$(OAUTH2_PROXY)" \
		go test $(GO_TEST_FLAGS) ./...

.PHONY: screenshots
screenshots: oauth2-proxy chromium ## Run the chat page's browser test and keep its screenshots in docs/images.
	CHATGATEWAY_SCREENSHOTS="$(CURDIR)/docs/images" OAUTH2_PROXY="$(OAUTH2_PROXY)" \
		go test -count=1 -run TestChatPageInChromium ./test/e2e

.PHONY: bench-operator
bench-operator: manifests generate envtest ## The operator's scale run on a local control plane; BENCH_FLAGS="-n 500 -manager path" to vary it.
	KUBEBUILDER_ASSETS="$$(hack/setup-envtest.sh)" go run ./hack/bench-operator $(BENCH_FLAGS)

##@ Build

.PHONY: build
build: generate ## Build the manager and gateway binaries into bin/.
	CGO_ENABLED=0 go build -trimpath -o bin/manager ./cmd/manager
	@if [ -d cmd/gateway ]; then CGO_ENABLED=0 go build -trimpath -o bin/gateway ./cmd/gateway; fi

.PHONY: run
run: manifests generate ## Run the manager against the cluster in ~/.kube/config.
	go run ./cmd/manager

.PHONY: demo
demo: manifests generate envtest oauth2-proxy ## Local control plane, operator, samples, gateway and chat page; Ctrl-C stops everything.
	hack/demo.sh

.PHONY: bench
bench: ## Measure the gateway against a bare reverse proxy (the floor), with each store; BENCH_FLAGS=-quick for a smoke run.
	go run ./hack/bench -root . $(BENCH_FLAGS)

.PHONY: webui-vendor
webui-vendor: ## Fetch the chat page's libraries from the npm registry at the pinned versions and check their hashes.
	hack/webui-vendor.sh

.PHONY: docker-build
docker-build: ## Build the image (needs a Docker engine).
	docker build -t $(IMG) .

.PHONY: build-installer
build-installer: manifests generate envtest ## Write dist/install.yaml (CRDs, RBAC, manager) for kubectl apply or GitOps.
	mkdir -p dist
	$(KUSTOMIZE) config/default | sed 's|controller:latest|$(IMG)|g' > dist/install.yaml
	@echo "Wrote dist/install.yaml for image $(IMG)"

##@ Deployment

.PHONY: install
install: manifests envtest ## Install the CRDs into the cluster in ~/.kube/config.
	$(KUSTOMIZE) config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests envtest ## Remove the CRDs from the cluster.
	$(KUSTOMIZE) config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: build-installer ## Deploy the operator into the cluster in ~/.kube/config.
	$(KUBECTL) apply --server-side -f dist/install.yaml

.PHONY: undeploy
undeploy: envtest ## Remove the operator from the cluster.
	$(KUSTOMIZE) config/default | $(KUBECTL) delete --ignore-not-found -f -

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen into bin/.
$(CONTROLLER_GEN):
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: promtool
promtool: $(PROMTOOL) ## Build promtool into bin/ (about 90 s cold).
$(PROMTOOL):
	GOBIN=$(LOCALBIN) go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

.PHONY: prometheus
prometheus: $(PROMETHEUS) ## Build the Prometheus server into bin/ for the end-to-end monitoring test (about 3 min cold).
$(PROMETHEUS):
	GOBIN=$(LOCALBIN) go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/prometheus@$(PROMTOOL_VERSION)

.PHONY: oauth2-proxy
oauth2-proxy: $(OAUTH2_PROXY) ## Build OAuth2 Proxy into bin/ for the sidecar and end-to-end tests.
$(OAUTH2_PROXY):
	GOBIN=$(LOCALBIN) go install github.com/oauth2-proxy/oauth2-proxy/v7@$(OAUTH2_PROXY_VERSION)

.PHONY: chromium
chromium: ## Install Debian's Chromium for the browser tests (needs root and apt).
	@command -v chromium >/dev/null || { \
		echo "Installing Chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
