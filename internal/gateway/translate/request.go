package translate

import "strings"

// Request is the caller's request, read once and shared by every
// attempt of the failover plan. A body is decoded strictly into its
// dialect's typed form when it is parsed (see strict.go): what the quota
// admits and what every attempt sends come from that one decode.
type Request struct {
	front Dialect
	size  int

	// The typed form of the front's dialect; one is set.
	anth *anthropicRequest
	oai  *openaiRequest

	// conv is set for a conversation built inside the gateway, for
	// convModel; it has no body and no front dialect.
	conv      *Conversation
	convModel string
}

// Conversation is a request the gateway builds itself (the stateful chat):
// turns of text and pictures, alternating from the user's, and a cap on
// the reply.
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
	// Pictures are shown to the model before the text.
	Pictures []Picture
}

// Picture is an image a Conversation's message shows the model: PNG,
// JPEG, GIF or WebP, which both dialects take as base64.
type Picture struct {
	MediaType string
	Data      []byte
}

// messageFramingBytes bounds what a message adds beyond its text (role,
// separators), in bytes, which are never fewer than tokens.
const messageFramingBytes = 16

// NewConversation is a streamed request for model (an alias, a provider
// model id or "auto").
func NewConversation(model string, c Conversation) *Request {
	return &Request{convModel: model, conv: &c}
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

// Parse decodes a request body in the front's dialect, strictly: a
// duplicate member, a case variant of a known one, a member the gateway
// does not forward or a value it cannot price is the caller's error (400),
// naming the member.
func Parse(front Dialect, body []byte) (*Request, *Error) {
	in := &Request{front: front, size: len(body)}
	var err *Error
	if front == Anthropic {
		in.anth, err = decodeAnthropic(body)
	} else {
		in.oai, err = decodeOpenAI(body)
	}
	if err != nil {
		return nil, err
	}
	return in, nil
}

// Front is the dialect the request came in (meaningless for a
// Conversation).
func (in *Request) Front() Dialect { return in.front }

// Model is the model the caller named; empty when none.
func (in *Request) Model() string {
	switch {
	case in.conv != nil:
		return in.convModel
	case in.anth != nil:
		return in.anth.Model
	}
	return in.oai.Model
}

// Stream reports whether the caller asked for a stream.
func (in *Request) Stream() bool {
	switch {
	case in.conv != nil:
		return true
	case in.anth != nil:
		return in.anth.Stream
	}
	return in.oai.Stream
}

// includeUsage reports whether an OpenAI caller asked for the usage chunk.
func (in *Request) includeUsage() bool {
	return in.oai != nil && in.oai.StreamOptions != nil && in.oai.StreamOptions.IncludeUsage
}

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
	return in.size
}

// OutputCap is the caller's output cap: max_tokens, or OpenAI's
// max_completion_tokens (Parse refuses the two when they differ); 0 when
// none is set (absent or null), and then the model's limit applies.
func (in *Request) OutputCap() int64 {
	switch {
	case in.conv != nil:
		return in.conv.MaxTokens
	case in.anth != nil:
		return in.anth.MaxTokens
	}
	if p := in.oai.MaxCompletionTokens; p != nil {
		return *p
	}
	if p := in.oai.MaxTokens; p != nil {
		return *p
	}
	return 0
}

// Choices is OpenAI's n (each choice is a full completion), else 1.
func (in *Request) Choices() int64 {
	if in.oai != nil && in.oai.N != nil && *in.oai.N > 1 {
		return *in.oai.N
	}
	return 1
}

// Images counts the images the request sends, wherever they are: their
// cost in tokens does not follow from their bytes (see quota.Bound).
func (in *Request) Images() int64 {
	var n int64
	switch {
	case in.conv != nil:
		for _, m := range in.conv.Messages {
			n += int64(len(m.Pictures))
		}
	case in.anth != nil:
		n += anthropicImages(in.anth.System)
		for _, m := range in.anth.Messages {
			n += anthropicImages(m.Content)
		}
	case in.oai != nil:
		for _, m := range in.oai.Messages {
			for _, p := range m.Content.Parts {
				if p.Type == "image_url" {
					n++
				}
			}
		}
	}
	return n
}

func anthropicImages(c anthropicContent) int64 {
	var n int64
	for _, b := range c {
		if b.Type == "image" {
			n++
		}
		if b.Content != nil {
			n += anthropicImages(*b.Content)
		}
	}
	return n
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
	switch {
	case in.anth != nil:
		a := in.anth
		textBytes += anthropicTextLen(a.System)
		for _, m := range a.Messages {
			textBytes += anthropicTextLen(m.Content)
			if m.Role == "user" {
				lastUser = anthropicText(m.Content)
			}
		}
	default:
		for _, m := range in.oai.Messages {
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
