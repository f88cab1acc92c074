package translate

import (
	"bytes"
	"encoding/base64"
	"net/http"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// chatOpenAI serves a Conversation from an OpenAI-compatible provider.
type chatOpenAI struct{}

func (chatOpenAI) Request(in *Request, t Target, out *bytes.Buffer) *Error {
	maxTokens := in.conv.MaxTokens
	if maxTokens <= 0 {
		maxTokens = t.MaxTokens
	}
	o := openaiRequest{
		Model: t.ModelID, User: t.User, Stream: true,
		// max_tokens rather than max_completion_tokens: every
		// OpenAI-compatible server understands it.
		MaxTokens: &maxTokens,
		// Usage comes only in the last chunk, and only when asked for.
		StreamOptions: &openaiStreamOptions{IncludeUsage: true},
	}
	for _, m := range in.conv.Messages {
		c := openaiContent{Text: m.Text}
		if len(m.Pictures) > 0 {
			// Pictures as image_url parts holding data URLs, before the text.
			c.Parts = make([]openaiPart, 0, len(m.Pictures)+1)
			for _, p := range m.Pictures {
				c.Parts = append(c.Parts, openaiPart{Type: "image_url", ImageURL: &openaiImageURL{
					URL: "data:" + p.MediaType + ";base64," + base64.StdEncoding.EncodeToString(p.Data)}})
			}
			c.Parts = append(c.Parts, openaiPart{Type: "text", Text: m.Text})
		}
		o.Messages = append(o.Messages, openaiMessage{Role: m.Role, Content: c})
	}
	if err := encodeJSON(out, &o); err != nil {
		return Errorf(http.StatusBadRequest, "encoding the request: "+err.Error())
	}
	return nil
}

func (chatOpenAI) Response([]byte, *bytes.Buffer) (metering.Usage, error) {
	return metering.Usage{}, errConversationStreams
}

func (chatOpenAI) Stream(*Request) Stream { return &chatFromOpenAI{} }

// chatFromOpenAI reads chat.completion.chunk events: content (and refusal)
// deltas of the first choice, usage from the last chunk, and [DONE] as the
// end. Some servers omit [DONE]: a stream that ended after its
// finish_reason is complete.
type chatFromOpenAI struct {
	started bool
	stopped bool // a finish_reason arrived
	streamState
}

func (s *chatFromOpenAI) Event(ev *Event, out *Writer) error {
	if isDone(ev.Data) {
		s.finished = s.started
		return nil
	}
	c, err := decodeChunk(ev)
	if err != nil {
		return err
	}
	s.started = true
	out.Begin()
	for _, ch := range c.Choices {
		if ch.Index != 0 {
			continue
		}
		for _, t := range []*string{ch.Delta.Content, ch.Delta.Refusal} {
			if t != nil && *t != "" {
				out.Text(*t)
			}
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			s.stopped = true
		}
	}
	if c.Usage != nil {
		s.u = c.Usage.usage()
	}
	return nil
}

func (s *chatFromOpenAI) EOF(*Writer) error {
	if !s.finished && !s.stopped {
		return errTruncated
	}
	return nil
}
