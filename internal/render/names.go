package render

import (
	"crypto/sha256"
	"encoding/hex"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// Label keys and values every child carries.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"

	AppName   = "chatgateway"
	ManagedBy = "chatgateway-operator"

	// LabelTokenHolder on a pod in the gateway's namespace lets it reach the
	// gateway port directly through the NetworkPolicy (it must still send
	// the gateway token).
	LabelTokenHolder = "chatgateway.dev/token-holder"

	// LabelGrafanaDashboard is what Grafana's dashboard sidecar looks for.
	LabelGrafanaDashboard = "grafana_dashboard"
)

// Components, the values of app.kubernetes.io/component.
const (
	ComponentGateway       = "gateway"
	ComponentConfig        = "config"
	ComponentToken         = "token"
	ComponentKeys          = "keys"
	ComponentOAuth2Proxy   = "oauth2-proxy"
	ComponentStore         = "store"
	ComponentMonitoring    = "monitoring"
	ComponentDashboard     = "dashboard"
	ComponentLiteLLMConfig = "litellm-config"
)

// Pod-template annotations that roll the gateway pods when they change.
const (
	AnnotationConfigHash      = "chatgateway.dev/config-hash"
	AnnotationTokenGeneration = "chatgateway.dev/token-generation"
)

// Ports. The gateway serves API, web page and health on one port and its
// metrics on another, which the sidecar does not route and the
// NetworkPolicy opens to Prometheus alone.
const (
	GatewayPort         int32 = 8080
	GatewayPortName           = "http"
	MetricsPort         int32 = 9090
	OAuth2ProxyPort     int32 = 4180
	OAuth2ProxyPortName       = "oauth2-proxy"
	// MetricsPortName names the gateway's metrics container port and the
	// Service port the ServiceMonitor scrapes.
	MetricsPortName = "metrics"
	// ServicePortName names the Service port people and clients use.
	ServicePortName = "http"
)

// Container names.
const (
	GatewayContainerName     = "gateway"
	OAuth2ProxyContainerName = "oauth2-proxy"
)

// ConfigMap and Secret keys written by this package.
const (
	LiteLLMConfigKey        = "config.yaml"
	AuthenticatedEmailsKey  = "authenticated-emails"
	OAuth2ProxyConfigKey    = "oauth2-proxy.yaml"
	OAuth2ProxyConfigDir    = "/etc/oauth2-proxy/config"
	OAuth2ProxyTokenDir     = "/etc/oauth2-proxy/token"
	OAuth2ProxyClientDir    = "/etc/oauth2-proxy/client"
	OAuth2ProxyClientSecret = "client-secret"
)

// GatewayTokenHeader carries the gateway token from the OAuth2 Proxy sidecar
// to the gateway. The gateway accepts it alongside Authorization: Bearer and
// x-api-key.
const GatewayTokenHeader = "X-Gateway-Token"

// ConfigMapName is the ConfigMap holding gateway.yaml.
func ConfigMapName(gw *v1alpha1.ChatGateway) string { return gw.Name + "-gateway-config" }

// OAuth2ProxyConfigMapName is the ConfigMap holding OAuth2 Proxy's files: the
// authenticated-emails file and, with the sidecar enabled, its alpha config.
func OAuth2ProxyConfigMapName(gw *v1alpha1.ChatGateway) string {
	return gw.Name + "-gateway-oauth2-proxy"
}

// EmailsConfigMapName is the ConfigMap holding the authenticated-emails file.
// It is the OAuth2 Proxy ConfigMap.
func EmailsConfigMapName(gw *v1alpha1.ChatGateway) string { return OAuth2ProxyConfigMapName(gw) }

// TokenSecretName is the Secret holding the gateway token.
func TokenSecretName(gw *v1alpha1.ChatGateway) string { return gw.Name + "-gateway-token" }

// KeysSecretName is the Secret holding the master key, created once.
func KeysSecretName(gw *v1alpha1.ChatGateway) string { return gw.Name + "-gateway-keys" }

// PVCName is the Embedded store's PersistentVolumeClaim.
func PVCName(gw *v1alpha1.ChatGateway) string { return gw.Name + "-store" }

// DeploymentName is the gateway Deployment.
func DeploymentName(gw *v1alpha1.ChatGateway) string { return gw.Name + "-gateway" }

// ServiceName is the gateway Service; also the name of the NetworkPolicy,
// ServiceMonitor and PrometheusRule.
func ServiceName(gw *v1alpha1.ChatGateway) string { return gw.Name + "-gateway" }

// NetworkPolicyName is the gateway's NetworkPolicy.
func NetworkPolicyName(gw *v1alpha1.ChatGateway) string { return gw.Name + "-gateway" }

// ServiceMonitorName is the gateway's ServiceMonitor.
func ServiceMonitorName(gw *v1alpha1.ChatGateway) string { return gw.Name + "-gateway" }

// PrometheusRuleName is the gateway's PrometheusRule.
func PrometheusRuleName(gw *v1alpha1.ChatGateway) string { return gw.Name + "-gateway" }

// DashboardConfigMapName is the ConfigMap holding the Grafana dashboard.
func DashboardConfigMapName(gw *v1alpha1.ChatGateway) string { return gw.Name + "-gateway-dashboard" }

// LiteLLMConfigMapName is the ConfigMap receiving a provider's LiteLLM
// config.yaml: spec.liteLLM.configMapName, or "<provider>-litellm".
func LiteLLMConfigMapName(mp *v1alpha1.ModelProvider) string {
	if mp.Spec.LiteLLM != nil && mp.Spec.LiteLLM.ConfigMapName != "" {
		return mp.Spec.LiteLLM.ConfigMapName
	}
	return mp.Name + "-litellm"
}

// Labels are the labels of a gateway's child of the given component.
func Labels(gw *v1alpha1.ChatGateway, component string) map[string]string {
	return map[string]string{
		LabelName:      AppName,
		LabelInstance:  gw.Name,
		LabelComponent: component,
		LabelManagedBy: ManagedBy,
	}
}

// SelectorLabels select the gateway pods. They are immutable on a
// Deployment, so they never change.
func SelectorLabels(gw *v1alpha1.ChatGateway) map[string]string {
	return map[string]string{
		LabelName:      AppName,
		LabelInstance:  gw.Name,
		LabelComponent: ComponentGateway,
	}
}

// volumeName is prefix-name when that is a valid volume name (a DNS-1123
// label), else prefix-<hash of name>: resource names may hold dots and be
// longer than 63 characters.
func volumeName(prefix, name string) string {
	v := prefix + "-" + name
	if len(validation.IsDNS1123Label(v)) == 0 {
		return v
	}
	sum := sha256.Sum256([]byte(name))
	return prefix + "-" + hex.EncodeToString(sum[:])[:12]
}
