package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RotateTokenAnnotation on a ChatGateway rotates the gateway token as soon as
// its value changes, and revokes the previous token at once (the kill switch).
const RotateTokenAnnotation = "chatgateway.dev/rotate-token"

// FailureClass is a kind of upstream failure the gateway may fail over on.
// +kubebuilder:validation:Enum=Timeout;ServerError;RateLimited;Overloaded;ConnectionError
type FailureClass string

const (
	FailureTimeout         FailureClass = "Timeout"
	FailureServerError     FailureClass = "ServerError"
	FailureRateLimited     FailureClass = "RateLimited"
	FailureOverloaded      FailureClass = "Overloaded"
	FailureConnectionError FailureClass = "ConnectionError"
)

// StoreType is where sessions and the spend ledger live.
// +kubebuilder:validation:Enum=Embedded;Postgres
type StoreType string

const (
	// StoreEmbedded is a SQLite file on a PersistentVolumeClaim (one replica).
	StoreEmbedded StoreType = "Embedded"
	// StorePostgres is an external PostgreSQL database (any number of replicas).
	StorePostgres StoreType = "Postgres"
)

// IdentityForm is how a user's identity appears outside the gateway.
// +kubebuilder:validation:Enum=Email;Hash;None
type IdentityForm string

const (
	IdentityEmail IdentityForm = "Email"
	// IdentityHash is a keyed hash of the email: stable per user, not reversible.
	IdentityHash IdentityForm = "Hash"
	// IdentityNone leaves the identity out (metrics only).
	IdentityNone IdentityForm = "None"
)

// ChatGatewaySpec describes one gateway deployment.
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas <= 1 || (has(self.sessions) && has(self.sessions.store) && has(self.sessions.store.type) && self.sessions.store.type == 'Postgres')",message="replicas above 1 need sessions.store.type: Postgres (the Embedded store is a file that only one replica can write)"
type ChatGatewaySpec struct {
	// replicas is the number of gateway pods. More than one requires the
	// Postgres store.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=20
	Replicas *int32 `json:"replicas,omitempty"`

	// image of the gateway. Defaults to the operator's own image, which holds
	// both binaries.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// providers are ModelProviders in this namespace, in order: the first is
	// the primary, later ones are tried when an earlier one fails.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Providers []LocalRef `json:"providers"`

	// defaultModel is the alias used when a request names no model.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	DefaultModel string `json:"defaultModel"`

	// fallbacks name, per model, the models to try when every provider of
	// that model has failed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(f, self.exists_one(g, g.model == f.model))",message="each fallback's model must be unique: merge the entries for the same model into one to: list"
	Fallbacks []Fallback `json:"fallbacks,omitempty"`

	// failover says when and how the gateway moves to the next provider.
	// +optional
	// +kubebuilder:default={}
	Failover FailoverSpec `json:"failover,omitempty"`

	// sessions configures stateful chat sessions and their store.
	// +optional
	// +kubebuilder:default={}
	Sessions SessionsSpec `json:"sessions,omitempty"`

	// privacy toggles. All default to false: nobody, admins included, can
	// read, export or share another person's conversations.
	// +optional
	// +kubebuilder:default={}
	Privacy PrivacySpec `json:"privacy,omitempty"`

	// auth configures who gets in.
	// +required
	Auth AuthSpec `json:"auth"`

	// routing picks a model for requests that ask for "auto".
	// +optional
	Routing *RoutingSpec `json:"routing,omitempty"`

	// quotas are the default daily spend limits per user; a UserAllowlist
	// entry may override them.
	// +optional
	// +kubebuilder:default={}
	Quotas QuotaSpec `json:"quotas,omitempty"`

	// monitoring configures ServiceMonitor, alert rules and the Grafana dashboard.
	// +optional
	// +kubebuilder:default={}
	Monitoring MonitoringSpec `json:"monitoring,omitempty"`

	// service exposes the gateway (through the OAuth2 Proxy sidecar when enabled).
	// +optional
	// +kubebuilder:default={}
	Service ServiceSpec `json:"service,omitempty"`

	// resources of the gateway container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// Fallback names the models to try, in order, after a model has failed on
// every provider that serves it.
type Fallback struct {
	// model is the alias that failed.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Model string `json:"model"`

	// to are the aliases to try next, in order.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=63
	To []string `json:"to"`
}

// FailoverSpec says which failures move a request to the next provider.
type FailoverSpec struct {
	// retryOn are the failure classes that fail over. Other errors (a 400,
	// say) go straight back to the client.
	// +optional
	// +listType=set
	// +kubebuilder:default={Timeout,ServerError,RateLimited,Overloaded,ConnectionError}
	RetryOn []FailureClass `json:"retryOn,omitempty"`

	// cooldown is how long a provider that keeps failing is skipped.
	// +optional
	// +kubebuilder:default="60s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 30s, 5m or 2h (there is no d: write 90 days as 2160h)"
	Cooldown *metav1.Duration `json:"cooldown,omitempty"`

	// failureThreshold is the number of failures in a row after which a
	// provider is skipped for the cooldown.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	FailureThreshold int32 `json:"failureThreshold,omitempty"`

	// requestTimeout bounds a whole request, all attempts included.
	// +optional
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 30s, 5m or 2h (there is no d: write 90 days as 2160h)"
	RequestTimeout *metav1.Duration `json:"requestTimeout,omitempty"`
}

// SessionScope is who shares a session.
// +kubebuilder:validation:Enum=PerSender
type SessionScope string

// SessionsSpec configures stateful chat sessions.
type SessionsSpec struct {
	// scope of a session: PerSender gives every user their own.
	// +optional
	// +kubebuilder:default=PerSender
	Scope SessionScope `json:"scope,omitempty"`

	// idleTimeout ends a session after this long without a message; the next
	// message starts a new one.
	// +optional
	// +kubebuilder:default="120m"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 30s, 5m or 2h (there is no d: write 90 days as 2160h)"
	IdleTimeout *metav1.Duration `json:"idleTimeout,omitempty"`

	// retention deletes sessions older than this (the spend ledger stays).
	// Write days as hours: 90 days is 2160h.
	// +optional
	// +kubebuilder:default="2160h"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 30s, 5m or 2h (there is no d: write 90 days as 2160h)"
	Retention *metav1.Duration `json:"retention,omitempty"`

	// store is where sessions and the spend ledger live.
	// +optional
	// +kubebuilder:default={}
	Store StoreSpec `json:"store,omitempty"`
}

// StoreSpec says where conversations and the spend ledger are stored.
// +kubebuilder:validation:XValidation:rule="(has(self.type) && self.type == 'Postgres') || !has(self.dsnSecretRef)",message="an Embedded store takes no dsnSecretRef: remove it, or set type: Postgres"
// +kubebuilder:validation:XValidation:rule="!has(self.type) || self.type != 'Postgres' || has(self.dsnSecretRef)",message="a Postgres store needs dsnSecretRef, the Secret key holding the connection string"
type StoreSpec struct {
	// type is Embedded (SQLite on a PersistentVolumeClaim) or Postgres.
	// +optional
	// +kubebuilder:default=Embedded
	Type StoreType `json:"type,omitempty"`

	// dsnSecretRef is the Secret key holding the PostgreSQL connection string.
	// +optional
	DSNSecretRef *SecretKeyRef `json:"dsnSecretRef,omitempty"`

	// size of the Embedded store's PersistentVolumeClaim.
	// +optional
	// +kubebuilder:default="1Gi"
	Size *resource.Quantity `json:"size,omitempty"`

	// storageClassName of the Embedded store's PersistentVolumeClaim; the
	// cluster default when unset.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// whenDeleted says what becomes of the Embedded store's claim, and so of
	// everyone's conversations, when the ChatGateway is deleted: Delete
	// removes it with the gateway; Retain keeps it, and a ChatGateway created
	// again under the same name uses it again. Choose Retain when the
	// ChatGateway lives in a GitOps repository, where a rename or a prune
	// deletes and re-creates it.
	// +optional
	// +kubebuilder:default=Delete
	// +kubebuilder:validation:Enum=Delete;Retain
	WhenDeleted ClaimRetention `json:"whenDeleted,omitempty"`
}

// ClaimRetention is what happens to the store's claim when its ChatGateway goes.
type ClaimRetention string

const (
	ClaimDelete ClaimRetention = "Delete"
	ClaimRetain ClaimRetention = "Retain"
)

// PrivacySpec holds the privacy toggles. Each opens routes that do not exist
// otherwise; every use of them is audited and visible to the user concerned.
type PrivacySpec struct {
	// adminChatAccess lets admins read other people's conversations.
	// +optional
	// +kubebuilder:default=false
	AdminChatAccess bool `json:"adminChatAccess"`

	// adminExport lets admins export other people's conversations.
	// +optional
	// +kubebuilder:default=false
	AdminExport bool `json:"adminExport"`

	// communitySharing lets users share a conversation with the others.
	// +optional
	// +kubebuilder:default=false
	CommunitySharing bool `json:"communitySharing"`
}

// AuthSpec configures authentication.
type AuthSpec struct {
	// allowlistRef is the UserAllowlist of people allowed in.
	// +required
	AllowlistRef LocalRef `json:"allowlistRef"`

	// emailHeader carries the signed-in user's email from OAuth2 Proxy. It
	// is believed only alongside a valid gateway token.
	// +optional
	// +kubebuilder:default="X-Forwarded-Email"
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9-]+$`
	// +kubebuilder:validation:MaxLength=64
	EmailHeader string `json:"emailHeader,omitempty"`

	// upstreamIdentity is what providers are told about the user
	// (OpenAI user, Anthropic metadata.user_id): the email or a keyed hash.
	// +optional
	// +kubebuilder:default=Email
	// +kubebuilder:validation:Enum=Email;Hash
	UpstreamIdentity IdentityForm `json:"upstreamIdentity,omitempty"`

	// gatewayToken configures the shared token every request must carry.
	// +optional
	// +kubebuilder:default={}
	GatewayToken GatewayTokenSpec `json:"gatewayToken,omitempty"`

	// oauth2Proxy runs an OAuth2 Proxy sidecar in front of the gateway.
	// +optional
	OAuth2Proxy *OAuth2ProxySpec `json:"oauth2Proxy,omitempty"`
}

// GatewayTokenSpec configures gateway-token rotation.
// +kubebuilder:validation:XValidation:rule="!has(self.gracePeriod) || !has(self.rotationInterval) || duration(self.gracePeriod) < duration(self.rotationInterval)",message="gracePeriod must be shorter than rotationInterval"
type GatewayTokenSpec struct {
	// rotationInterval is how often a new token is minted.
	// +optional
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h')",message="rotationInterval must be at least 1h"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 30s, 5m or 2h (there is no d: write 90 days as 2160h)"
	RotationInterval *metav1.Duration `json:"rotationInterval,omitempty"`

	// gracePeriod is how long the previous token stays valid after a
	// scheduled rotation. A rotation through the annotation
	// chatgateway.dev/rotate-token revokes it at once.
	// +optional
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 30s, 5m or 2h (there is no d: write 90 days as 2160h)"
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
}

// OAuth2ProxySpec configures the OAuth2 Proxy sidecar.
// +kubebuilder:validation:XValidation:rule="(has(self.enabled) && !self.enabled) || (has(self.clientSecretRef) && has(self.cookieSecretRef) && has(self.clientID))",message="an enabled oauth2Proxy needs clientID, clientSecretRef and cookieSecretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'oidc' || has(self.oidcIssuerURL)",message="provider oidc needs oidcIssuerURL"
type OAuth2ProxySpec struct {
	// enabled runs the sidecar.
	// +optional
	// +kubebuilder:default=true
	Enabled bool `json:"enabled"`

	// provider is the OAuth2 Proxy provider name.
	// +optional
	// +kubebuilder:default=google
	// +kubebuilder:validation:Enum=google;github;gitlab;oidc;azure;keycloak-oidc
	Provider string `json:"provider,omitempty"`

	// clientID of the OAuth application.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	ClientID string `json:"clientID,omitempty"`

	// clientSecretRef is the Secret key holding the OAuth client secret.
	// +optional
	ClientSecretRef *SecretKeyRef `json:"clientSecretRef,omitempty"`

	// cookieSecretRef is the Secret key holding the cookie secret (16, 24 or
	// 32 bytes).
	// +optional
	CookieSecretRef *SecretKeyRef `json:"cookieSecretRef,omitempty"`

	// oidcIssuerURL is the issuer for provider oidc.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	OIDCIssuerURL string `json:"oidcIssuerURL,omitempty"`

	// redirectURL is the OAuth callback URL, https://<host>/oauth2/callback.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	RedirectURL string `json:"redirectURL,omitempty"`

	// image of OAuth2 Proxy.
	// +optional
	// +kubebuilder:default="quay.io/oauth2-proxy/oauth2-proxy:v7.15.6"
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`
}

// RoutingSpec holds the rules that pick a model for "auto".
type RoutingSpec struct {
	// rules are tried in order; the first that matches picks the model, and
	// when none does the default model is used.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Rules []RoutingRule `json:"rules,omitempty"`
}

// RoutingRule picks a model when all its conditions hold.
type RoutingRule struct {
	// name identifies the rule in metrics and logs.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`
	Name string `json:"name"`

	// when holds the conditions; all that are set must hold.
	// +required
	When RoutingCondition `json:"when"`

	// model is the alias to use.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Model string `json:"model"`
}

// RoutingCondition is the conditions of a routing rule.
// +kubebuilder:validation:XValidation:rule="has(self.maxInputTokens) || has(self.minInputTokens) || has(self.messageMatches) || has(self.roles)",message="a routing rule needs at least one condition: maxInputTokens, minInputTokens, messageMatches or roles"
type RoutingCondition struct {
	// maxInputTokens matches requests estimated at or below this many input tokens.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxInputTokens *int32 `json:"maxInputTokens,omitempty"`

	// minInputTokens matches requests estimated at or above this many input tokens.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MinInputTokens *int32 `json:"minInputTokens,omitempty"`

	// messageMatches is a regular expression (RE2) on the last user message.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	MessageMatches string `json:"messageMatches,omitempty"`

	// roles matches users with one of these roles.
	// +optional
	// +listType=set
	Roles []UserRole `json:"roles,omitempty"`
}

// QuotaSpec holds the default daily quotas.
type QuotaSpec struct {
	DailyQuota `json:",inline"`

	// timeZone in which a day starts and ends (IANA name).
	// +optional
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MaxLength=64
	TimeZone string `json:"timeZone,omitempty"`

	// notify says where quota notifications go.
	// +optional
	Notify *QuotaNotify `json:"notify,omitempty"`

	// costAwareFallback lets a fallback to a pricier model happen only when
	// the user's remaining quota covers its worst case.
	// +optional
	CostAwareFallback bool `json:"costAwareFallback,omitempty"`
}

// QuotaNotify says where quota notifications go.
type QuotaNotify struct {
	// slackWebhookSecretRef is the Secret key holding a Slack incoming-webhook URL.
	// +optional
	SlackWebhookSecretRef *SecretKeyRef `json:"slackWebhookSecretRef,omitempty"`
}

// MonitoringSpec configures metrics scraping, alerts and the dashboard.
type MonitoringSpec struct {
	// endUserLabel is the end_user label on metrics: the email, a keyed hash
	// of it, or nothing.
	// +optional
	// +kubebuilder:default=Email
	EndUserLabel IdentityForm `json:"endUserLabel,omitempty"`

	// serviceMonitor makes Prometheus Operator scrape the gateway.
	// +optional
	// +kubebuilder:default={}
	ServiceMonitor ServiceMonitorSpec `json:"serviceMonitor,omitempty"`

	// alerts configures the PrometheusRule.
	// +optional
	// +kubebuilder:default={}
	Alerts AlertsSpec `json:"alerts,omitempty"`

	// grafanaDashboard renders a dashboard ConfigMap for Grafana's sidecar.
	// +optional
	// +kubebuilder:default={}
	GrafanaDashboard GrafanaDashboardSpec `json:"grafanaDashboard,omitempty"`

	// scrapers are the pods the NetworkPolicy lets reach the gateway's
	// metrics port, and no one else: the metrics name people and what they
	// spend. Unset, pods labelled app.kubernetes.io/name: prometheus (as
	// Prometheus Operator labels its Prometheus pods) in any namespace.
	// +optional
	Scrapers *ScraperSelector `json:"scrapers,omitempty"`
}

// ScraperSelector selects the pods allowed to scrape the metrics port, as
// a NetworkPolicy peer does.
type ScraperSelector struct {
	// podSelector selects the scraping pods by label.
	// +required
	PodSelector metav1.LabelSelector `json:"podSelector"`

	// namespaceSelector selects the namespaces those pods may be in; unset
	// (or {}) means any namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// ServiceMonitorSpec configures the ServiceMonitor.
type ServiceMonitorSpec struct {
	// enabled creates a ServiceMonitor where Prometheus Operator is installed.
	// +optional
	// +kubebuilder:default=true
	Enabled bool `json:"enabled"`

	// interval between scrapes.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 30s, 5m or 2h (there is no d: write 90 days as 2160h)"
	Interval *metav1.Duration `json:"interval,omitempty"`
}

// AlertsSpec configures the alert rules.
type AlertsSpec struct {
	// enabled creates a PrometheusRule where Prometheus Operator is installed.
	// +optional
	// +kubebuilder:default=true
	Enabled bool `json:"enabled"`

	// dailySpendUSD alerts when one user's spend over 24 hours exceeds it.
	// +optional
	// +kubebuilder:default="5"
	DailySpendUSD *USD `json:"dailySpendUSD,omitempty"`

	// liteLLMSpendDrift checks the gateway's metering against LiteLLM's: for
	// each provider that renders a LiteLLM config with its Prometheus
	// callback on (liteLLM.settings.successCallback holds "prometheus") and
	// whose baseURL is a Service in the cluster, an alert fires when, for one
	// of its models, the spend the gateways in this namespace metered over
	// the last hour and LiteLLM's own litellm_spend_metric_total for that
	// hour differ by more than this fraction of LiteLLM's figure: 0.05 is
	// 5%. A price in a ModelProvider that disagrees with LiteLLM's is the
	// usual cause.
	// +optional
	// +kubebuilder:default="0.05"
	LiteLLMSpendDrift *Fraction `json:"liteLLMSpendDrift,omitempty"`
}

// GrafanaDashboardSpec configures the Grafana dashboard.
type GrafanaDashboardSpec struct {
	// enabled renders the dashboard ConfigMap (label grafana_dashboard: "1").
	// +optional
	// +kubebuilder:default=true
	Enabled bool `json:"enabled"`

	// seatPriceUSD is a monthly subscription price per person to compare
	// spend against (the "$20 a seat" line).
	// +optional
	// +kubebuilder:default="20"
	SeatPriceUSD *USD `json:"seatPriceUSD,omitempty"`
}

// ServiceSpec configures the gateway's Service.
type ServiceSpec struct {
	// type of the Service.
	// +optional
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	Type corev1.ServiceType `json:"type,omitempty"`

	// port the Service listens on.
	// +optional
	// +kubebuilder:default=80
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
}

// ChatGatewayStatus is the observed state of a ChatGateway.
type ChatGatewayStatus struct {
	// conditions: Ready, ProvidersReady, AllowlistReady, SecretsResolved,
	// TokenReady, KeysReady, MonitoringReady, GatewayAvailable, and
	// Reconciling or Stalled while Ready is not True.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the status describes: set when a
	// reconcile of that generation ended Ready or Stalled.
	// +optional
	// +kubebuilder:default=-1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// replicas is the desired number of gateway pods.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// readyReplicas is the number of gateway pods ready to serve.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// tokenRotatedAt is when the current gateway token was minted.
	// +optional
	TokenRotatedAt *metav1.Time `json:"tokenRotatedAt,omitempty"`

	// nextTokenRotation is when the next scheduled rotation happens.
	// +optional
	NextTokenRotation *metav1.Time `json:"nextTokenRotation,omitempty"`

	// tokenSecretName names the Secret holding the gateway token.
	// +optional
	TokenSecretName string `json:"tokenSecretName,omitempty"`

	// url is the in-cluster URL of the gateway's Service.
	// +optional
	URL string `json:"url,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cgw,categories=chatgateway
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready-Replicas",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Default-Model",type=string,JSONPath=`.spec.defaultModel`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 55",message="a ChatGateway name may be at most 55 characters: its children's names add a suffix and must fit in 63"

// ChatGateway is one private, multi-user chat gateway: its providers and
// failover, who may sign in, how sessions are kept, what is private, and how
// spend is limited and watched.
type ChatGateway struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the gateway.
	// +required
	Spec ChatGatewaySpec `json:"spec"`

	// status is the gateway's observed state.
	// Until the operator has seen the object, observedGeneration reads -1,
	// so kstatus (Flux, Argo CD) sees a generation not yet observed, not a
	// resource without status that it would call Current.
	// +optional
	// +kubebuilder:default={}
	Status ChatGatewayStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ChatGatewayList contains a list of ChatGateway.
type ChatGatewayList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ChatGateway `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ChatGateway{}, &ChatGatewayList{})
}
