package translate

import (
	"bytes"
	"encoding/json"
	"errors"

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
			if choices, err = s.objectArray(); err != nil {
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

var (
	errorKey  = []byte(`"error"`)
	promptKey = []byte(`"prompt_tokens"`)
)

func (s *openaiPassStream) Event(ev *Event, out *Writer) error {
	if isDone(ev.Data) {
		s.finished = true
		// The canonical form: the provider's may carry blank data lines.
		out.Raw("", doneData)
		return nil
	}
	if !validLenient(ev.Data) {
		return malformedEvent(errors.New("invalid JSON"))
	}
	// Most chunks carry neither an error nor usage; skip decoding those. The
	// keys could also appear inside generated text, so a hit is confirmed
	// by decoding.
	if bytes.Contains(ev.Data, errorKey) || bytes.Contains(ev.Data, promptKey) {
		var c struct {
			Choices []struct{}      `json:"choices"`
			Usage   *openaiUsage    `json:"usage"`
			Error   json.RawMessage `json:"error"`
		}
		if err := unmarshalLenient(ev.Data, &c); err != nil {
			return malformedEvent(err)
		}
		if len(c.Error) > 0 && string(c.Error) != "null" {
			return openaiStreamFault(c.Error)
		}
		if c.Usage != nil {
			s.u = c.Usage.usage()
			if len(c.Choices) == 0 && !s.includeUsage {
				return nil
			}
		}
	}
	out.Forward(nil, ev.Data)
	return nil
}

func openaiStreamFault(raw json.RawMessage) *Fault {
	msg, _ := UpstreamErrorMessage(append(append([]byte(`{"error":`), raw...), '}'), 0)
	return &Fault{Kind: FaultReported, Msg: msg}
}
