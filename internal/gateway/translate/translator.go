package translate

import (
	"bytes"
	"encoding/json"
	"net/http"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// Target is what one attempt changes in the request.
type Target struct {
	ModelID   string // the provider's model id
	MaxTokens int64  // used when the caller set no limit and the dialect needs one
	User      string // the caller's identity as the provider sees it
	// CapOutput sends MaxTokens even where the dialect makes it optional:
	// a quota reservation assumes the output is capped.
	CapOutput bool
}

// Translator adapts one front dialect to one provider dialect.
type Translator interface {
	// Request writes the provider's request body into out. An error is the
	// caller's fault (something this provider's dialect cannot express).
	Request(in *Request, t Target, out *bytes.Buffer) *Error
	// Response converts a complete provider response into the front's.
	Response(body []byte, out *bytes.Buffer) (metering.Usage, error)
	// Stream starts converting one event stream.
	Stream(in *Request) Stream
}

// Stream converts one provider event stream, event by event.
type Stream interface {
	// Event converts one provider event into zero or more client events. A
	// *Fault error means the provider failed (an error event or data
	// that does not parse).
	Event(ev *Event, out *Writer) error
	// EOF handles the end of the provider's stream; it fails when the
	// stream ended before its terminal event.
	EOF(out *Writer) error
	// Usage is what the provider has reported so far.
	Usage() metering.Usage
	// Finished reports whether the provider's terminal event came. An
	// HTTP front's terminal event ([DONE], message_stop) is written in the
	// call that finishes the stream, Event's or EOF's, and not before.
	Finished() bool
}

// Fault is a provider failure found inside an event stream. What it says
// about the provider (which failure class, whether to fail over) is for
// the caller to decide: the translators only read the wire.
type Fault struct {
	Kind FaultKind
	// Type is the provider's own error type where its dialect names one
	// (Anthropic's overloaded_error, rate_limit_error …).
	Type string
	// Msg is safe to show the caller: never the raw event.
	Msg string
}

// FaultKind says how a stream went wrong.
type FaultKind uint8

// Kinds of Fault.
const (
	// FaultReported: the provider sent an error event.
	FaultReported FaultKind = iota
	// FaultMalformed: an event that does not parse.
	FaultMalformed
	// FaultTruncated: the stream ended before its terminal event.
	FaultTruncated
)

func (f *Fault) Error() string { return f.Msg }

func malformedEvent(err error) *Fault {
	return &Fault{Kind: FaultMalformed, Msg: "the provider sent an event that is not valid JSON: " + err.Error()}
}

// streamState is what every stream translator keeps: the provider's usage
// so far, and whether its terminal event came.
type streamState struct {
	u        metering.Usage
	finished bool
}

// EOF fails a stream that ended before its terminal event.
func (s *streamState) EOF(*Writer) error {
	if !s.finished {
		return errTruncated
	}
	return nil
}

// Usage is what the provider has reported so far.
func (s *streamState) Usage() metering.Usage { return s.u }

// Finished reports whether the provider's terminal event came.
func (s *streamState) Finished() bool { return s.finished }

// decodeChunk reads an OpenAI-compatible chunk; an error object in it is
// the provider's failure.
func decodeChunk(ev *Event) (openaiChunk, error) {
	var c openaiChunk
	if err := unmarshalLenient(ev.Data, &c); err != nil {
		return c, malformedEvent(err)
	}
	if len(c.Error) > 0 && string(c.Error) != "null" {
		return c, openaiStreamFault(c.Error)
	}
	return c, nil
}

var errTruncated = &Fault{Kind: FaultTruncated, Msg: "the provider's stream ended before its last event"}

// For is the translator from the front's dialect to the provider's.
func For(front, upstream Dialect) Translator {
	switch {
	case front == Anthropic && upstream == Anthropic:
		return anthropicAnthropic{}
	case front == Anthropic:
		return anthropicOpenAI{}
	case upstream == Anthropic:
		return openaiAnthropic{}
	}
	return openaiOpenAI{}
}

// encodeRequest writes a request the gateway built from a strict decode.
func encodeRequest(out *bytes.Buffer, v any) *Error {
	if err := jsonv2.MarshalWrite(out, v); err != nil {
		return Errorf(http.StatusBadRequest, "encoding the request: "+err.Error())
	}
	return nil
}

// writeJSONString writes s as a JSON string; the common case (plain ASCII)
// needs no allocation.
func writeJSONString(out *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b, _ := json.Marshal(s)
			out.Write(b)
			return
		}
	}
	out.WriteByte('"')
	out.WriteString(s)
	out.WriteByte('"')
}

func encodeJSON(out *bytes.Buffer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func ptr[T any](v T) *T { return &v }

// Stop reasons. Anthropic's are richer; each maps to the nearest OpenAI
// finish_reason and back.
func anthropicStopToOpenAI(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop" // end_turn, stop_sequence, pause_turn
}

func openaiFinishToAnthropic(finish string) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	return "end_turn"
}

// eventType is the event's name, or the "type" in its valid data when a
// provider omits names: the last member of that name that is a string, as
// unmarshalling into {Type string} reads it (ignoring its errors).
func eventType(ev *Event) []byte {
	if len(ev.Name) > 0 {
		return ev.Name
	}
	s, err := scanValid(ev.Data)
	if err != nil {
		return nil
	}
	var typ []byte
	for {
		name, ok := s.next()
		if !ok {
			return typ
		}
		if !isName(name, "type") {
			s.skip()
			continue
		}
		if v := s.value(); v.Kind() == '"' {
			if raw := v[1 : len(v)-1]; bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
				typ = raw
			} else {
				typ, _ = jsontext.AppendUnquote(nil, v) // invalid UTF-8 replaced
			}
		}
	}
}

var doneData = []byte("[DONE]")

func isDone(data []byte) bool { return bytes.Equal(bytes.TrimSpace(data), doneData) }
