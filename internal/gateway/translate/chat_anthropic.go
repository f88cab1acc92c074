package translate

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// chatAnthropic serves a Conversation from an Anthropic provider: the
// request is built from its turns, and the stream is read for its text
// and usage rather than relayed.
type chatAnthropic struct{}

// anthropicTextRequest is a Messages API request of a Conversation's turns.
type anthropicTextRequest struct {
	Model     string             `json:"model"`
	MaxTokens int64              `json:"max_tokens"`
	Messages  []textMessage      `json:"messages"`
	Metadata  *anthropicMetadata `json:"metadata,omitempty"`
	Stream    bool               `json:"stream"`
}

// textMessage is a turn whose content is a string, which both dialects
// accept, or, with pictures, the dialect's content list.
type textMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

// anthropicMessages are the turns as Messages API content: the text, or
// with pictures an image block for each (base64; images before the text
// that speaks of them, as the API advises) and a text block.
func anthropicMessages(c *Conversation) []textMessage {
	out := make([]textMessage, len(c.Messages))
	for i, m := range c.Messages {
		if len(m.Pictures) == 0 {
			out[i] = textMessage{Role: m.Role, Content: m.Text}
			continue
		}
		blocks := make(anthropicContent, 0, len(m.Pictures)+1)
		for _, p := range m.Pictures {
			blocks = append(blocks, anthropicBlock{Type: "image", Source: &anthropicSource{
				Type: "base64", MediaType: p.MediaType, Data: base64.StdEncoding.EncodeToString(p.Data)}})
		}
		out[i] = textMessage{Role: m.Role, Content: append(blocks, anthropicBlock{Type: "text", Text: m.Text})}
	}
	return out
}

func (chatAnthropic) Request(in *Request, t Target, out *bytes.Buffer) *Error {
	maxTokens := in.conv.MaxTokens
	if maxTokens <= 0 {
		maxTokens = t.MaxTokens
	}
	a := anthropicTextRequest{Model: t.ModelID, MaxTokens: maxTokens, Messages: anthropicMessages(in.conv), Metadata: &anthropicMetadata{UserID: t.User}, Stream: true}
	if err := encodeJSON(out, &a); err != nil {
		return Errorf(http.StatusBadRequest, "encoding the request: "+err.Error())
	}
	return nil
}

var errConversationStreams = errors.New("a conversation is always streamed")

func (chatAnthropic) Response([]byte, *bytes.Buffer) (metering.Usage, error) {
	return metering.Usage{}, errConversationStreams
}

func (chatAnthropic) Stream(*Request) Stream { return &chatFromAnthropic{} }

// chatFromAnthropic reads a Messages stream: text deltas, usage from
// message_start and message_delta, message_stop as the end.
type chatFromAnthropic struct {
	streamState
}

func (s *chatFromAnthropic) Event(ev *Event, out *Writer) error {
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
		if e.Message != nil {
			s.u = e.Message.Usage.usage()
		}
		out.Begin()
	case "content_block_delta":
		if d := e.Delta; d != nil && d.Type == "text_delta" && d.Text != "" {
			out.Text(d.Text)
		}
	case "message_delta":
		if e.Usage != nil {
			e.Usage.applyTo(&s.u)
		}
	case "message_stop":
		s.finished = true
	case "error":
		return anthropicStreamFault(e.Error)
	}
	return nil
}
