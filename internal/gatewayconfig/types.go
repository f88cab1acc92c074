// Package gatewayconfig is the one contract between the operator and the
// gateway: the operator renders a Config into the gateway.yaml ConfigMap, and
// the gateway loads, validates and hot-reloads it. Secrets never appear in a
// Config: it holds only the paths of the files they are mounted at.
//
// The schema is versioned by APIVersion. A change that an older gateway
// could misread needs a new version; both binaries ship in one image, so the
// gateway accepts exactly the versions it knows.
package gatewayconfig

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// APIVersion and Kind identify the schema of gateway.yaml.
const (
	APIVersion = "gatewayconfig.chatgateway.dev/v1alpha1"
	Kind       = "GatewayConfig"
)

// Well-known file locations inside the gateway pod. The operator mounts
// Secrets and ConfigMaps there; the gateway reads only what Config names.
const (
	ConfigDir            = "/etc/chatgateway/config"
	ConfigFileName       = "gateway.yaml"
	TokenDir             = "/etc/chatgateway/token"
	KeysDir              = "/etc/chatgateway/keys"
	ProviderKeysDir      = "/etc/chatgateway/providers"
	StoreDataDir         = "/var/lib/chatgateway"
	StoreSecretDir       = "/etc/chatgateway/store"
	NotifySecretDir      = "/etc/chatgateway/notify"
	DefaultListen        = ":8080"
	DefaultMetricsListen = ":9090"
	DefaultMaxBodySize   = 10 << 20
	// Import and body-timeout defaults (see Import, RequestBodyTimeout).
	DefaultMaxImportBytes        = 256 << 20
	DefaultMaxStoredBytesPerUser = 1 << 30
	DefaultRequestBodyTimeout    = time.Minute
	DefaultImportBodyTimeout     = 10 * time.Minute
)

// Token Secret keys (and so file names under TokenDir).
const (
	TokenKey               = "token"
	PreviousTokenKey       = "previous"
	PreviousExpiresAtKey   = "previous-expires-at"
	TokenRotatedAtKey      = "rotated-at"
	MasterKeyKey           = "master-key"
	ProviderAPIKeyFileName = "api-key"
	StoreDSNFileName       = "dsn"
	SlackWebhookFileName   = "slack-webhook-url"
)

// Provider types, as in ModelProvider.spec.type.
const (
	ProviderAnthropic        = "Anthropic"
	ProviderOpenAICompatible = "OpenAICompatible"
)

// Failure classes, as in ChatGateway.spec.failover.retryOn.
const (
	FailureTimeout         = "Timeout"
	FailureServerError     = "ServerError"
	FailureRateLimited     = "RateLimited"
	FailureOverloaded      = "Overloaded"
	FailureConnectionError = "ConnectionError"
)

// Identity forms for upstream identity and the end_user metric label.
const (
	IdentityEmail = "Email"
	IdentityHash  = "Hash"
	IdentityNone  = "None"
)

// Store types.
const (
	StoreEmbedded = "Embedded"
	StorePostgres = "Postgres"
)

// Roles.
const (
	RoleAdmin = "Admin"
	RoleUser  = "User"
)

// Config is the whole of gateway.yaml.
type Config struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`

	// Gateway names the ChatGateway this config was rendered from.
	Gateway GatewayRef `json:"gateway"`

	// Listen is the address the gateway serves on (API, web page, health).
	Listen string `json:"listen,omitempty"`

	// MetricsListen is the address of the metrics listener: /metrics only,
	// on a port of its own that the OAuth2 Proxy sidecar does not route and
	// the NetworkPolicy opens to Prometheus alone.
	MetricsListen string `json:"metricsListen,omitempty"`

	// MaxRequestBodyBytes bounds a request body.
	MaxRequestBodyBytes int64 `json:"maxRequestBodyBytes,omitempty"`

	// RequestBodyTimeout is how long a request's whole body may take to
	// arrive, counted from when the gateway starts reading it (an import
	// has Import.BodyTimeout). A client that trickles a body cannot hold a
	// request open past it; a streamed answer is not bounded by it.
	RequestBodyTimeout Duration `json:"requestBodyTimeout,omitempty"`

	// Import bounds what POST /api/me/import takes.
	Import Import `json:"import"`

	// DefaultModel is the alias used when a request names none.
	DefaultModel string `json:"defaultModel"`

	// Providers in failover order: the first is the primary.
	Providers []Provider `json:"providers"`

	// Fallbacks name the models to try after a model failed on all its providers.
	Fallbacks []Fallback `json:"fallbacks,omitempty"`

	Failover Failover `json:"failover"`
	Auth     Auth     `json:"auth"`
	Identity Identity `json:"identity"`
	Keys     Keys     `json:"keys"`

	// Users are the people allowed in.
	Users []User `json:"users"`

	Privacy  Privacy  `json:"privacy"`
	Sessions Sessions `json:"sessions"`
	Routing  Routing  `json:"routing,omitempty"`
	Quotas   Quotas   `json:"quotas"`
}

// GatewayRef names the ChatGateway.
type GatewayRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// Provider is one upstream.
type Provider struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	BaseURL string `json:"baseURL"`
	// APIKeyFile holds the provider's API key; empty for keyless upstreams.
	APIKeyFile string   `json:"apiKeyFile,omitempty"`
	Timeouts   Timeouts `json:"timeouts"`
	Models     []Model  `json:"models"`
}

// Timeouts bound one attempt.
type Timeouts struct {
	Connect   Duration `json:"connect"`
	FirstByte Duration `json:"firstByte"`
}

// Model kinds, as in ModelProvider.spec.models[].kind.
const (
	KindChat  = "Chat"
	KindImage = "Image"
)

// Model inputs, as in ModelProvider.spec.models[].input.
const (
	InputText  = "Text"
	InputImage = "Image"
)

// Model is one alias a provider serves.
type Model struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	// Kind is Chat (the default) or Image.
	Kind string `json:"kind,omitempty"`
	// Input is what a Chat model reads: Text, and Image for pictures
	// ([Text] when empty). Image models have none.
	Input   []string `json:"input,omitempty"`
	Pricing Pricing  `json:"pricing"`
	// ContextWindow and MaxOutputTokens bound a Chat model's requests.
	ContextWindow   int32 `json:"contextWindow,omitempty"`
	MaxOutputTokens int32 `json:"maxOutputTokens,omitempty"`
}

// TakesImages reports whether a chat model reads pictures.
func (m *Model) TakesImages() bool { return slices.Contains(m.Input, InputImage) }

// Pricing is a Chat model's price in USD per million tokens, or an Image
// model's per picture, as decimal strings (see ParseUSD).
type Pricing struct {
	InputPerMTok      string `json:"inputPerMTok,omitempty"`
	OutputPerMTok     string `json:"outputPerMTok,omitempty"`
	CacheReadPerMTok  string `json:"cacheReadPerMTok,omitempty"`
	CacheWritePerMTok string `json:"cacheWritePerMTok,omitempty"`
	// PerImage prices a picture by size and quality; the first entry is
	// the default size and quality (see ModelPricing.perImage).
	PerImage []ImagePrice `json:"perImage,omitempty"`
}

// ImagePrice is the price of one picture of Size ("1024x1024") and Quality.
type ImagePrice struct {
	Size    string `json:"size"`
	Quality string `json:"quality"`
	USD     string `json:"usd"`
}

// Fallback lists the aliases to try after Model failed everywhere.
type Fallback struct {
	Model string   `json:"model"`
	To    []string `json:"to"`
}

// Failover settings.
type Failover struct {
	RetryOn          []string `json:"retryOn"`
	Cooldown         Duration `json:"cooldown"`
	FailureThreshold int32    `json:"failureThreshold"`
	RequestTimeout   Duration `json:"requestTimeout"`
}

// Auth settings. The token files are the keys of the token Secret.
type Auth struct {
	EmailHeader string `json:"emailHeader"`
	// TokenFile holds the current gateway token.
	TokenFile string `json:"tokenFile"`
	// PreviousTokenFile holds the previous token, valid until the RFC 3339
	// time in PreviousTokenExpiresAtFile. Either may be missing or empty.
	PreviousTokenFile          string `json:"previousTokenFile,omitempty"`
	PreviousTokenExpiresAtFile string `json:"previousTokenExpiresAtFile,omitempty"`
}

// Identity says how a user appears outside the gateway.
type Identity struct {
	// Upstream is Email or Hash (OpenAI user, Anthropic metadata.user_id).
	Upstream string `json:"upstream"`
	// MetricsEndUser is Email, Hash or None (the end_user label).
	MetricsEndUser string `json:"metricsEndUser"`
}

// Keys locates key material. The master key (32 random bytes, from a Secret
// the operator creates once) derives the identity-hash key and the per-user
// encryption keys.
type Keys struct {
	MasterKeyFile string `json:"masterKeyFile"`
}

// User is one person allowed in.
type User struct {
	Email       string `json:"email"`
	DisplayName string `json:"displayName,omitempty"`
	Role        string `json:"role"`
	// Quota overrides the default quotas; empty strings inherit them.
	DailySoftUSD string `json:"dailySoftUSD,omitempty"`
	DailyHardUSD string `json:"dailyHardUSD,omitempty"`
}

// Import bounds imports of conversation archives.
type Import struct {
	// MaxBodyBytes bounds one import's body.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// MaxStoredBytesPerUser bounds what one person's conversations may take
	// in the store (sealed message text and titles) after an import. Chat
	// turns are bounded by the quota instead; an import costs nothing.
	MaxStoredBytesPerUser int64 `json:"maxStoredBytesPerUser,omitempty"`
	// BodyTimeout is how long an import's whole body may take to arrive.
	BodyTimeout Duration `json:"bodyTimeout,omitempty"`
}

// Privacy toggles; all false unless an admin opted in.
type Privacy struct {
	AdminChatAccess  bool `json:"adminChatAccess"`
	AdminExport      bool `json:"adminExport"`
	CommunitySharing bool `json:"communitySharing"`
}

// Sessions settings.
type Sessions struct {
	Scope       string   `json:"scope"`
	IdleTimeout Duration `json:"idleTimeout"`
	Retention   Duration `json:"retention"`
	Store       Store    `json:"store"`
}

// Store locates the session store.
type Store struct {
	Type string `json:"type"`
	// Path of the SQLite file (Embedded).
	Path string `json:"path,omitempty"`
	// DSNFile holds the PostgreSQL connection string (Postgres).
	DSNFile string `json:"dsnFile,omitempty"`
}

// Routing rules for the model "auto".
type Routing struct {
	Rules []RoutingRule `json:"rules,omitempty"`
}

// RoutingRule picks Model when every set condition holds.
type RoutingRule struct {
	Name           string   `json:"name"`
	MaxInputTokens int32    `json:"maxInputTokens,omitempty"`
	MinInputTokens int32    `json:"minInputTokens,omitempty"`
	MessageMatches string   `json:"messageMatches,omitempty"`
	Roles          []string `json:"roles,omitempty"`
	Model          string   `json:"model"`
}

// Quotas are the default daily limits and where notifications go.
type Quotas struct {
	DailySoftUSD      string `json:"dailySoftUSD,omitempty"`
	DailyHardUSD      string `json:"dailyHardUSD,omitempty"`
	TimeZone          string `json:"timeZone"`
	SlackWebhookFile  string `json:"slackWebhookFile,omitempty"`
	CostAwareFallback bool   `json:"costAwareFallback,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("90s").
type Duration struct {
	time.Duration
}

// D wraps a time.Duration.
func D(d time.Duration) Duration { return Duration{d} }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}
