package translate

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Request is the caller's request, read once and shared by every
// attempt of the failover plan.
type Request struct {
	front Dialect
	body  []byte
	// raw is the top-level object; same-dialect attempts edit a copy of it.
	raw          map[string]json.RawMessage
	model        string // as asked; empty when the caller named none
	stream       bool
	includeUsage bool // OpenAI front: the caller asked for the usage chunk

	// The typed forms, decoded on the first attempt that translates.
	anth *anthropicRequest
	oai  *openaiRequest

	// conv is set for a conversation built inside the gateway; it has no
	// body and no front dialect.
	conv *Conversation
}

// Conversation is a request the gateway builds itself (the stateful chat):
// plain-text turns, alternating from the user's, and a cap on the reply.
// It always streams, and what the provider streams back is read as Text
// (see Writer) rather than relayed.
type Conversation struct {
	Messages  []Message
	MaxTokens int64
}

// Message is one turn of a Conversation.
type Message struct {
	Role string // user or assistant
	Text string
}

// messageFramingBytes bounds what a message adds beyond its text (role,
// separators), in bytes, which are never fewer than tokens.
const messageFramingBytes = 16

// NewConversation is a streamed request for model (an alias, a provider
// model id or "auto").
func NewConversation(model string, c Conversation) *Request {
	return &Request{model: model, stream: true, conv: &c}
}

// Typed reports whether the request is a Conversation built inside the
// gateway rather than a caller's body in a dialect.
func (in *Request) Typed() bool { return in.conv != nil }

// Translator is the translator of the request to the provider's dialect.
func (in *Request) Translator(upstream Dialect) Translator {
	if in.conv != nil {
		if upstream == Anthropic {
			return chatAnthropic{}
		}
		return chatOpenAI{}
	}
	return For(in.front, upstream)
}

// Parse reads a request body in the front's dialect. Only what every
// attempt needs is decoded here; the typed form waits for the first
// attempt that translates. The error is the caller's (400).
func Parse(front Dialect, body []byte) (*Request, *Error) {
	in := &Request{front: front, body: body}
	if err := json.Unmarshal(body, &in.raw); err != nil || in.raw == nil {
		return nil, Errorf(http.StatusBadRequest, fmt.Sprintf("the request body must be a JSON object: %v", jsonErr(err)))
	}
	if err := decodeField(in.raw, "model", &in.model); err != nil {
		return nil, Errorf(http.StatusBadRequest, "model must be a string naming one of the models from GET /v1/models")
	}
	if err := decodeField(in.raw, "stream", &in.stream); err != nil {
		return nil, Errorf(http.StatusBadRequest, "stream must be true or false")
	}
	if front == OpenAI {
		var so openaiStreamOptions
		if err := decodeField(in.raw, "stream_options", &so); err != nil {
			return nil, Errorf(http.StatusBadRequest, "stream_options must be an object such as {\"include_usage\": true}")
		}
		in.includeUsage = so.IncludeUsage
	}
	return in, nil
}

func jsonErr(err error) error {
	if err == nil {
		return fmt.Errorf("got null")
	}
	return err
}

// decodeField decodes raw[key] into v; absent and null leave v alone.
func decodeField(raw map[string]json.RawMessage, key string, v any) error {
	b, ok := raw[key]
	if !ok || string(b) == "null" {
		return nil
	}
	return json.Unmarshal(b, v)
}

func (in *Request) anthropic() (*anthropicRequest, *Error) {
	if in.anth == nil {
		var a anthropicRequest
		if err := json.Unmarshal(in.body, &a); err != nil {
			return nil, Errorf(http.StatusBadRequest, "the request does not follow the Messages API: "+err.Error())
		}
		in.anth = &a
	}
	return in.anth, nil
}

func (in *Request) openai() (*openaiRequest, *Error) {
	if in.oai == nil {
		var o openaiRequest
		if err := json.Unmarshal(in.body, &o); err != nil {
			return nil, Errorf(http.StatusBadRequest, "the request does not follow the chat completions API: "+err.Error())
		}
		in.oai = &o
	}
	return in.oai, nil
}

// Front is the dialect the request came in (meaningless for a
// Conversation).
func (in *Request) Front() Dialect { return in.front }

// Model is the model the caller named; empty when none.
func (in *Request) Model() string { return in.model }

// Stream reports whether the caller asked for a stream.
func (in *Request) Stream() bool { return in.stream }

// Size is the body's length in bytes: every message, the system prompt and
// the tool definitions are in it. For a Conversation it is the text of its
// messages and a bound on their framing.
func (in *Request) Size() int {
	if in.conv != nil {
		n := 0
		for _, m := range in.conv.Messages {
			n += len(m.Text) + messageFramingBytes
		}
		return n
	}
	return len(in.body)
}

// OutputCap is the caller's output cap: max_tokens, or OpenAI's
// max_completion_tokens; 0 when neither is set.
func (in *Request) OutputCap() int64 {
	if in.conv != nil {
		return in.conv.MaxTokens
	}
	var n int64
	for _, k := range []string{"max_completion_tokens", "max_tokens"} {
		var v int64
		if decodeField(in.raw, k, &v) == nil && v > n {
			n = v
		}
	}
	return n
}

// Choices is OpenAI's n (each choice is a full completion), else 1.
func (in *Request) Choices() int64 {
	var n int64
	if in.front == OpenAI && decodeField(in.raw, "n", &n) == nil && n > 1 {
		return n
	}
	return 1
}

// Text measures what the request says: the bytes of text in its system
// prompt and messages, and the text of its last user message. A body that
// does not follow its dialect measures as nothing (the attempt reports it).
func (in *Request) Text() (textBytes int, lastUser string) {
	if in.conv != nil {
		for _, m := range in.conv.Messages {
			textBytes += len(m.Text)
			if m.Role == "user" {
				lastUser = m.Text
			}
		}
		return textBytes, lastUser
	}
	switch in.front {
	case Anthropic:
		a, aerr := in.anthropic()
		if aerr != nil {
			return 0, ""
		}
		textBytes += anthropicTextLen(a.System)
		for _, m := range a.Messages {
			textBytes += anthropicTextLen(m.Content)
			if m.Role == "user" {
				lastUser = anthropicText(m.Content)
			}
		}
	default:
		o, aerr := in.openai()
		if aerr != nil {
			return 0, ""
		}
		for _, m := range o.Messages {
			t := openaiText(m.Content)
			textBytes += len(t)
			if m.Role == "user" {
				lastUser = t
			}
		}
	}
	return textBytes, lastUser
}

func anthropicTextLen(c anthropicContent) int {
	n := 0
	for _, b := range c {
		n += len(b.Text)
		if b.Content != nil {
			n += anthropicTextLen(*b.Content)
		}
	}
	return n
}

func openaiText(c openaiContent) string {
	if c.Parts == nil {
		return c.Text
	}
	var sb strings.Builder
	for _, p := range c.Parts {
		if p.Type == "text" {
			if sb.Len() > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(p.Text)
		}
	}
	return sb.String()
}
