package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// openaiAnthropic serves the OpenAI front (chat completions) from an
// Anthropic provider.
type openaiAnthropic struct{}

func (openaiAnthropic) Request(in *Request, t Target, out *bytes.Buffer) *Error {
	o := in.oai
	if o.N != nil && *o.N > 1 {
		return Errorf(http.StatusBadRequest, "n > 1 is not supported by Anthropic providers; send one request per completion")
	}
	if rf := o.ResponseFormat; rf != nil && rf.Type != "" && rf.Type != "text" {
		return Errorf(http.StatusBadRequest, fmt.Sprintf("response_format %q is not supported by Anthropic providers; describe the format in the prompt or use a tool", rf.Type))
	}
	a := anthropicRequest{
		Model:    t.ModelID,
		Metadata: &anthropicMetadata{UserID: t.User},
		Stream:   o.Stream,
		TopP:     o.TopP,
	}
	if o.Temperature != nil {
		a.Temperature = ptr(min(*o.Temperature, 1)) // OpenAI's range is 0-2, Anthropic's 0-1
	}
	switch {
	case o.MaxCompletionTokens != nil:
		a.MaxTokens = *o.MaxCompletionTokens
	case o.MaxTokens != nil:
		a.MaxTokens = *o.MaxTokens
	default:
		a.MaxTokens = t.MaxTokens // required by the Messages API
	}
	if stop := bytes.TrimSpace(o.Stop); len(stop) > 0 && string(stop) != "null" {
		var one string
		if unmarshalLenient(stop, &one) == nil {
			a.StopSequences = []string{one}
		} else if unmarshalLenient(stop, &a.StopSequences) != nil {
			return Errorf(http.StatusBadRequest, "stop must be a string or a list of strings")
		}
	}
	for i, m := range o.Messages {
		if err := appendOpenAIMessage(&a, m); err != nil {
			return Errorf(http.StatusBadRequest, fmt.Sprintf("messages[%d]: %v", i, err))
		}
	}
	for _, tool := range o.Tools {
		if tool.Type != "function" {
			return Errorf(http.StatusBadRequest, fmt.Sprintf("tools of type %q are not supported; use function tools", tool.Type))
		}
		schema := tool.Function.Parameters
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		a.Tools = append(a.Tools, anthropicTool{Name: tool.Function.Name, Description: tool.Function.Description, InputSchema: schema})
	}
	if tc := bytes.TrimSpace(o.ToolChoice); len(tc) > 0 && string(tc) != "null" {
		choice, err := openaiToolChoice(tc)
		if err != nil {
			return Errorf(http.StatusBadRequest, err.Error())
		}
		a.ToolChoice = choice
	}
	if o.ParallelToolCalls != nil && !*o.ParallelToolCalls && len(a.Tools) > 0 {
		if a.ToolChoice == nil {
			a.ToolChoice = &anthropicToolChoice{Type: "auto"}
		}
		a.ToolChoice.DisableParallelToolUse = a.ToolChoice.Type != "none"
	}
	if err := encodeJSON(out, &a); err != nil {
		return Errorf(http.StatusBadRequest, "encoding the request: "+err.Error())
	}
	return nil
}

func openaiToolChoice(raw json.RawMessage) (*anthropicToolChoice, error) {
	var mode string
	if unmarshalLenient(raw, &mode) == nil {
		switch mode {
		case "auto":
			return &anthropicToolChoice{Type: "auto"}, nil
		case "required":
			return &anthropicToolChoice{Type: "any"}, nil
		case "none":
			return &anthropicToolChoice{Type: "none"}, nil
		}
		return nil, fmt.Errorf("tool_choice %q is not one of auto, required, none", mode)
	}
	var named struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if unmarshalLenient(raw, &named) != nil || named.Function.Name == "" {
		return nil, errors.New(`tool_choice must be "auto", "required", "none" or {"type":"function","function":{"name":...}}`)
	}
	return &anthropicToolChoice{Type: "tool", Name: named.Function.Name}, nil
}

// appendOpenAIMessage adds one OpenAI message to a. System and developer
// messages join the system prompt; tool results become tool_result blocks
// of a user turn. Consecutive turns of one role merge, which keeps tool
// results first in the turn that follows the tool calls, as Anthropic
// requires.
func appendOpenAIMessage(a *anthropicRequest, m openaiMessage) error {
	var role string
	var blocks []anthropicBlock
	switch m.Role {
	case "system", "developer":
		text, err := openaiTextOnly(m.Content)
		if err != nil {
			return err
		}
		if text != "" {
			a.System = append(a.System, anthropicBlock{Type: "text", Text: text})
		}
		return nil
	case "user":
		role = "user"
		if m.Content.Parts == nil {
			if m.Content.Text != "" {
				blocks = append(blocks, anthropicBlock{Type: "text", Text: m.Content.Text})
			}
			break
		}
		for _, p := range m.Content.Parts {
			switch p.Type {
			case "text":
				if p.Text != "" {
					blocks = append(blocks, anthropicBlock{Type: "text", Text: p.Text})
				}
			case "image_url":
				if p.ImageURL == nil {
					return errors.New("image_url part without image_url")
				}
				src, err := imageSource(p.ImageURL.URL)
				if err != nil {
					return err
				}
				blocks = append(blocks, anthropicBlock{Type: "image", Source: src})
			default:
				return fmt.Errorf("content parts of type %q are not supported by Anthropic providers", p.Type)
			}
		}
	case "assistant":
		role = "assistant"
		text, err := openaiTextOnly(m.Content)
		if err != nil {
			return err
		}
		if text != "" {
			blocks = append(blocks, anthropicBlock{Type: "text", Text: text})
		}
		for _, tc := range m.ToolCalls {
			input := json.RawMessage(strings.TrimSpace(tc.Function.Arguments))
			if len(input) == 0 {
				input = json.RawMessage(`{}`)
			}
			if input[0] != '{' || !validLenient(input) {
				return fmt.Errorf("tool call %q has arguments that are not a JSON object", tc.ID)
			}
			blocks = append(blocks, anthropicBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
		}
	case "tool":
		role = "user"
		text, err := openaiTextOnly(m.Content)
		if err != nil {
			return err
		}
		content := anthropicContent{}
		if text != "" {
			content = append(content, anthropicBlock{Type: "text", Text: text})
		}
		blocks = append(blocks, anthropicBlock{Type: "tool_result", ToolUseID: m.ToolCallID, Content: &content})
	default:
		return fmt.Errorf("role %q is not supported; use system, developer, user, assistant or tool", m.Role)
	}
	if len(blocks) == 0 {
		return nil // Anthropic refuses empty turns
	}
	if n := len(a.Messages); n > 0 && a.Messages[n-1].Role == role {
		a.Messages[n-1].Content = append(a.Messages[n-1].Content, blocks...)
		return nil
	}
	a.Messages = append(a.Messages, anthropicMessage{Role: role, Content: blocks})
	return nil
}

// openaiTextOnly reads content that must be text: a string or text parts
// (refusal parts count as text in an assistant's history).
func openaiTextOnly(c openaiContent) (string, error) {
	if c.Parts == nil {
		return c.Text, nil
	}
	var parts []string
	for _, p := range c.Parts {
		switch p.Type {
		case "text":
			parts = append(parts, p.Text)
		case "refusal":
			parts = append(parts, p.Refusal)
		default:
			return "", fmt.Errorf("content parts of type %q are not allowed here", p.Type)
		}
	}
	return strings.Join(parts, "\n"), nil
}

// imageSource maps an image_url: a data: URL becomes base64 source, an
// http(s) URL a url source (Anthropic fetches it).
func imageSource(url string) (*anthropicSource, error) {
	if rest, ok := strings.CutPrefix(url, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isBase64 || mediaType == "" {
			return nil, errors.New("image data URLs must look like data:image/png;base64,<data>")
		}
		return &anthropicSource{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://") {
		return &anthropicSource{Type: "url", URL: url}, nil
	}
	return nil, errors.New("image_url must be an http(s) URL or a base64 data URL")
}

func (openaiAnthropic) Response(body []byte, out *bytes.Buffer) (metering.Usage, error) {
	var m anthropicResponse
	if err := unmarshalLenient(body, &m); err != nil {
		return metering.Usage{}, err
	}
	if m.Type != "message" {
		return metering.Usage{}, errors.New(`the response is not a "message"`)
	}
	msg := openaiResponseMessage{Role: "assistant"}
	var text strings.Builder
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			input := string(b.Input)
			if input == "" {
				input = "{}"
			}
			msg.ToolCalls = append(msg.ToolCalls, openaiToolCall{ID: b.ID, Type: "function", Function: openaiFunctionCall{Name: b.Name, Arguments: input}})
		}
	}
	if text.Len() > 0 || len(msg.ToolCalls) == 0 {
		msg.Content = ptr(text.String())
	}
	stop := ""
	if m.StopReason != nil {
		stop = *m.StopReason
	}
	u := m.Usage.usage()
	c := openaiCompletion{
		ID:      m.ID,
		Object:  "chat.completion",
		Created: time.Now().Unix(),
		Model:   m.Model,
		Choices: []openaiChoice{{Message: msg, FinishReason: anthropicStopToOpenAI(stop)}},
		Usage:   openaiUsageOf(u),
	}
	return u, encodeJSON(out, &c)
}

// openaiUsageOf reports usage the OpenAI way: prompt_tokens includes the
// cached tokens, cached_tokens says how many were read from cache.
func openaiUsageOf(u metering.Usage) *openaiUsage {
	ou := &openaiUsage{
		PromptTokens:     u.Input + u.CacheRead + u.CacheWrite,
		CompletionTokens: u.Output,
	}
	ou.TotalTokens = ou.PromptTokens + ou.CompletionTokens
	ou.PromptTokensDetails = &openaiPromptTokensDetails{CachedTokens: u.CacheRead}
	return ou
}

func (openaiAnthropic) Stream(in *Request) Stream {
	return &openaiFromAnthropicStream{includeUsage: in.includeUsage(), tools: map[int]int{}, created: time.Now().Unix()}
}

// openaiFromAnthropicStream turns Messages events into chat.completion.chunk
// events: a role chunk, content and tool-call deltas, a finish_reason chunk,
// the usage chunk when the caller asked for it, and [DONE].
type openaiFromAnthropicStream struct {
	includeUsage bool
	id, model    string
	created      int64
	tools        map[int]int // Anthropic block index → OpenAI tool call index
	streamState
}

func (s *openaiFromAnthropicStream) chunk(out *Writer, d openaiDelta, finish *string) {
	out.JSON("", openaiChunk{
		ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model,
		Choices: []openaiChunkChoice{{Delta: d, FinishReason: finish}},
	})
}

func (s *openaiFromAnthropicStream) Event(ev *Event, out *Writer) error {
	var e anthropicEvent
	if err := unmarshalLenient(ev.Data, &e); err != nil {
		return malformedEvent(err)
	}
	typ := e.Type
	if len(ev.Name) > 0 {
		typ = string(ev.Name)
	}
	switch typ {
	case "message_start":
		if e.Message == nil {
			return malformedEvent(errors.New("message_start without a message"))
		}
		s.id, s.model = e.Message.ID, e.Message.Model
		s.u = e.Message.Usage.usage()
		s.chunk(out, openaiDelta{Role: "assistant", Content: ptr("")}, nil)
	case "content_block_start":
		if b := e.ContentBlock; b != nil {
			switch b.Type {
			case "text":
				if b.Text != "" {
					s.chunk(out, openaiDelta{Content: ptr(b.Text)}, nil)
				}
			case "tool_use":
				k := len(s.tools)
				s.tools[e.Index] = k
				s.chunk(out, openaiDelta{ToolCalls: []openaiToolCall{{Index: ptr(k), ID: b.ID, Type: "function", Function: openaiFunctionCall{Name: b.Name}}}}, nil)
			}
		}
	case "content_block_delta":
		if d := e.Delta; d != nil {
			switch d.Type {
			case "text_delta":
				s.chunk(out, openaiDelta{Content: ptr(d.Text)}, nil)
			case "input_json_delta":
				if k, ok := s.tools[e.Index]; ok && d.PartialJSON != "" {
					s.chunk(out, openaiDelta{ToolCalls: []openaiToolCall{{Index: ptr(k), Function: openaiFunctionCall{Arguments: d.PartialJSON}}}}, nil)
				}
			}
		}
	case "message_delta":
		if e.Usage != nil {
			e.Usage.applyTo(&s.u)
		}
		stop := ""
		if e.Delta != nil && e.Delta.StopReason != nil {
			stop = *e.Delta.StopReason
		}
		s.chunk(out, openaiDelta{}, ptr(anthropicStopToOpenAI(stop)))
	case "message_stop":
		if s.includeUsage {
			out.JSON("", openaiChunk{
				ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model,
				Choices: []openaiChunkChoice{}, Usage: openaiUsageOf(s.u),
			})
		}
		out.Raw("", doneData)
		s.finished = true
	case "error":
		return anthropicStreamFault(e.Error)
	}
	return nil
}
