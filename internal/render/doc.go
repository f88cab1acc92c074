// Package render builds every object the operator makes from the three
// resources, as pure functions: API objects in, typed Kubernetes objects or
// rendered text out. No client, no environment, no clock, no randomness;
// the same inputs give the same bytes (maps are sorted by the marshallers,
// lists keep a defined order), so server-side applying an unchanged render
// writes nothing. Inputs never carry the content of a Secret: Secrets reach
// the pods as mounted files and secretKeyRef env vars only.
//
// # API
//
// A ChatGateway's children are rendered from an Inputs (the ChatGateway,
// its ModelProviders, its UserAllowlist, the gateway image and the token
// generation):
//
//	GatewayConfig(in) (*gatewayconfig.Config, error)  validated like the gateway does
//	GatewayConfigYAML(in) ([]byte, error)             gateway.yaml
//	GatewayConfigMap(in) (*corev1.ConfigMap, error)
//	AuthenticatedEmails(allowlist) []byte             OAuth2 Proxy's emails file
//	OAuth2ProxyConfigYAML(in) ([]byte, error)         sidecar alpha config
//	OAuth2ProxyArgs(in) []string
//	OAuth2ProxyContainer(in) *corev1.Container         nil when disabled
//	OAuth2ProxyVolumes(in) []corev1.Volume
//	OAuth2ProxyConfigMap(in) (*corev1.ConfigMap, error) emails file (+ alpha config)
//	ConfigHash(in) (string, error)
//	Deployment(in) (*appsv1.Deployment, error)
//	Service(in) (*corev1.Service, error)
//	PVC(in) (*corev1.PersistentVolumeClaim, error)     nil with Postgres
//	NetworkPolicy(in) (*networkingv1.NetworkPolicy, error)
//	ServiceMonitor(in) (*monitoringv1.ServiceMonitor, error)
//	PrometheusRule(in) (*monitoringv1.PrometheusRule, error)
//	PrometheusRuleYAML(in) ([]byte, error)            the same rules for promtool
//	GrafanaDashboardJSON(in) ([]byte, error)
//	GrafanaDashboard(in) (*corev1.ConfigMap, error)
//
// Stateful Secrets are laid out from values the controller passes in:
// TokenSecret(gw, TokenState) and KeysSecret(gw, masterKey). A
// ModelProvider's LiteLLM config is rendered on its own:
// LiteLLMConfigYAML(mp) and LiteLLMConfigMap(mp). Names (ConfigMapName,
// TokenSecretName, ...), Labels and SelectorLabels, and Hash complete it.
//
// Every object has TypeMeta, name, namespace and labels set, and no owner
// reference: the controller sets that (SetControllerReference) before it
// applies. Renderers do not read the enabled switches of
// monitoring.serviceMonitor, monitoring.alerts and
// monitoring.grafanaDashboard: whether a child exists is the controller's
// call. Renderers that return an error do so for inputs the gateway would
// reject (a defaultModel no provider serves, a ModelProvider not passed in);
// the controller reports those in a condition.
//
// # Contracts with the gateway
//
//   - gateway.yaml is the internal/gatewayconfig schema with every default
//     written out; Secrets are the files named in it (see the constants in
//     gatewayconfig).
//   - The OAuth2 Proxy sidecar sends the token in GatewayTokenHeader
//     (X-Gateway-Token) and the signed-in email in spec.auth.emailHeader,
//     after stripping both from the incoming request (oauth2proxy.go says
//     how and why).
//   - The alerts read the metrics DESIGN.md lists plus one gauge the gateway
//     must export for the soft-quota alert and the quota panel:
//     chatgateway_quota_used_ratio{end_user,limit="soft"|"hard"}, today's
//     spend (in the quota's time zone) over that limit.
//   - Spend windows use the anchored range modifier (Prometheus 3.16, or
//     promql-extended-range-selectors before it), so sums match the ledger;
//     docs/monitoring.md says what else Prometheus needs for that.
//   - The gateway container runs GatewayCommand ("/gateway") with
//     --config /etc/chatgateway/config/gateway.yaml, as user 65532.
//
// # Files
//
// names.go (names, labels, ports), inputs.go (Inputs and CRD defaults),
// gatewayconfig.go, litellm.go, oauth2proxy.go, deployment.go, service.go
// (Service, PVC, NetworkPolicy), monitoring.go (ServiceMonitor,
// PrometheusRule), monitoring_litellm.go (the LiteLLM spend-drift alert),
// dashboard.go (built with grafana-foundation-sdk), secrets.go, hash.go,
// yaml.go. Golden files for all
// rendered text are in testdata/golden; refresh them with
// go test ./internal/render -update and read the diff. Two tests use real
// binaries when their paths are set: PROMTOOL runs promtool check and test
// on the rules (and checks the dashboard's PromQL); OAUTH2_PROXY runs the
// sidecar's rendered config in front of a fake gateway.
package render
