package translate

import (
	"bytes"
	"encoding/json"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// Wire types of the OpenAI chat completions API, limited to what translation
// reads or writes (see anthropic_types.go).

type openaiRequest struct {
	Model               string               `json:"model"`
	Messages            []openaiMessage      `json:"messages"`
	MaxTokens           *int64               `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int64               `json:"max_completion_tokens,omitempty"`
	Temperature         *float64             `json:"temperature,omitempty"`
	TopP                *float64             `json:"top_p,omitempty"`
	Stop                json.RawMessage      `json:"stop,omitempty"` // string or list
	Stream              bool                 `json:"stream,omitempty"`
	StreamOptions       *openaiStreamOptions `json:"stream_options,omitempty"`
	Tools               []openaiTool         `json:"tools,omitempty"`
	ToolChoice          json.RawMessage      `json:"tool_choice,omitempty"` // string or object
	ParallelToolCalls   *bool                `json:"parallel_tool_calls,omitempty"`
	User                string               `json:"user,omitempty"`
	N                   *int64               `json:"n,omitempty"`
	ResponseFormat      *struct {
		Type string `json:"type"`
	} `json:"response_format,omitempty"`
}

type openaiStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type openaiMessage struct {
	Role       string           `json:"role"`
	Content    openaiContent    `json:"content"`
	Name       string           `json:"name,omitempty"`
	ToolCalls  []openaiToolCall `json:"tool_calls,omitempty"`
	ToolCallID string           `json:"tool_call_id,omitempty"`
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
		return json.Unmarshal(b, &c.Text)
	}
	*c = openaiContent{Parts: []openaiPart{}}
	return json.Unmarshal(b, &c.Parts)
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
	Text     string          `json:"text,omitempty"`
	Refusal  string          `json:"refusal,omitempty"`
	ImageURL *openaiImageURL `json:"image_url,omitempty"`
}

type openaiImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

type openaiToolCall struct {
	Index    *int               `json:"index,omitempty"` // stream deltas only
	ID       string             `json:"id,omitempty"`
	Type     string             `json:"type,omitempty"`
	Function openaiFunctionCall `json:"function"`
}

type openaiFunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type openaiTool struct {
	Type     string         `json:"type"`
	Function openaiFunction `json:"function"`
}

type openaiFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
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
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
		// LiteLLM in front of Anthropic models reports cache writes here
		// or at the top level; both are part of prompt_tokens.
		CacheCreationTokens int64 `json:"cache_creation_tokens,omitempty"`
	} `json:"prompt_tokens_details,omitempty"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens,omitempty"`
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
