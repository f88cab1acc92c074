package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProviderType is the wire dialect an upstream speaks.
// +kubebuilder:validation:Enum=Anthropic;OpenAICompatible
type ProviderType string

const (
	// ProviderAnthropic speaks Anthropic's Messages API.
	ProviderAnthropic ProviderType = "Anthropic"
	// ProviderOpenAICompatible speaks OpenAI's chat completions API (LiteLLM,
	// vLLM, Ollama, OpenAI itself).
	ProviderOpenAICompatible ProviderType = "OpenAICompatible"
)

// Default base URLs per provider type.
const (
	DefaultAnthropicBaseURL = "https://api.anthropic.com"
)

// ModelProviderSpec describes one upstream model provider.
// +kubebuilder:validation:XValidation:rule="!has(self.liteLLM) || self.type == 'OpenAICompatible'",message="liteLLM is only for OpenAICompatible providers: remove it or set type: OpenAICompatible"
// +kubebuilder:validation:XValidation:rule="!has(self.liteLLM) || !has(self.liteLLM.deployment) || has(self.apiKeySecretRef)",message="liteLLM.deployment needs apiKeySecretRef: that key becomes the LiteLLM proxy's master key, which the gateway sends"
// +kubebuilder:validation:XValidation:rule="self.type == 'Anthropic' || has(self.baseURL)",message="baseURL is required for OpenAICompatible providers (for a LiteLLM proxy, its Service URL such as http://litellm:4000)"
type ModelProviderSpec struct {
	// type is the API dialect the provider speaks: Anthropic (the Messages
	// API) or OpenAICompatible (chat completions: LiteLLM, vLLM, Ollama, OpenAI).
	// +required
	Type ProviderType `json:"type"`

	// baseURL is the provider's endpoint, without the /v1 path. Defaults to
	// https://api.anthropic.com for Anthropic; required for OpenAICompatible.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.startsWith('http://')",message="baseURL must start with http:// or https://"
	BaseURL string `json:"baseURL,omitempty"`

	// apiKeySecretRef is the Secret key holding the provider's API key. It is
	// mounted into the gateway as a file and never copied elsewhere. Optional
	// for keyless upstreams such as a LiteLLM proxy inside the cluster.
	// +optional
	APIKeySecretRef *SecretKeyRef `json:"apiKeySecretRef,omitempty"`

	// timeouts bound each attempt against this provider.
	// +optional
	// +kubebuilder:default={}
	Timeouts ProviderTimeouts `json:"timeouts,omitempty"`

	// models are the names users pick, what each maps to upstream, and what
	// each costs.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Models []ModelSpec `json:"models"`

	// liteLLM, on an OpenAICompatible provider, makes the operator render a
	// LiteLLM proxy config.yaml into a ConfigMap for a LiteLLM deployment to mount.
	// +optional
	LiteLLM *LiteLLMSpec `json:"liteLLM,omitempty"`
}

// ProviderTimeouts bound an attempt against a provider.
type ProviderTimeouts struct {
	// connect bounds establishing the connection (TCP and TLS).
	// +optional
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 30s, 5m or 2h (there is no d: write 90 days as 2160h)"
	Connect *metav1.Duration `json:"connect,omitempty"`

	// firstByte bounds the wait for the response headers once the request
	// is sent; past it the gateway fails over.
	// +optional
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 30s, 5m or 2h (there is no d: write 90 days as 2160h)"
	FirstByte *metav1.Duration `json:"firstByte,omitempty"`
}

// ModelKind is what a model makes.
// +kubebuilder:validation:Enum=Chat;Image
type ModelKind string

const (
	// ModelChat answers messages with text, priced per token.
	ModelChat ModelKind = "Chat"
	// ModelImage makes pictures from a prompt, priced per picture.
	ModelImage ModelKind = "Image"
)

// ModelInput is a kind of content a chat model reads.
// +kubebuilder:validation:Enum=Text;Image
type ModelInput string

const (
	// InputText is text; every chat model reads it.
	InputText ModelInput = "Text"
	// InputImage is a picture sent with a message.
	InputImage ModelInput = "Image"
)

// ModelSpec is one model a provider serves.
// +kubebuilder:validation:XValidation:rule="self.kind != 'Image' || has(self.pricing.perImage)",message="an Image model is priced per picture: set pricing.perImage, such as [{size: 1024x1024, quality: standard, usd: \"0.04\"}]"
// +kubebuilder:validation:XValidation:rule="self.kind != 'Image' || !(has(self.pricing.inputPerMTok) || has(self.pricing.outputPerMTok) || has(self.pricing.cacheReadPerMTok) || has(self.pricing.cacheWritePerMTok))",message="an Image model is priced per picture only: remove the token prices"
// +kubebuilder:validation:XValidation:rule="self.kind == 'Image' || (has(self.pricing.inputPerMTok) && has(self.pricing.outputPerMTok))",message="a Chat model needs pricing.inputPerMTok and pricing.outputPerMTok"
// +kubebuilder:validation:XValidation:rule="self.kind == 'Image' || !has(self.pricing.perImage)",message="pricing.perImage prices pictures: set kind: Image, or remove it"
// +kubebuilder:validation:XValidation:rule="self.kind != 'Image' || !has(self.input)",message="input says what a Chat model reads; an Image model reads a prompt: remove input"
type ModelSpec struct {
	// name is the alias users and clients pick, such as "sonnet".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`
	Name string `json:"name"`

	// id is the model's identifier upstream, such as
	// "claude-sonnet-4-5-20250929" or a LiteLLM model_name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ID string `json:"id"`

	// kind is what the model makes: Chat (replies to messages, priced per
	// token) or Image (pictures from a prompt, served at
	// POST /v1/images/generations and on the chat page, priced per picture).
	// +optional
	// +kubebuilder:default=Chat
	Kind ModelKind `json:"kind,omitempty"`

	// input lists what a Chat model reads: Text, and Image for models that
	// take pictures with a message (Claude, Nova Lite, GPT-4o). The chat
	// page offers to attach pictures only to models with Image, and the
	// gateway refuses pictures for the others. Defaults to [Text].
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:XValidation:rule="self.exists(i, i == 'Text')",message="input must include Text: every chat model reads text"
	Input []ModelInput `json:"input,omitempty"`

	// pricing is what the provider charges, used to attribute cost per user:
	// per token for a Chat model, per picture for an Image model.
	// +required
	Pricing ModelPricing `json:"pricing"`

	// contextWindow is the model's context size in tokens; stateful sessions
	// drop the oldest turns to fit it.
	// +optional
	// +kubebuilder:default=200000
	// +kubebuilder:validation:Minimum=1024
	ContextWindow int32 `json:"contextWindow,omitempty"`

	// maxOutputTokens caps a reply when the client sets no max_tokens, and
	// bounds the worst-case cost reserved against a quota.
	// +optional
	// +kubebuilder:default=8192
	// +kubebuilder:validation:Minimum=1
	MaxOutputTokens int32 `json:"maxOutputTokens,omitempty"`
}

// ModelPricing is a model's price in USD: per million tokens for a Chat
// model, per picture for an Image model.
type ModelPricing struct {
	// inputPerMTok is the price of a million input tokens (Chat models).
	// +optional
	InputPerMTok USD `json:"inputPerMTok,omitempty"`

	// outputPerMTok is the price of a million output tokens (Chat models).
	// +optional
	OutputPerMTok USD `json:"outputPerMTok,omitempty"`

	// cacheReadPerMTok is the price of a million input tokens read from the
	// prompt cache. Defaults to the input price when unset.
	// +optional
	CacheReadPerMTok *USD `json:"cacheReadPerMTok,omitempty"`

	// cacheWritePerMTok is the price of a million input tokens written to the
	// prompt cache. Defaults to the input price when unset.
	// +optional
	CacheWritePerMTok *USD `json:"cacheWritePerMTok,omitempty"`

	// perImage prices one picture of an Image model by size and quality, as
	// providers publish them. The first entry is the default: a request that
	// names no size or quality gets its size and quality. A picture is
	// priced by the entry of its quality for its exact size, else by the
	// smallest entry of its quality at least as large (width × height): the
	// price of 1024x1024 covers 1280x720 too. Larger pictures, and
	// qualities not listed, are refused before the provider is called.
	// +optional
	// +listType=map
	// +listMapKey=size
	// +listMapKey=quality
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	PerImage []ImagePrice `json:"perImage,omitempty"`
}

// ImagePrice is the price of one picture of a size and quality.
type ImagePrice struct {
	// size is the picture's size in pixels, WIDTHxHEIGHT, such as 1024x1024:
	// the largest picture this price covers.
	// +required
	// +kubebuilder:validation:MaxLength=11
	// +kubebuilder:validation:XValidation:rule="self.matches('^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$')",message="size must be WIDTHxHEIGHT in pixels, such as 1024x1024"
	Size string `json:"size"`

	// quality is the provider's name for it, such as standard or premium
	// (Nova Canvas), standard or hd (DALL·E 3), low, medium or high (GPT
	// image models).
	// +required
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z][a-z0-9-]*$')",message="quality must be a lower-case word such as standard, premium or hd"
	Quality string `json:"quality"`

	// usd is the price of one picture, such as "0.04".
	// +required
	USD USD `json:"usd"`
}

// LiteLLMSpec describes the LiteLLM proxy config the operator renders.
type LiteLLMSpec struct {
	// configMapName is the ConfigMap that receives config.yaml. Defaults to
	// "<provider name>-litellm".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ConfigMapName string `json:"configMapName,omitempty"`

	// settings become litellm_settings.
	// +optional
	// +kubebuilder:default={}
	Settings LiteLLMSettings `json:"settings,omitempty"`

	// models become model_list: one entry per model_name with its
	// litellm_params.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Models []LiteLLMModel `json:"models"`

	// deployment, when set, makes the operator run the LiteLLM proxy itself:
	// a Deployment and a Service named "<provider>-litellm" (port 4000) with
	// config.yaml mounted, whose pods roll when the rendered config changes.
	// Point baseURL at http://<provider>-litellm:4000. Without it the operator
	// only renders the ConfigMap, for a LiteLLM you run yourself.
	// +optional
	Deployment *LiteLLMDeploymentSpec `json:"deployment,omitempty"`
}

// LiteLLMDeploymentSpec is how the operator runs the LiteLLM proxy.
type LiteLLMDeploymentSpec struct {
	// image of the LiteLLM proxy. Pin a version in production.
	// +optional
	// +kubebuilder:default="ghcr.io/berriai/litellm:main-stable"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^[^\s]+$`
	Image string `json:"image,omitempty"`

	// replicas is the number of LiteLLM pods.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	Replicas *int32 `json:"replicas,omitempty"`

	// resources of the LiteLLM container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// envSecretRef names a Secret in this namespace whose keys become
	// LiteLLM's environment, such as AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY and AWS_REGION for Bedrock. params refer to them
	// as "os.environ/NAME". The pods roll when this Secret changes.
	// +optional
	EnvSecretRef *LocalRef `json:"envSecretRef,omitempty"`
}

// LiteLLMSettings are rendered as litellm_settings. Telemetry is always off.
type LiteLLMSettings struct {
	// dropParams makes LiteLLM drop OpenAI parameters the backend does not
	// support instead of failing (drop_params).
	// +optional
	// +kubebuilder:default=true
	DropParams *bool `json:"dropParams,omitempty"`

	// successCallback lists LiteLLM callbacks run on success, such as
	// "prometheus" (success_callback).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=64
	SuccessCallback []string `json:"successCallback,omitempty"`
}

// LiteLLMModel is one entry of LiteLLM's model_list.
type LiteLLMModel struct {
	// name is the model_name clients (the gateway) ask LiteLLM for.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`

	// params become litellm_params, such as
	// {model: bedrock/us.amazon.nova-micro-v1:0, aws_region_name: us-east-1}.
	// Put credentials in environment variables ("os.environ/NAME"), never here.
	// +required
	// +kubebuilder:validation:XValidation:rule="has(self.model)",message="params must include model, the LiteLLM provider/model string such as bedrock/us.amazon.nova-micro-v1:0"
	// +kubebuilder:validation:MaxProperties=32
	Params map[string]string `json:"params"`
}

// ModelProviderStatus is the observed state of a ModelProvider.
type ModelProviderStatus struct {
	// conditions: Ready, SecretResolved, LiteLLMAvailable (with
	// liteLLM.deployment), Reconciling and Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the status was computed from.
	// +optional
	// +kubebuilder:default=-1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// models lists the aliases this provider serves.
	// +optional
	// +listType=atomic
	Models []string `json:"models,omitempty"`

	// modelCount is the number of models, for kubectl get.
	// +optional
	ModelCount int32 `json:"modelCount,omitempty"`

	// baseURL is the endpoint in effect, defaults applied.
	// +optional
	BaseURL string `json:"baseURL,omitempty"`

	// liteLLMConfigMap names the rendered LiteLLM ConfigMap, if any.
	// +optional
	LiteLLMConfigMap string `json:"liteLLMConfigMap,omitempty"`

	// liteLLMDeployment names the LiteLLM Deployment the operator runs, if any.
	// +optional
	LiteLLMDeployment string `json:"liteLLMDeployment,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mp,categories=chatgateway
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Models",type=integer,JSONPath=`.status.modelCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ModelProvider is one upstream model provider: its API dialect, endpoint,
// API-key Secret and the models it serves with their prices.
type ModelProvider struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the provider.
	// +required
	Spec ModelProviderSpec `json:"spec"`

	// status is the provider's observed state.
	// Until the operator has seen the object, observedGeneration reads -1,
	// so kstatus (Flux, Argo CD) sees a generation not yet observed, not a
	// resource without status that it would call Current.
	// +optional
	// +kubebuilder:default={}
	Status ModelProviderStatus `json:"status,omitempty"`
}

// EffectiveBaseURL is the base URL with the per-type default applied.
func (s *ModelProviderSpec) EffectiveBaseURL() string {
	if s.BaseURL == "" && s.Type == ProviderAnthropic {
		return DefaultAnthropicBaseURL
	}
	return s.BaseURL
}

// +kubebuilder:object:root=true

// ModelProviderList contains a list of ModelProvider.
type ModelProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ModelProvider `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ModelProvider{}, &ModelProviderList{})
}
