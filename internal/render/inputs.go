package render

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// Inputs is everything a ChatGateway's children are rendered from. It holds
// API objects and plain values only, never the content of a Secret.
type Inputs struct {
	// Gateway is the ChatGateway being rendered.
	Gateway *v1alpha1.ChatGateway
	// Providers are the ModelProviders that spec.providers names, in any
	// order: renderers order them as spec.providers does.
	Providers []v1alpha1.ModelProvider
	// Allowlist is the UserAllowlist of spec.auth.allowlistRef. Nil renders
	// no users, so nobody gets in (fail closed).
	Allowlist *v1alpha1.UserAllowlist
	// Image of the gateway container: spec.image, else the operator's own.
	Image string
	// TokenGeneration changes whenever the gateway token is rotated; it is
	// a pod-template annotation, so the pods (and the OAuth2 Proxy sidecar,
	// which reads the token once at start) roll with each rotation.
	TokenGeneration string
	// GatewayYAML, when set, is what GatewayConfigYAML rendered from these
	// same inputs: the ConfigMap and the Deployment's config hash both need
	// it, and a caller that renders both can render it once.
	GatewayYAML []byte
}

// Defaults of the CRD, applied again here because the API server applies
// them only to fields that are absent, and tests and older objects may hold
// zero values.
const (
	defaultEmailHeader      = "X-Forwarded-Email"
	defaultSessionScope     = "PerSender"
	defaultTimeZone         = "UTC"
	defaultFailureThreshold = 3
	defaultContextWindow    = 200000
	defaultMaxOutputTokens  = 8192
	defaultServicePort      = 80
	defaultDailySpendUSD    = "5"
	defaultSeatPriceUSD     = "20"
	defaultOAuth2Provider   = "google"
	// DefaultOAuth2ProxyImage is the sidecar image when spec.auth.oauth2Proxy.image is empty.
	DefaultOAuth2ProxyImage = "quay.io/oauth2-proxy/oauth2-proxy:v7.15.6"
)

var (
	defaultConnectTimeout   = 5 * time.Second
	defaultFirstByteTimeout = 30 * time.Second
	defaultCooldown         = 60 * time.Second
	defaultRequestTimeout   = 5 * time.Minute
	defaultIdleTimeout      = 120 * time.Minute
	defaultRetention        = 2160 * time.Hour
	defaultScrapeInterval   = 30 * time.Second
	defaultStoreSize        = resource.MustParse("1Gi")
	defaultRetryOn          = []v1alpha1.FailureClass{
		v1alpha1.FailureTimeout, v1alpha1.FailureServerError, v1alpha1.FailureRateLimited,
		v1alpha1.FailureOverloaded, v1alpha1.FailureConnectionError,
	}
)

// orderedProviders returns the providers in spec.providers order, or an
// error naming those that are missing.
func (in Inputs) orderedProviders() ([]v1alpha1.ModelProvider, error) {
	byName := make(map[string]v1alpha1.ModelProvider, len(in.Providers))
	for _, p := range in.Providers {
		byName[p.Name] = p
	}
	out := make([]v1alpha1.ModelProvider, 0, len(in.Gateway.Spec.Providers))
	var missing []string
	for _, ref := range in.Gateway.Spec.Providers {
		p, ok := byName[ref.Name]
		if !ok {
			missing = append(missing, ref.Name)
			continue
		}
		out = append(out, p)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("ModelProvider %s not given to the renderer", strings.Join(missing, ", "))
	}
	return out, nil
}

func (in Inputs) validate() error {
	if in.Gateway == nil {
		return fmt.Errorf("no ChatGateway to render")
	}
	return nil
}

// oauth2Proxy returns the sidecar spec when the sidecar is enabled, else nil.
func oauth2Proxy(gw *v1alpha1.ChatGateway) *v1alpha1.OAuth2ProxySpec {
	if p := gw.Spec.Auth.OAuth2Proxy; p != nil && p.Enabled {
		return p
	}
	return nil
}

func storeType(gw *v1alpha1.ChatGateway) v1alpha1.StoreType {
	if gw.Spec.Sessions.Store.Type == "" {
		return v1alpha1.StoreEmbedded
	}
	return gw.Spec.Sessions.Store.Type
}

func emailHeader(gw *v1alpha1.ChatGateway) string {
	return orDefault(gw.Spec.Auth.EmailHeader, defaultEmailHeader)
}

func replicas(gw *v1alpha1.ChatGateway) int32 {
	if gw.Spec.Replicas == nil {
		return 1
	}
	return *gw.Spec.Replicas
}

func servicePort(gw *v1alpha1.ChatGateway) int32 {
	if gw.Spec.Service.Port == 0 {
		return defaultServicePort
	}
	return gw.Spec.Service.Port
}

func requestTimeout(gw *v1alpha1.ChatGateway) time.Duration {
	return durationOr(gw.Spec.Failover.RequestTimeout, defaultRequestTimeout)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func usdOr(v *v1alpha1.USD, def string) string {
	if v == nil || *v == "" {
		return def
	}
	return string(*v)
}

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration == 0 {
		return def
	}
	return d.Duration
}
