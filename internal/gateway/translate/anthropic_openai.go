package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// anthropicOpenAI serves the Anthropic front (Messages API) from an
// OpenAI-compatible provider.
type anthropicOpenAI struct{}

func (anthropicOpenAI) Request(in *Request, t Target, out *bytes.Buffer) *Error {
	a := in.anth
	o := openaiRequest{
		Model:       t.ModelID,
		User:        t.User,
		Temperature: a.Temperature,
		TopP:        a.TopP,
		Stream:      a.Stream,
	}
	maxTokens := a.MaxTokens
	if maxTokens <= 0 {
		maxTokens = t.MaxTokens
	}
	// max_tokens rather than max_completion_tokens: every OpenAI-compatible
	// server (LiteLLM, vLLM, Ollama) understands it.
	o.MaxTokens = &maxTokens
	if a.Stream {
		o.StreamOptions = &openaiStreamOptions{IncludeUsage: true}
	}
	if len(a.StopSequences) > 0 {
		o.Stop, _ = json.Marshal(a.StopSequences)
	}
	if sys := anthropicText(a.System); sys != "" {
		o.Messages = append(o.Messages, openaiMessage{Role: "system", Content: openaiContent{Text: sys}})
	}
	for i, m := range a.Messages {
		msgs, err := anthropicMessageToOpenAI(m)
		if err != nil {
			return Errorf(http.StatusBadRequest, fmt.Sprintf("messages[%d]: %v", i, err))
		}
		o.Messages = append(o.Messages, msgs...)
	}
	for _, tool := range a.Tools {
		if tool.Type != "" && tool.Type != "custom" {
			return Errorf(http.StatusBadRequest, fmt.Sprintf("tool %q of type %q is an Anthropic server tool, which OpenAI-compatible providers do not offer; use a model served by an Anthropic provider", tool.Name, tool.Type))
		}
		params := tool.InputSchema
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		o.Tools = append(o.Tools, openaiTool{Type: "function", Function: openaiFunction{Name: tool.Name, Description: tool.Description, Parameters: params}})
	}
	if tc := a.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto", "":
			o.ToolChoice = json.RawMessage(`"auto"`)
		case "any":
			o.ToolChoice = json.RawMessage(`"required"`)
		case "none":
			o.ToolChoice = json.RawMessage(`"none"`)
		case "tool":
			o.ToolChoice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": tc.Name}})
		default:
			return Errorf(http.StatusBadRequest, fmt.Sprintf("tool_choice type %q is not one of auto, any, tool, none", tc.Type))
		}
		if tc.DisableParallelToolUse && len(o.Tools) > 0 {
			o.ParallelToolCalls = ptr(false)
		}
	}
	if err := encodeJSON(out, &o); err != nil {
		return Errorf(http.StatusBadRequest, "encoding the request: "+err.Error())
	}
	return nil
}

// anthropicText joins the text blocks of a system prompt.
func anthropicText(c anthropicContent) string {
	var parts []string
	for _, b := range c {
		if b.Type == "text" && b.Text != "" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, "\n\n")
}

// anthropicMessageToOpenAI maps one message. A user message carrying
// tool_result blocks becomes "tool" messages first (they must directly
// follow the assistant's tool calls), then the remaining user content.
func anthropicMessageToOpenAI(m anthropicMessage) ([]openaiMessage, error) {
	switch m.Role {
	case "assistant":
		msg := openaiMessage{Role: "assistant"}
		var text []string
		for _, b := range m.Content {
			switch b.Type {
			case "text":
				text = append(text, b.Text)
			case "tool_use":
				args := string(b.Input)
				if args == "" {
					args = "{}"
				}
				msg.ToolCalls = append(msg.ToolCalls, openaiToolCall{ID: b.ID, Type: "function", Function: openaiFunctionCall{Name: b.Name, Arguments: args}})
			case "thinking", "redacted_thinking":
				// Reasoning is the Anthropic model's own; other models cannot use it.
			default:
				return nil, fmt.Errorf("assistant content of type %q cannot be sent to an OpenAI-compatible provider", b.Type)
			}
		}
		msg.Content = openaiContent{Text: strings.Join(text, "")}
		if msg.Content.Text == "" && len(msg.ToolCalls) > 0 {
			msg.Content.Null = true
		}
		return []openaiMessage{msg}, nil
	case "user":
		var out []openaiMessage
		var parts []openaiPart
		for _, b := range m.Content {
			switch b.Type {
			case "text":
				parts = append(parts, openaiPart{Type: "text", Text: b.Text})
			case "image":
				url, err := anthropicImageURL(b.Source)
				if err != nil {
					return nil, err
				}
				parts = append(parts, openaiPart{Type: "image_url", ImageURL: &openaiImageURL{URL: url}})
			case "tool_result":
				text, err := toolResultText(b)
				if err != nil {
					return nil, err
				}
				out = append(out, openaiMessage{Role: "tool", ToolCallID: b.ToolUseID, Content: openaiContent{Text: text}})
			default:
				return nil, fmt.Errorf("content of type %q cannot be sent to an OpenAI-compatible provider", b.Type)
			}
		}
		switch {
		case len(parts) == 1 && parts[0].Type == "text":
			out = append(out, openaiMessage{Role: "user", Content: openaiContent{Text: parts[0].Text}})
		case len(parts) > 0:
			out = append(out, openaiMessage{Role: "user", Content: openaiContent{Parts: parts}})
		}
		return out, nil
	}
	return nil, fmt.Errorf("role must be user or assistant, got %q", m.Role)
}

func anthropicImageURL(src *anthropicSource) (string, error) {
	switch {
	case src == nil:
		return "", errors.New("image block without a source")
	case src.Type == "base64":
		return "data:" + src.MediaType + ";base64," + src.Data, nil
	case src.Type == "url":
		return src.URL, nil
	}
	return "", fmt.Errorf("image source of type %q cannot be sent to an OpenAI-compatible provider", src.Type)
}

// toolResultText flattens a tool result: OpenAI tool messages hold text only.
func toolResultText(b anthropicBlock) (string, error) {
	if b.Content == nil {
		return "", nil
	}
	var parts []string
	for _, c := range *b.Content {
		if c.Type != "text" {
			return "", fmt.Errorf("tool_result content of type %q cannot be sent to an OpenAI-compatible provider", c.Type)
		}
		parts = append(parts, c.Text)
	}
	text := strings.Join(parts, "\n")
	if b.IsError {
		text = "Error: " + text
	}
	return text, nil
}

func (anthropicOpenAI) Response(body []byte, out *bytes.Buffer) (metering.Usage, error) {
	var c openaiCompletion
	if err := json.Unmarshal(body, &c); err != nil {
		return metering.Usage{}, err
	}
	if len(c.Choices) == 0 {
		return metering.Usage{}, errors.New("the response has no choices")
	}
	ch := c.Choices[0]
	content := []anthropicBlock{}
	if t := ch.Message.Content; t != nil && *t != "" {
		content = append(content, anthropicBlock{Type: "text", Text: *t})
	}
	if r := ch.Message.Refusal; r != nil && *r != "" {
		content = append(content, anthropicBlock{Type: "text", Text: *r})
	}
	for _, tc := range ch.Message.ToolCalls {
		content = append(content, anthropicBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: toolInput(tc.Function.Arguments)})
	}
	var u metering.Usage
	if c.Usage != nil {
		u = c.Usage.usage()
	}
	m := anthropicResponse{
		ID:         c.ID,
		Type:       "message",
		Role:       "assistant",
		Model:      c.Model,
		Content:    content,
		StopReason: ptr(openaiFinishToAnthropic(ch.FinishReason)),
		Usage:      anthropicUsage{InputTokens: u.Input, OutputTokens: u.Output, CacheReadInputTokens: u.CacheRead, CacheCreationInputTokens: u.CacheWrite},
	}
	return u, encodeJSON(out, &m)
}

// toolInput keeps arguments that are a JSON object; Anthropic's tool_use
// input must be one, and models do occasionally emit broken arguments.
func toolInput(args string) json.RawMessage {
	b := []byte(strings.TrimSpace(args))
	if len(b) > 0 && b[0] == '{' && json.Valid(b) {
		return b
	}
	return json.RawMessage(`{}`)
}

func (anthropicOpenAI) Stream(*Request) Stream {
	return &anthropicFromOpenAIStream{open: -1, tools: map[int]int{}}
}

// anthropicFromOpenAIStream turns chat.completion.chunk events into the
// Messages event sequence: message_start, content blocks (start, deltas,
// stop), message_delta with stop reason and usage, message_stop. OpenAI's
// usage arrives after the finish_reason chunk, so message_delta waits for
// [DONE].
type anthropicFromOpenAIStream struct {
	started  bool
	open     int // index of the open content block, -1 when none
	openText bool
	next     int // index of the next block
	tools    map[int]int
	stop     string
	streamState
}

type anthropicBlockStart struct {
	Type         string `json:"type"`
	Index        int    `json:"index"`
	ContentBlock any    `json:"content_block"`
}

type anthropicBlockDelta struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
	Delta any    `json:"delta"`
}

type anthropicTextDelta struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type anthropicJSONDelta struct {
	Type        string `json:"type"`
	PartialJSON string `json:"partial_json"`
}

type anthropicIndexEvent struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
}

func (s *anthropicFromOpenAIStream) Event(ev *Event, out *Writer) error {
	if isDone(ev.Data) {
		s.end(out)
		return nil
	}
	c, err := decodeChunk(ev)
	if err != nil {
		return err
	}
	if !s.started {
		s.started = true
		out.JSON("message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": c.ID, "type": "message", "role": "assistant", "model": c.Model, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil, "usage": anthropicUsage{},
		}})
	}
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			continue // n > 1 is refused on the way in; ignore strays
		}
		d := ch.Delta
		for _, t := range []*string{d.Content, d.Refusal} {
			if t == nil || *t == "" {
				continue
			}
			if s.open < 0 || !s.openText {
				s.closeBlock(out)
				s.startBlock(out, map[string]string{"type": "text", "text": ""})
				s.openText = true
			}
			out.JSON("content_block_delta", anthropicBlockDelta{Type: "content_block_delta", Index: s.open, Delta: anthropicTextDelta{Type: "text_delta", Text: *t}})
		}
		for _, tc := range d.ToolCalls {
			idx := 0
			if tc.Index != nil {
				idx = *tc.Index
			}
			block, known := s.tools[idx]
			if !known {
				s.closeBlock(out)
				block = s.startBlock(out, map[string]any{"type": "tool_use", "id": tc.ID, "name": tc.Function.Name, "input": map[string]any{}})
				s.tools[idx] = block
			}
			if tc.Function.Arguments != "" {
				out.JSON("content_block_delta", anthropicBlockDelta{Type: "content_block_delta", Index: block, Delta: anthropicJSONDelta{Type: "input_json_delta", PartialJSON: tc.Function.Arguments}})
			}
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			s.stop = openaiFinishToAnthropic(*ch.FinishReason)
			s.closeBlock(out)
		}
	}
	if c.Usage != nil {
		s.u = c.Usage.usage()
	}
	return nil
}

func (s *anthropicFromOpenAIStream) startBlock(out *Writer, block any) int {
	s.open, s.openText = s.next, false
	s.next++
	out.JSON("content_block_start", anthropicBlockStart{Type: "content_block_start", Index: s.open, ContentBlock: block})
	return s.open
}

func (s *anthropicFromOpenAIStream) closeBlock(out *Writer) {
	if s.open >= 0 {
		out.JSON("content_block_stop", anthropicIndexEvent{Type: "content_block_stop", Index: s.open})
		s.open = -1
	}
}

func (s *anthropicFromOpenAIStream) end(out *Writer) {
	if s.finished || !s.started {
		return
	}
	s.closeBlock(out)
	if s.stop == "" {
		s.stop = "end_turn"
	}
	out.JSON("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": s.stop, "stop_sequence": nil},
		"usage": anthropicUsage{InputTokens: s.u.Input, OutputTokens: s.u.Output, CacheReadInputTokens: s.u.CacheRead, CacheCreationInputTokens: s.u.CacheWrite},
	})
	out.JSON("message_stop", map[string]string{"type": "message_stop"})
	s.finished = true
}

// eof accepts a stream that ended without [DONE] once the finish_reason
// arrived: some OpenAI-compatible servers omit [DONE].
func (s *anthropicFromOpenAIStream) EOF(out *Writer) error {
	if !s.finished {
		if s.stop == "" {
			return errTruncated
		}
		s.end(out)
	}
	return nil
}
