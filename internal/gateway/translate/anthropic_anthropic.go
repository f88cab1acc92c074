package translate

import (
	"bytes"
	"errors"

	"github.com/go-json-experiment/json/jsontext"

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
	if ok, _ := validEvent(ev.Data); !ok {
		return malformedEvent(errors.New("invalid JSON"))
	}
	// Only three event types matter for metering and errors; the rest are
	// forwarded without decoding.
	typ := eventType(ev)
	switch string(typ) {
	case "message_start", "message_delta":
		var u usageEvent
		if err := u.read(ev.Data); err != nil {
			return malformedEvent(err)
		}
		if u.message {
			s.u = u.start.usage()
		} else if u.delta {
			u.apply(&s.u)
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

// usageEvent is what a pass-through stream reads of a message_start or a
// message_delta: the usage of the message (message_start's) or the counts
// that changed (message_delta's).
type usageEvent struct {
	message bool // a message, with its usage in start
	start   anthropicUsage
	delta   bool // a usage, with the counts given (not null) in counts
	given   [4]bool
	counts  [4]int64 // in anthropicUsageCounts' order
}

// read reads the valid event b as unmarshalling it into {Message
// *struct{Usage anthropicUsage}; Usage *anthropicDeltaUsage} would: a
// repeated member merges into the first unless null came between.
func (u *usageEvent) read(b []byte) error {
	if jsontext.Value(b).Kind() == 'n' {
		return nil // null leaves a struct as it was
	}
	s, err := scanValid(b)
	if err != nil {
		return err
	}
	for {
		name, ok := s.next()
		if !ok {
			return nil
		}
		switch {
		case isName(name, "message"):
			if err := u.readMessage(s.value()); err != nil {
				return err
			}
		case isName(name, "usage"):
			if err := u.readDelta(s.value()); err != nil {
				return err
			}
		default:
			s.skip()
		}
	}
}

func (u *usageEvent) readMessage(v jsontext.Value) error {
	switch v.Kind() {
	case 'n':
		u.message, u.start = false, anthropicUsage{}
		return nil
	case '{':
	default:
		return errNotObject
	}
	u.message = true
	s, _ := scanValid(v)
	for {
		name, ok := s.next()
		if !ok {
			return nil
		}
		if !isName(name, "usage") {
			s.skip()
		} else if err := readAnthropicUsage(s.value(), &u.start); err != nil {
			return err
		}
	}
}

// readDelta reads counts that are pointers: null takes one back.
func (u *usageEvent) readDelta(v jsontext.Value) error {
	switch v.Kind() {
	case 'n':
		u.delta, u.given, u.counts = false, [4]bool{}, [4]int64{}
		return nil
	case '{':
	default:
		return errNotObject
	}
	u.delta = true
	s, _ := scanValid(v)
members:
	for {
		name, ok := s.next()
		if !ok {
			return nil
		}
		for k, c := range anthropicUsageCounts {
			if !isName(name, c.name) {
				continue
			}
			if v := s.value(); v.Kind() == 'n' {
				u.given[k], u.counts[k] = false, 0
			} else if err := readCount(v, &u.counts[k]); err != nil {
				return err
			} else {
				u.given[k] = true
			}
			continue members
		}
		s.skip()
	}
}

// apply sets the counts given over m's.
func (u *usageEvent) apply(m *metering.Usage) {
	// In anthropicUsageCounts' order: input, cache writes, cache reads, output.
	for k, f := range [...]*int64{&m.Input, &m.CacheWrite, &m.CacheRead, &m.Output} {
		if u.given[k] {
			*f = u.counts[k]
		}
	}
}

func anthropicStreamFault(e *anthropicError) *Fault {
	if e == nil {
		return &Fault{Kind: FaultReported, Msg: "the provider sent an error event"}
	}
	return &Fault{Kind: FaultReported, Type: e.Type, Msg: e.Message}
}
