package render

import (
	"cmp"
	"fmt"
	"path"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// File paths inside the gateway pod, built from the gatewayconfig constants.
var (
	ConfigFilePath    = path.Join(gc.ConfigDir, gc.ConfigFileName)
	StoreDBPath       = path.Join(gc.StoreDataDir, "store.db")
	StoreDSNPath      = path.Join(gc.StoreSecretDir, gc.StoreDSNFileName)
	SlackWebhookPath  = path.Join(gc.NotifySecretDir, gc.SlackWebhookFileName)
	MasterKeyPath     = path.Join(gc.KeysDir, gc.MasterKeyKey)
	TokenPath         = path.Join(gc.TokenDir, gc.TokenKey)
	PreviousTokenPath = path.Join(gc.TokenDir, gc.PreviousTokenKey)
	PreviousExpiresAt = path.Join(gc.TokenDir, gc.PreviousExpiresAtKey)
)

// ProviderKeyDir is where a provider's API key Secret is mounted.
func ProviderKeyDir(provider string) string { return path.Join(gc.ProviderKeysDir, provider) }

// ProviderKeyPath is the file holding a provider's API key.
func ProviderKeyPath(provider string) string {
	return path.Join(ProviderKeyDir(provider), gc.ProviderAPIKeyFileName)
}

// GatewayConfig builds the gateway's config from the inputs, with every
// default written out, and validates it as the gateway would. It holds file
// paths where secrets are mounted, never a secret.
func GatewayConfig(in Inputs) (*gc.Config, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	gw := in.Gateway
	providers, err := in.orderedProviders()
	if err != nil {
		return nil, err
	}
	spec := gw.Spec
	c := &gc.Config{
		APIVersion:          gc.APIVersion,
		Kind:                gc.Kind,
		Gateway:             gc.GatewayRef{Namespace: gw.Namespace, Name: gw.Name},
		Listen:              gc.DefaultListen,
		MetricsListen:       fmt.Sprintf(":%d", MetricsPort),
		MaxRequestBodyBytes: gc.DefaultMaxBodySize,
		RequestBodyTimeout:  gc.D(gc.DefaultRequestBodyTimeout),
		Import: gc.Import{
			MaxBodyBytes:          gc.DefaultMaxImportBytes,
			MaxStoredBytesPerUser: gc.DefaultMaxStoredBytesPerUser,
			BodyTimeout:           gc.D(gc.DefaultImportBodyTimeout),
		},
		DefaultModel: spec.DefaultModel,
		Providers:    make([]gc.Provider, 0, len(providers)),
		Failover: gc.Failover{
			RetryOn:          failureClasses(spec.Failover.RetryOn),
			Cooldown:         gc.D(durationOr(spec.Failover.Cooldown, defaultCooldown)),
			FailureThreshold: cmp.Or(spec.Failover.FailureThreshold, defaultFailureThreshold),
			RequestTimeout:   gc.D(requestTimeout(gw)),
		},
		Auth: gc.Auth{
			EmailHeader:                emailHeader(gw),
			TokenFile:                  TokenPath,
			PreviousTokenFile:          PreviousTokenPath,
			PreviousTokenExpiresAtFile: PreviousExpiresAt,
		},
		Identity: gc.Identity{
			Upstream:       string(cmp.Or(spec.Auth.UpstreamIdentity, v1alpha1.IdentityEmail)),
			MetricsEndUser: string(cmp.Or(spec.Monitoring.EndUserLabel, v1alpha1.IdentityEmail)),
		},
		Keys:  gc.Keys{MasterKeyFile: MasterKeyPath},
		Users: users(in.Allowlist),
		Privacy: gc.Privacy{
			AdminChatAccess:  spec.Privacy.AdminChatAccess,
			AdminExport:      spec.Privacy.AdminExport,
			CommunitySharing: spec.Privacy.CommunitySharing,
		},
		Sessions: gc.Sessions{
			Scope:       string(cmp.Or(spec.Sessions.Scope, defaultSessionScope)),
			IdleTimeout: gc.D(durationOr(spec.Sessions.IdleTimeout, defaultIdleTimeout)),
			Retention:   gc.D(durationOr(spec.Sessions.Retention, defaultRetention)),
			Store:       store(gw),
		},
		Quotas: gc.Quotas{
			DailySoftUSD:      usdOr(spec.Quotas.DailySoftUSD, ""),
			DailyHardUSD:      usdOr(spec.Quotas.DailyHardUSD, ""),
			TimeZone:          orDefault(spec.Quotas.TimeZone, defaultTimeZone),
			CostAwareFallback: spec.Quotas.CostAwareFallback,
		},
	}
	if n := spec.Quotas.Notify; n != nil && n.SlackWebhookSecretRef != nil {
		c.Quotas.SlackWebhookFile = SlackWebhookPath
	}
	for _, p := range providers {
		c.Providers = append(c.Providers, provider(p))
	}
	for _, f := range spec.Fallbacks {
		c.Fallbacks = append(c.Fallbacks, gc.Fallback{Model: f.Model, To: slices.Clone(f.To)})
	}
	if spec.Routing != nil {
		for _, r := range spec.Routing.Rules {
			rule := gc.RoutingRule{Name: r.Name, Model: r.Model, MessageMatches: r.When.MessageMatches}
			if r.When.MaxInputTokens != nil {
				rule.MaxInputTokens = *r.When.MaxInputTokens
			}
			if r.When.MinInputTokens != nil {
				rule.MinInputTokens = *r.When.MinInputTokens
			}
			for _, role := range r.When.Roles {
				rule.Roles = append(rule.Roles, string(role))
			}
			c.Routing.Rules = append(c.Routing.Rules, rule)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("rendered gateway config is invalid: %w", err)
	}
	return c, nil
}

// GatewayConfigYAML is gateway.yaml: GatewayConfig marshalled.
func GatewayConfigYAML(in Inputs) ([]byte, error) {
	if in.GatewayYAML != nil {
		return in.GatewayYAML, nil
	}
	c, err := GatewayConfig(in)
	if err != nil {
		return nil, err
	}
	b, err := gc.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshalling gateway config: %w", err)
	}
	return b, nil
}

// GatewayConfigMap is the ConfigMap holding gateway.yaml.
func GatewayConfigMap(in Inputs) (*corev1.ConfigMap, error) {
	b, err := GatewayConfigYAML(in)
	if err != nil {
		return nil, err
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(in.Gateway, ConfigMapName(in.Gateway), ComponentConfig),
		Data:       map[string]string{gc.ConfigFileName: string(b)},
	}, nil
}

func provider(mp v1alpha1.ModelProvider) gc.Provider {
	p := gc.Provider{
		Name:    mp.Name,
		Type:    string(mp.Spec.Type),
		BaseURL: mp.Spec.EffectiveBaseURL(),
		Timeouts: gc.Timeouts{
			Connect:   gc.D(durationOr(mp.Spec.Timeouts.Connect, defaultConnectTimeout)),
			FirstByte: gc.D(durationOr(mp.Spec.Timeouts.FirstByte, defaultFirstByteTimeout)),
		},
		Models: make([]gc.Model, 0, len(mp.Spec.Models)),
	}
	if mp.Spec.APIKeySecretRef != nil {
		p.APIKeyFile = ProviderKeyPath(mp.Name)
	}
	for _, m := range mp.Spec.Models {
		p.Models = append(p.Models, model(m))
	}
	return p
}

// model is one model with its defaults written out: a Chat model's
// input, cache prices and limits; an Image model's prices per picture.
func model(m v1alpha1.ModelSpec) gc.Model {
	if m.Kind == v1alpha1.ModelImage {
		out := gc.Model{Name: m.Name, ID: m.ID, Kind: gc.KindImage}
		for _, ip := range m.Pricing.PerImage {
			out.Pricing.PerImage = append(out.Pricing.PerImage, gc.ImagePrice{Size: ip.Size, Quality: ip.Quality, USD: string(ip.USD)})
		}
		return out
	}
	input := string(m.Pricing.InputPerMTok)
	out := gc.Model{
		Name:  m.Name,
		ID:    m.ID,
		Kind:  gc.KindChat,
		Input: []string{gc.InputText},
		Pricing: gc.Pricing{
			InputPerMTok:      input,
			OutputPerMTok:     string(m.Pricing.OutputPerMTok),
			CacheReadPerMTok:  usdOr(m.Pricing.CacheReadPerMTok, input),
			CacheWritePerMTok: usdOr(m.Pricing.CacheWritePerMTok, input),
		},
		ContextWindow:   cmp.Or(m.ContextWindow, defaultContextWindow),
		MaxOutputTokens: cmp.Or(m.MaxOutputTokens, defaultMaxOutputTokens),
	}
	if slices.Contains(m.Input, v1alpha1.InputImage) {
		out.Input = append(out.Input, gc.InputImage)
	}
	return out
}

// users lists the allowlist sorted by email, so that reordering the
// allowlist changes nothing.
func users(al *v1alpha1.UserAllowlist) []gc.User {
	out := []gc.User{}
	if al == nil {
		return out
	}
	for _, u := range al.Spec.Users {
		user := gc.User{
			Email:       u.Email,
			DisplayName: u.DisplayName,
			Role:        string(cmp.Or(u.Role, v1alpha1.RoleUser)),
		}
		if u.Quota != nil {
			user.DailySoftUSD = usdOr(u.Quota.DailySoftUSD, "")
			user.DailyHardUSD = usdOr(u.Quota.DailyHardUSD, "")
		}
		out = append(out, user)
	}
	slices.SortFunc(out, func(a, b gc.User) int { return cmp.Compare(a.Email, b.Email) })
	return out
}

func store(gw *v1alpha1.ChatGateway) gc.Store {
	if storeType(gw) == v1alpha1.StorePostgres {
		return gc.Store{Type: gc.StorePostgres, DSNFile: StoreDSNPath}
	}
	return gc.Store{Type: gc.StoreEmbedded, Path: StoreDBPath}
}

func failureClasses(fc []v1alpha1.FailureClass) []string {
	if len(fc) == 0 {
		fc = defaultRetryOn
	}
	out := make([]string, 0, len(fc))
	for _, f := range fc {
		out = append(out, string(f))
	}
	return out
}

// objectMeta is the metadata of a gateway's child.
func objectMeta(gw *v1alpha1.ChatGateway, name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: gw.Namespace, Labels: Labels(gw, component)}
}
