package translate

import (
	"bytes"
	"errors"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// openaiOpenAI serves the OpenAI front from an OpenAI-compatible provider.
// Streams always ask the provider for usage (stream_options.include_usage),
// since that is the only place a stream reports it; the extra chunk is
// dropped when the caller did not ask for it.
type openaiOpenAI struct{}

func (openaiOpenAI) Request(in *Request, t Target, out *bytes.Buffer) *Error {
	o := *in.oai // a shallow copy: the fields set here are the attempt's
	o.Model, o.User = t.ModelID, t.User
	if t.CapOutput && o.MaxTokens == nil && o.MaxCompletionTokens == nil && t.MaxTokens > 0 {
		o.MaxTokens = &t.MaxTokens
	}
	if o.Stream {
		so := openaiStreamOptions{IncludeUsage: true}
		if o.StreamOptions != nil {
			so.IncludeObfuscation = o.StreamOptions.IncludeObfuscation
		}
		o.StreamOptions = &so
	}
	return encodeRequest(out, &o)
}

func (openaiOpenAI) Response(body []byte, out *bytes.Buffer) (metering.Usage, error) {
	// The reply passes through; only usage is decoded, and choices checked
	// to be there (an array of objects), as unmarshalling into
	// {Choices []struct{}; Usage *openaiUsage} would.
	s, err := scanObject(body)
	if err != nil {
		return metering.Usage{}, err
	}
	var (
		choices bool
		usage   *openaiUsage
	)
	for {
		name, ok := s.next()
		if !ok {
			break
		}
		switch {
		case isName(name, "choices"):
			if choices, _, err = s.objectArray(); err != nil {
				return metering.Usage{}, err
			}
		case isName(name, "usage"):
			if err := readOpenAIUsage(s.value(), &usage); err != nil {
				return metering.Usage{}, err
			}
		default:
			s.skip()
		}
	}
	if !choices {
		return metering.Usage{}, errors.New("the response has no choices")
	}
	out.Write(body)
	if usage == nil {
		return metering.Usage{}, nil
	}
	return usage.usage(), nil
}

func (openaiOpenAI) Stream(in *Request) Stream {
	return &openaiPassStream{includeUsage: in.includeUsage()}
}

type openaiPassStream struct {
	includeUsage bool
	streamState
}

func (s *openaiPassStream) Event(ev *Event, out *Writer) error {
	if isDone(ev.Data) {
		s.finished = true
		// The canonical form: the provider's may carry blank data lines.
		out.Raw("", doneData)
		return nil
	}
	ok, members := validEvent(ev.Data)
	if !ok {
		return malformedEvent(errors.New("invalid JSON"))
	}
	// Most chunks carry neither an error nor usage (OpenAI's say
	// "usage":null until the last): those pass without decoding.
	if members != 0 {
		c, err := readChunk(ev.Data)
		if err != nil {
			return malformedEvent(err)
		}
		if c.err != nil {
			return openaiStreamFault(c.err)
		}
		if c.usage != nil {
			s.u = c.usage.usage()
			if c.choices == 0 && !s.includeUsage {
				return nil
			}
		}
	}
	out.Forward(nil, ev.Data)
	return nil
}

// passChunk is what a pass-through stream reads of a chunk.
type passChunk struct {
	choices int
	usage   *openaiUsage
	err     jsontext.Value // not null
}

// readChunk reads the valid chunk b as unmarshalling it into
// {Choices []struct{}; Usage *openaiUsage; Error json.RawMessage} would,
// if b has a usage or an error member that is not null; otherwise (the
// member test of validEvent is only a hint) b is as any other chunk, and
// what choices holds does not matter.
func readChunk(b []byte) (passChunk, error) {
	var (
		c          passChunk
		found      bool
		choicesErr error
	)
	s, err := scanValid(b)
	if err != nil {
		return c, err
	}
	for {
		name, ok := s.next()
		if !ok {
			break
		}
		switch {
		case isName(name, "choices"):
			if _, c.choices, err = s.objectArray(); err != nil && choicesErr == nil {
				choicesErr = err
			}
		case isName(name, "usage"):
			v := s.value()
			found = found || v.Kind() != 'n'
			if err := readOpenAIUsage(v, &c.usage); err != nil {
				return c, err
			}
		case isName(name, "error"):
			c.err = s.value()
			if c.err.Kind() == 'n' {
				c.err = nil
			} else {
				found = true
			}
		default:
			s.skip()
		}
	}
	if !found {
		return passChunk{}, nil
	}
	return c, choicesErr
}

func openaiStreamFault(raw []byte) *Fault {
	msg, _ := UpstreamErrorMessage(append(append([]byte(`{"error":`), raw...), '}'), 0)
	return &Fault{Kind: FaultReported, Msg: msg}
}
