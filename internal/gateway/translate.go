package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// clientRequest is the caller's request, read once and shared by every
// attempt of the failover plan.
type clientRequest struct {
	front dialect
	body  []byte
	// raw is the top-level object; same-dialect attempts edit a copy of it.
	raw          map[string]json.RawMessage
	model        string // as asked; empty when the caller named none
	stream       bool
	includeUsage bool // OpenAI front: the caller asked for the usage chunk

	// The typed forms, decoded on the first attempt that translates.
	anth *anthropicRequest
	oai  *openaiRequest
}

func parseClientRequest(front dialect, body []byte) (*clientRequest, *apiError) {
	in := &clientRequest{front: front, body: body}
	if err := json.Unmarshal(body, &in.raw); err != nil || in.raw == nil {
		return nil, errorf(http.StatusBadRequest, fmt.Sprintf("the request body must be a JSON object: %v", jsonErr(err)))
	}
	if err := decodeField(in.raw, "model", &in.model); err != nil {
		return nil, errorf(http.StatusBadRequest, "model must be a string naming one of the models from GET /v1/models")
	}
	if err := decodeField(in.raw, "stream", &in.stream); err != nil {
		return nil, errorf(http.StatusBadRequest, "stream must be true or false")
	}
	if front == dialectOpenAI {
		var so openaiStreamOptions
		if err := decodeField(in.raw, "stream_options", &so); err != nil {
			return nil, errorf(http.StatusBadRequest, "stream_options must be an object such as {\"include_usage\": true}")
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

func (in *clientRequest) anthropic() (*anthropicRequest, *apiError) {
	if in.anth == nil {
		var a anthropicRequest
		if err := json.Unmarshal(in.body, &a); err != nil {
			return nil, errorf(http.StatusBadRequest, "the request does not follow the Messages API: "+err.Error())
		}
		in.anth = &a
	}
	return in.anth, nil
}

func (in *clientRequest) openai() (*openaiRequest, *apiError) {
	if in.oai == nil {
		var o openaiRequest
		if err := json.Unmarshal(in.body, &o); err != nil {
			return nil, errorf(http.StatusBadRequest, "the request does not follow the chat completions API: "+err.Error())
		}
		in.oai = &o
	}
	return in.oai, nil
}

// target is what one attempt changes in the request.
type target struct {
	modelID   string // the provider's model id
	maxTokens int64  // used when the caller set no limit and the dialect needs one
	user      string // the caller's identity as the provider sees it
	// capOutput sends maxTokens even where the dialect makes it optional:
	// a quota reservation assumes the output is capped.
	capOutput bool
}

// translator adapts one front dialect to one provider dialect.
type translator interface {
	// request writes the provider's request body into out. An error is the
	// caller's fault (something this provider's dialect cannot express).
	request(in *clientRequest, t target, out *bytes.Buffer) *apiError
	// response converts a complete provider response into the front's.
	response(body []byte, out *bytes.Buffer) (metering.Usage, error)
	// stream starts converting one event stream.
	stream(in *clientRequest) streamTranslator
}

// streamTranslator converts one provider event stream, event by event.
type streamTranslator interface {
	// event converts one provider event into zero or more client events. A
	// *streamFault error means the provider failed (an error event or data
	// that does not parse).
	event(ev *sseEvent, out *sseWriter) error
	// eof handles the end of the provider's stream; it fails when the
	// stream ended before its terminal event.
	eof(out *sseWriter) error
	usage() metering.Usage
}

// streamFault is a provider failure found inside an event stream.
type streamFault struct {
	class failureClass
	msg   string
}

func (f *streamFault) Error() string { return f.msg }

func malformedEvent(err error) *streamFault {
	return &streamFault{class: classServerError, msg: "the provider sent an event that is not valid JSON: " + err.Error()}
}

var errTruncated = &streamFault{class: classConnectionError, msg: "the provider's stream ended before its last event"}

func translatorFor(front, upstream dialect) translator {
	switch {
	case front == dialectAnthropic && upstream == dialectAnthropic:
		return anthropicAnthropic{}
	case front == dialectAnthropic:
		return anthropicOpenAI{}
	case upstream == dialectAnthropic:
		return openaiAnthropic{}
	}
	return openaiOpenAI{}
}

// rawField replaces (or, with a nil val, removes) one top-level field.
type rawField struct {
	key string
	val []byte
}

// writeObject writes raw with the given fields replaced, keys sorted so the
// upstream body is deterministic. Values are copied as they arrived: they
// were validated by the decode that produced raw.
func writeObject(out *bytes.Buffer, raw map[string]json.RawMessage, set ...rawField) {
	keys := make([]string, 0, len(raw)+len(set))
	for k := range raw {
		keys = append(keys, k)
	}
	for _, f := range set {
		if _, ok := raw[f.key]; !ok {
			keys = append(keys, f.key)
		}
	}
	slices.Sort(keys)
	out.WriteByte('{')
	n := 0
	for _, k := range keys {
		v := []byte(raw[k])
		for _, f := range set {
			if f.key == k {
				v = f.val
			}
		}
		if v == nil {
			continue
		}
		if n > 0 {
			out.WriteByte(',')
		}
		n++
		writeJSONString(out, k)
		out.WriteByte(':')
		out.Write(v)
	}
	out.WriteByte('}')
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

func jsonString(s string) []byte {
	var b bytes.Buffer
	writeJSONString(&b, s)
	return b.Bytes()
}

func encodeJSON(out *bytes.Buffer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func ptr[T any](v T) *T { return &v }

func itoa(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

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

// eventType is the event's name, or the "type" in its data when a
// provider omits names.
func eventType(ev *sseEvent) []byte {
	if len(ev.Name) > 0 {
		return ev.Name
	}
	var t struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(ev.Data, &t)
	return []byte(t.Type)
}

func isDone(data []byte) bool { return bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) }
