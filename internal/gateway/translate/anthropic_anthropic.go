package translate

import (
	"bytes"
	"errors"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// anthropicAnthropic serves the Anthropic front from an Anthropic provider:
// the caller's request is encoded from its strict decode with the
// provider's model id, the caller's identity and the admitted cap;
// responses and events pass through, read only for usage.
type anthropicAnthropic struct{}

func (anthropicAnthropic) Request(in *Request, t Target, out *bytes.Buffer) *Error {
	a := *in.anth // a shallow copy: the fields set here are the attempt's
	a.Model, a.Metadata = t.ModelID, &anthropicMetadata{UserID: t.User}
	if a.MaxTokens <= 0 {
		a.MaxTokens = t.MaxTokens // required by the Messages API
	}
	return encodeRequest(out, &a)
}

func (anthropicAnthropic) Response(body []byte, out *bytes.Buffer) (metering.Usage, error) {
	// The reply passes through; only its type and usage are decoded, as
	// unmarshalling into {Type string; Usage anthropicUsage} would.
	s, err := scanObject(body)
	if err != nil {
		return metering.Usage{}, err
	}
	var (
		typ   string
		usage anthropicUsage
	)
	for {
		name, ok := s.next()
		if !ok {
			break
		}
		switch {
		case isName(name, "type"):
			if v := s.value(); string(v) == `"message"` {
				typ = "message" // the usual spelling, without decoding
			} else if err := unmarshalLenient(v, &typ); err != nil {
				return metering.Usage{}, err
			}
		case isName(name, "usage"):
			if err := readAnthropicUsage(s.value(), &usage); err != nil {
				return metering.Usage{}, err
			}
		default:
			s.skip()
		}
	}
	if typ != "message" {
		return metering.Usage{}, errors.New(`the response is not a "message"`)
	}
	out.Write(body)
	return usage.usage(), nil
}

func (anthropicAnthropic) Stream(*Request) Stream { return &anthropicPassStream{} }

type anthropicPassStream struct {
	streamState
}

func (s *anthropicPassStream) Event(ev *Event, out *Writer) error {
	if !validLenient(ev.Data) {
		return malformedEvent(errors.New("invalid JSON"))
	}
	// Only three event types matter for metering and errors; the rest are
	// forwarded without decoding.
	typ := eventType(ev)
	switch string(typ) {
	case "message_start", "message_delta":
		var e anthropicEvent
		if err := unmarshalLenient(ev.Data, &e); err != nil {
			return malformedEvent(err)
		}
		if e.Message != nil {
			s.u = e.Message.Usage.usage()
		} else if e.Usage != nil {
			e.Usage.applyTo(&s.u)
		}
	case "error":
		var e anthropicEvent
		_ = unmarshalLenient(ev.Data, &e)
		return anthropicStreamFault(e.Error)
	case "message_stop":
		s.finished = true
	}
	out.Forward(typ, ev.Data) // named even if the provider left names out
	return nil
}

func anthropicStreamFault(e *anthropicError) *Fault {
	if e == nil {
		return &Fault{Kind: FaultReported, Msg: "the provider sent an error event"}
	}
	return &Fault{Kind: FaultReported, Type: e.Type, Msg: e.Message}
}
