package translate

import (
	"bytes"
	"encoding/json"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// Wire types of the OpenAI chat completions API, limited to what translation
// reads or writes (see anthropic_types.go).

// openaiRequest is also the allow-list of the OpenAI front: a caller's
// body is decoded into it strictly (see strict.go), so a member it does
// not name is refused rather than forwarded, and the same-dialect
// translator encodes it rather than the caller's bytes. Each field here is
// either free or priced by the usage the provider reports; what is not
// (audio output, web search, a pricier service tier) is left out on
// purpose, or checked in validate.
type openaiRequest struct {
	Model               string                `json:"model"`
	Messages            []openaiMessage       `json:"messages"`
	MaxTokens           *int64                `json:"max_tokens,omitzero"`
	MaxCompletionTokens *int64                `json:"max_completion_tokens,omitzero"`
	Temperature         *float64              `json:"temperature,omitzero"`
	TopP                *float64              `json:"top_p,omitzero"`
	Stop                json.RawMessage       `json:"stop,omitzero"` // string or list
	Stream              bool                  `json:"stream,omitzero"`
	StreamOptions       *openaiStreamOptions  `json:"stream_options,omitzero"`
	Tools               []openaiTool          `json:"tools,omitzero"`
	ToolChoice          json.RawMessage       `json:"tool_choice,omitzero"` // string or object
	ParallelToolCalls   *bool                 `json:"parallel_tool_calls,omitzero"`
	User                string                `json:"user,omitzero"`
	N                   *int64                `json:"n,omitzero"`
	ResponseFormat      *openaiResponseFormat `json:"response_format,omitzero"`
	Seed                *int64                `json:"seed,omitzero"`
	FrequencyPenalty    *float64              `json:"frequency_penalty,omitzero"`
	PresencePenalty     *float64              `json:"presence_penalty,omitzero"`
	LogitBias           map[string]float64    `json:"logit_bias,omitzero"`
	Logprobs            *bool                 `json:"logprobs,omitzero"`
	TopLogprobs         *int64                `json:"top_logprobs,omitzero"`
	// Reasoning tokens are output tokens, within max_completion_tokens.
	ReasoningEffort  string            `json:"reasoning_effort,omitzero"`
	Verbosity        string            `json:"verbosity,omitzero"`
	Metadata         map[string]string `json:"metadata,omitzero"`
	Store            *bool             `json:"store,omitzero"`
	PromptCacheKey   string            `json:"prompt_cache_key,omitzero"`
	SafetyIdentifier string            `json:"safety_identifier,omitzero"`
	// ServiceTier: "default" or "flex" (cheaper); see validate.
	ServiceTier string `json:"service_tier,omitzero"`
	// Modalities: ["text"] only; audio output is priced apart.
	Modalities []string `json:"modalities,omitzero"`
}

type openaiResponseFormat struct {
	Type       string          `json:"type"`
	JSONSchema json.RawMessage `json:"json_schema,omitzero"`
}

type openaiStreamOptions struct {
	IncludeUsage       bool  `json:"include_usage"`
	IncludeObfuscation *bool `json:"include_obfuscation,omitzero"`
}

type openaiMessage struct {
	Role       string           `json:"role"`
	Content    openaiContent    `json:"content"`
	Name       string           `json:"name,omitzero"`
	ToolCalls  []openaiToolCall `json:"tool_calls,omitzero"`
	ToolCallID string           `json:"tool_call_id,omitzero"`
	// Refusal is an assistant turn's earlier refusal, sent back as history.
	Refusal *string `json:"refusal,omitzero"`
}

// openaiContent is a string, a list of parts, or null.
type openaiContent struct {
	Text  string
	Parts []openaiPart // non-nil when the content is a list
	Null  bool
}

func (c *openaiContent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*c = openaiContent{Null: true}
		return nil
	case len(b) > 0 && b[0] == '"':
		*c = openaiContent{}
		return unmarshalLenient(b, &c.Text)
	}
	*c = openaiContent{Parts: []openaiPart{}}
	return unmarshalLenient(b, &c.Parts)
}

// UnmarshalJSONFrom is the strict decode's: the parts are decoded under
// the caller's options, so an unknown member inside one is refused too.
func (c *openaiContent) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch dec.PeekKind() {
	case 'n':
		_, err := dec.ReadToken()
		*c = openaiContent{Null: true}
		return err
	case '"':
		*c = openaiContent{}
		return jsonv2.UnmarshalDecode(dec, &c.Text)
	}
	*c = openaiContent{Parts: []openaiPart{}}
	return jsonv2.UnmarshalDecode(dec, &c.Parts)
}

// MarshalJSONTo is what the request encoder (go-json-experiment) calls:
// it writes in place, where MarshalJSON's bytes would be parsed again.
func (c openaiContent) MarshalJSONTo(enc *jsontext.Encoder) error {
	switch {
	case c.Parts != nil:
		return jsonv2.MarshalEncode(enc, c.Parts)
	case c.Null:
		return enc.WriteToken(jsontext.Null)
	}
	return enc.WriteToken(jsontext.String(c.Text))
}

func (c openaiContent) MarshalJSON() ([]byte, error) {
	switch {
	case c.Parts != nil:
		return json.Marshal(c.Parts)
	case c.Null:
		return []byte("null"), nil
	}
	return json.Marshal(c.Text)
}

type openaiPart struct {
	Type     string          `json:"type"`
	Text     string          `json:"text,omitzero"`
	Refusal  string          `json:"refusal,omitzero"`
	ImageURL *openaiImageURL `json:"image_url,omitzero"`
}

type openaiImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitzero"`
}

type openaiToolCall struct {
	Index    *int               `json:"index,omitzero"` // stream deltas only
	ID       string             `json:"id,omitzero"`
	Type     string             `json:"type,omitzero"`
	Function openaiFunctionCall `json:"function"`
}

type openaiFunctionCall struct {
	Name      string `json:"name,omitzero"`
	Arguments string `json:"arguments"`
}

type openaiTool struct {
	Type     string         `json:"type"`
	Function openaiFunction `json:"function"`
}

type openaiFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitzero"`
	Parameters  json.RawMessage `json:"parameters,omitzero"`
	Strict      *bool           `json:"strict,omitzero"`
}

type openaiCompletion struct {
	ID      string         `json:"id"`
	Object  string         `json:"object"`
	Created int64          `json:"created"`
	Model   string         `json:"model"`
	Choices []openaiChoice `json:"choices"`
	Usage   *openaiUsage   `json:"usage,omitempty"`
}

type openaiChoice struct {
	Index        int                   `json:"index"`
	Message      openaiResponseMessage `json:"message"`
	FinishReason string                `json:"finish_reason"`
}

type openaiResponseMessage struct {
	Role      string           `json:"role"`
	Content   *string          `json:"content"`
	Refusal   *string          `json:"refusal"`
	ToolCalls []openaiToolCall `json:"tool_calls,omitempty"`
}

type openaiChunk struct {
	ID      string              `json:"id"`
	Object  string              `json:"object"`
	Created int64               `json:"created"`
	Model   string              `json:"model"`
	Choices []openaiChunkChoice `json:"choices"`
	Usage   *openaiUsage        `json:"usage,omitempty"`
	// Error is how OpenAI-compatible servers report a failure mid-stream.
	Error json.RawMessage `json:"error,omitempty"`
}

type openaiChunkChoice struct {
	Index        int         `json:"index"`
	Delta        openaiDelta `json:"delta"`
	FinishReason *string     `json:"finish_reason"`
}

type openaiDelta struct {
	Role      string           `json:"role,omitempty"`
	Content   *string          `json:"content,omitempty"`
	Refusal   *string          `json:"refusal,omitempty"`
	ToolCalls []openaiToolCall `json:"tool_calls,omitempty"`
}

type openaiUsage struct {
	PromptTokens             int64                      `json:"prompt_tokens"`
	CompletionTokens         int64                      `json:"completion_tokens"`
	TotalTokens              int64                      `json:"total_tokens"`
	PromptTokensDetails      *openaiPromptTokensDetails `json:"prompt_tokens_details,omitempty"`
	CacheCreationInputTokens int64                      `json:"cache_creation_input_tokens,omitempty"`
}

type openaiPromptTokensDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
	// LiteLLM in front of Anthropic models reports cache writes here
	// or at the top level; both are part of prompt_tokens.
	CacheCreationTokens int64 `json:"cache_creation_tokens,omitempty"`
}

// usage splits prompt_tokens, which includes cached tokens, into the parts
// that are priced differently.
func (u *openaiUsage) usage() metering.Usage {
	out := metering.Usage{Output: u.CompletionTokens}
	var write int64
	if d := u.PromptTokensDetails; d != nil {
		out.CacheRead = d.CachedTokens
		write = d.CacheCreationTokens
	}
	if u.CacheCreationInputTokens > 0 {
		write = u.CacheCreationInputTokens
	}
	out.CacheWrite = write
	out.Input = max(u.PromptTokens-out.CacheRead-out.CacheWrite, 0)
	return out
}

type openaiError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type openaiErrorEnvelope struct {
	Error openaiError `json:"error"`
}
