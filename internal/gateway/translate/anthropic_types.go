package translate

import (
	"bytes"
	"encoding/json"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// Wire types of Anthropic's Messages API. anthropicRequest is also the
// allow-list of the Anthropic front: a caller's body is decoded into it
// strictly (see strict.go), so a member it does not name is refused rather
// than forwarded, and the same-dialect translator encodes it rather than
// the caller's bytes. Each field here is free or priced by the usage the
// provider reports; what is not (server tools, a one-hour cache, a
// priority tier, documents) is left out on purpose, or checked in validate.

type anthropicRequest struct {
	Model         string               `json:"model"`
	Messages      []anthropicMessage   `json:"messages"`
	System        anthropicContent     `json:"system,omitzero"`
	MaxTokens     int64                `json:"max_tokens"`
	Metadata      *anthropicMetadata   `json:"metadata,omitzero"`
	StopSequences []string             `json:"stop_sequences,omitzero"`
	Stream        bool                 `json:"stream,omitzero"`
	Temperature   *float64             `json:"temperature,omitzero"`
	TopP          *float64             `json:"top_p,omitzero"`
	TopK          *int64               `json:"top_k,omitzero"`
	Tools         []anthropicTool      `json:"tools,omitzero"`
	ToolChoice    *anthropicToolChoice `json:"tool_choice,omitzero"`
	// Thinking tokens are output tokens, within max_tokens.
	Thinking *anthropicThinking `json:"thinking,omitzero"`
	// ServiceTier: "standard_only" only ("auto" may use the pricier
	// priority tier).
	ServiceTier string `json:"service_tier,omitzero"`
}

type anthropicMetadata struct {
	UserID string `json:"user_id,omitzero"`
}

type anthropicThinking struct {
	Type         string `json:"type"`
	BudgetTokens *int64 `json:"budget_tokens,omitzero"`
}

type anthropicMessage struct {
	Role    string           `json:"role"`
	Content anthropicContent `json:"content"`
}

// anthropicContent is a list of blocks; on the wire it may also be a plain
// string, which reads as one text block.
type anthropicContent []anthropicBlock

func (c *anthropicContent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = anthropicContent{{Type: "text", Text: s}}
		return nil
	}
	return json.Unmarshal(b, (*[]anthropicBlock)(c))
}

// UnmarshalJSONFrom is the strict decode's: the blocks are decoded under
// the caller's options, so an unknown member inside one is refused too.
func (c *anthropicContent) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == '"' {
		var s string
		if err := jsonv2.UnmarshalDecode(dec, &s); err != nil {
			return err
		}
		*c = anthropicContent{{Type: "text", Text: s}}
		return nil
	}
	return jsonv2.UnmarshalDecode(dec, (*[]anthropicBlock)(c))
}

type anthropicBlock struct {
	Type string `json:"type"`
	Text string `json:"text,omitzero"`
	// image
	Source *anthropicSource `json:"source,omitzero"`
	// tool_use
	ID    string          `json:"id,omitzero"`
	Name  string          `json:"name,omitzero"`
	Input json.RawMessage `json:"input,omitzero"`
	// tool_result
	ToolUseID string            `json:"tool_use_id,omitzero"`
	Content   *anthropicContent `json:"content,omitzero"`
	IsError   bool              `json:"is_error,omitzero"`
	// thinking, redacted_thinking (an assistant turn's, sent back)
	Thinking  string `json:"thinking,omitzero"`
	Signature string `json:"signature,omitzero"`
	Data      string `json:"data,omitzero"`
	// CacheControl marks a cache breakpoint; see validate for the ttl.
	CacheControl *anthropicCacheControl `json:"cache_control,omitzero"`
}

type anthropicCacheControl struct {
	Type string `json:"type"`
	TTL  string `json:"ttl,omitzero"`
}

type anthropicSource struct {
	Type      string `json:"type"` // base64 or url
	MediaType string `json:"media_type,omitzero"`
	Data      string `json:"data,omitzero"`
	URL       string `json:"url,omitzero"`
}

type anthropicTool struct {
	Type         string                 `json:"type,omitzero"` // "" or "custom"; others are server tools
	Name         string                 `json:"name"`
	Description  string                 `json:"description,omitzero"`
	InputSchema  json.RawMessage        `json:"input_schema,omitzero"`
	CacheControl *anthropicCacheControl `json:"cache_control,omitzero"`
}

type anthropicToolChoice struct {
	Type                   string `json:"type"` // auto, any, tool, none
	Name                   string `json:"name,omitzero"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitzero"`
}

type anthropicResponse struct {
	ID           string           `json:"id"`
	Type         string           `json:"type"`
	Role         string           `json:"role"`
	Model        string           `json:"model"`
	Content      []anthropicBlock `json:"content"`
	StopReason   *string          `json:"stop_reason"`
	StopSequence *string          `json:"stop_sequence"`
	Usage        anthropicUsage   `json:"usage"`
}

type anthropicUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
}

func (u anthropicUsage) usage() metering.Usage {
	return metering.Usage{Input: u.InputTokens, Output: u.OutputTokens, CacheRead: u.CacheReadInputTokens, CacheWrite: u.CacheCreationInputTokens}
}

// anthropicEvent is any Messages stream event, decoded once.
type anthropicEvent struct {
	Type         string               `json:"type"`
	Message      *anthropicResponse   `json:"message,omitempty"`
	Index        int                  `json:"index"`
	ContentBlock *anthropicBlock      `json:"content_block,omitempty"`
	Delta        *anthropicDelta      `json:"delta,omitempty"`
	Usage        *anthropicDeltaUsage `json:"usage,omitempty"`
	Error        *anthropicError      `json:"error,omitempty"`
}

type anthropicDelta struct {
	Type         string  `json:"type,omitempty"`
	Text         string  `json:"text,omitempty"`
	PartialJSON  string  `json:"partial_json,omitempty"`
	StopReason   *string `json:"stop_reason,omitempty"`
	StopSequence *string `json:"stop_sequence,omitempty"`
}

// anthropicDeltaUsage holds message_delta's cumulative counts; a field that
// is absent keeps the value message_start reported.
type anthropicDeltaUsage struct {
	InputTokens              *int64 `json:"input_tokens,omitempty"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens,omitempty"`
	OutputTokens             *int64 `json:"output_tokens,omitempty"`
}

func (d *anthropicDeltaUsage) applyTo(u *metering.Usage) {
	set := func(dst *int64, v *int64) {
		if v != nil {
			*dst = *v
		}
	}
	set(&u.Input, d.InputTokens)
	set(&u.CacheWrite, d.CacheCreationInputTokens)
	set(&u.CacheRead, d.CacheReadInputTokens)
	set(&u.Output, d.OutputTokens)
}

type anthropicError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type anthropicErrorEnvelope struct {
	Type  string         `json:"type"`
	Error anthropicError `json:"error"`
}
