package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// unmarshalledPassStream is the reading openaiPassStream's scan replaced:
// a chunk with a usage or an error (a top-level member of that name, in
// any case, that is not null) unmarshalled into the fields the stream
// needs. The scan must agree with it on every event: refuse what it
// refuses, fail as it fails, meter and forward what it does.
//
// (The reading before the scan chose the chunks to unmarshal by searching
// for `"error"` and `"prompt_tokens"` in the bytes: it missed a usage
// without prompt_tokens and names in another case or escaped, which the
// member test above does not, and unmarshalled chunks whose generated text
// held those words, to the same end unless choices was not an array.)
type unmarshalledPassStream struct {
	includeUsage bool
	streamState
}

func (s *unmarshalledPassStream) Event(ev *Event, out *Writer) error {
	if isDone(ev.Data) {
		s.finished = true
		out.Raw("", doneData)
		return nil
	}
	if !validLenient(ev.Data) {
		return malformedEvent(errors.New("invalid JSON"))
	}
	if hasUsageOrError(ev.Data) {
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

// hasUsageOrError: whether the valid b is an object with a member named
// usage or error (as unmarshalLenient matches names) that is not null.
func hasUsageOrError(b []byte) bool {
	m, _, err := topMembers(b)
	if err != nil {
		panic(err) // b is valid
	}
	return m != 0
}

// unmarshalledAnthropicPassStream is the reading anthropicPassStream's
// scan replaced: an event's type, when it has no name, unmarshalled into
// {Type string}, and a message_start or message_delta unmarshalled into
// the fields the stream reads. (Before the scan the whole anthropicEvent
// was unmarshalled, so a member of the wrong type that the stream does not
// read, say an index that is a string, failed the stream; now it passes
// through as any other event's does.)
type unmarshalledAnthropicPassStream struct {
	streamState
}

func (s *unmarshalledAnthropicPassStream) Event(ev *Event, out *Writer) error {
	if !validLenient(ev.Data) {
		return malformedEvent(errors.New("invalid JSON"))
	}
	typ := ev.Name
	if len(typ) == 0 {
		var t struct {
			Type string `json:"type"`
		}
		_ = unmarshalLenient(ev.Data, &t)
		typ = []byte(t.Type)
	}
	switch string(typ) {
	case "message_start", "message_delta":
		var e struct {
			Message *struct {
				Usage anthropicUsage `json:"usage"`
			} `json:"message"`
			Usage *anthropicDeltaUsage `json:"usage"`
		}
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
	out.Forward(typ, ev.Data)
	return nil
}

// Each event is read under each of these names ("": none, its type read
// from its data).
var anthropicEventNames = []string{"", "message_start", "message_delta", "error", "message_stop", "ping"}

var anthropicEventSeeds = []string{
	`{"type":"message_start","message":{"id":"m","usage":{"input_tokens":5,"output_tokens":1}}}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7,"cache_read_input_tokens":2}}`,
	`{"type":"message_delta","usage":{"output_tokens":7},"usage":{"output_tokens":null,"input_tokens":3}}`,
	`{"type":"message_delta","usage":{"output_tokens":7},"usage":null,"usage":{"input_tokens":3}}`,
	`{"type":"message_delta","usage":{"output_tokens":"7"}}`, `{"type":"message_delta","usage":{"output_tokens":7.0}}`,
	`{"type":"message_delta","usage":[]}`, `{"type":"message_delta","usage":5}`, `{"type":"message_delta","usage":null}`,
	`{"type":"message_delta","USAGE":{"OUTPUT_TOKENS":4,"Cache_Creation_Input_Tokens":1}}`,
	`{"type":"message_start","message":{"usage":{"input_tokens":1}},"message":{"usage":{"output_tokens":2}}}`,
	`{"type":"message_start","message":{"usage":{"input_tokens":1}},"message":null,"message":{"usage":{"output_tokens":2}}}`,
	`{"type":"message_start","message":{"usage":{"input_tokens":1}},"message":null}`,
	`{"type":"message_start","message":{"usage":{"input_tokens":1},"usage":null}}`,
	`{"type":"message_start","message":{"usage":{"input_tokens":1}},"usage":{"output_tokens":9}}`,
	`{"type":"message_start","message":5}`, `{"type":"message_start","message":[]}`, `{"type":"message_start","message":{"usage":"x"}}`,
	`{"type":"message_start","message":{"usage":{"input_tokens":-3}}}`, `{"type":"message_start","message":{"content":"x","index":"y"}}`,
	`{"type":"message_start","Message":{"Usage":{"Input_Tokens":4}}}`, `{"type":"message_start","m\u0065ssage":{"\u0075sage":{"input_tokens":4}}}`,
	`{"typ\u0065":"message_st\u0061rt","message":{"usage":{"input_tokens":4}}}`, `{"TYPE":"message_stop"}`, `{"Type":"error","error":{"type":"x","message":"y"}}`,
	`{"type":5,"type":"message_stop"}`, `{"type":"message_stop","type":5}`, `{"type":"message_stop","type":null}`, `{"type":null}`, `{"type":{}}`,
	"{\"type\":\"message_stop\xff\"}", "{\"type\":\"\xffmessage_stop\"}", `{"type":"\ud800"}`, `{"type":"message\u005fstop"}`,
	`{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`, `{"type":"error","error":null}`, `{"type":"error","error":5}`,
	`{"type":"error","error":{"type":5,"message":"m"}}`, `{"type":"error"}`,
	`{"type":"ping"}`, `{"type":"content_block_delta","index":"x","delta":{"text":5}}`,
}

var eventSeeds = []string{
	`[DONE]`, ` [DONE] `, "[DONE]\n", `[DONE]x`,
	`{"choices":[],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{"delta":{"content":"\"usage\":{\"prompt_tokens\":5}"}}],"usage":null}`,
	`{"choices":[{"delta":{"content":"error"}}]}`,
	`{"choices":[{"delta":{"content":"error"}}],"x":"prompt_tokens"}`,
	`{"choices":[{"delta":{"content":"x"},"usage":{"prompt_tokens":3}}]}`,
	`{"choices":[{"delta":{"content":"x"}}],"x":{"usage":{"prompt_tokens":3},"error":{"message":"x"}}}`,
	`{"error":{"message":"busy","type":"server_error"}}`, `{"error":"busy"}`, `{"error":null}`, `{"error":5}`, `{"error":[]}`,
	`{"error":{"message":"a"},"error":null}`, `{"error":null,"error":{"message":"b"}}`, `{"error":{"message":"a"},"ERROR":{"message":"b"}}`,
	`{"Error":{"message":"x"}}`, `{"\u0065rror":{"message":"x"}}`, `{"error" : { "message" : "spaced" } }`,
	`{"usage":{"prompt_tokens":1},"usage":null}`, `{"usage":null,"usage":{"prompt_tokens":1}}`,
	`{"USAGE":{"prompt_tokens":2},"choices":[{}]}`, `{"usage":{"completion_tokens":2}}`, `{"Usage":{"completion_tokens":2},"choices":[]}`,
	"{\"u\u017fage\":{\"prompt_tokens\":4}}", "{\"u\xc5\xbfage\":{\"prompt_tokens\":4}}",
	`{"choices":5,"usage":{"prompt_tokens":1}}`, `{"\u0041":1,"choices":5}`, "{\"\xc3\xa9xxxx\":1,\"choices\":[1]}",
	`{"usage":{"prompt_tokens":1},"usage":null,"choices":5}`, `{"error":{},"error":null,"choices":5}`, `{"choices":[1],"error":{}}`, `{"choices":"x"}`, `{"choices":[null],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{}],"choices":[],"usage":{"prompt_tokens":1}}`, `{"choices":[],"choices":[{}],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{}],"choices":null,"usage":{"prompt_tokens":1}}`,
	`{"usage":5}`, `{"usage":{"prompt_tokens":"1"}}`, `{"usage":{"prompt_tokens":1.5}}`, `{"usage":[]}`, `{"usage":"x","error":null}`,
	`[]`, `["error"]`, `"usage"`, `5`, `null`, ` null `, "\tnull\n", `{}`, `[{"usage":{"prompt_tokens":1}}]`,
	`{"usage":{"prompt_tokens":1},"choices":[{}],"error":null}`,
	`  {"usage": {"prompt_tokens": 1} }  `,
	"{\"choices\":[],\"usage\":{\"prompt_tokens\":1},\"x\":\"\xff\"}",
	"{\"error\":{\"message\":\"\xff\"}}", `{"error":{"message":"\ud800"}}`,
	`{"choices":[],"usage":{"prompt_tokens":1}`, `{"usage":{"prompt_tokens":1}}x`, `{"usage":{"prompt_tokens":1},}`,
	"{\"choices\":[]}\n{\"usage\":{\"prompt_tokens\":1}}",
}

func eventCorpus(t testing.TB) []string {
	return append(append(append(append([]string{}, eventSeeds...), anthropicEventSeeds...), replySeeds...), streamSeeds(t)...)
}

func TestScannedEventsReadAsUnmarshalled(t *testing.T) {
	for _, data := range eventCorpus(t) {
		checkScannedEvent(t, []byte(data))
	}
}

func FuzzScannedEvent(f *testing.F) {
	for _, data := range eventCorpus(f) {
		f.Add([]byte(data))
	}
	f.Fuzz(checkScannedEvent)
}

func checkScannedEvent(t *testing.T, data []byte) {
	for _, include := range []bool{false, true} {
		compareEvent(t, &Event{Data: data}, &openaiPassStream{includeUsage: include}, &unmarshalledPassStream{includeUsage: include})
	}
	for _, name := range anthropicEventNames {
		compareEvent(t, &Event{Name: []byte(name), Data: data}, &anthropicPassStream{}, &unmarshalledAnthropicPassStream{})
	}
}

// compareEvent feeds one event to two streams and compares what they do
// with it: the fault (its kind; what it says, unless the event was
// malformed, where the decoders' words differ), the events written, the
// usage and whether the stream finished.
func compareEvent(t *testing.T, ev *Event, got, want Stream) {
	t.Helper()
	gout, wout := NewWriter(), NewWriter()
	gerr := got.Event(ev, gout)
	werr := want.Event(ev, wout)
	data := ev.Data
	var gf, wf *Fault
	if (gerr == nil) != (werr == nil) || gerr != nil && (!errors.As(gerr, &gf) || !errors.As(werr, &wf) ||
		gf.Kind != wf.Kind || gf.Kind != FaultMalformed && *gf != *wf) {
		t.Fatalf("%s %q: error %v, want %v", ev.Name, data, gerr, werr)
	}
	if !bytes.Equal(gout.Bytes(), wout.Bytes()) {
		t.Fatalf("%s %q: wrote %q, want %q", ev.Name, data, gout.Bytes(), wout.Bytes())
	}
	if got.Usage() != want.Usage() || got.Finished() != want.Finished() {
		t.Fatalf("%s %q: usage %+v finished %v, want %+v %v", ev.Name, data, got.Usage(), got.Finished(), want.Usage(), want.Finished())
	}
}

// BenchmarkPassStream replays the provider simulator's streams through the
// pass-through translators, one stream per op.
func BenchmarkPassStream(b *testing.B) {
	for _, c := range []struct {
		name, file string
		front      Dialect
	}{
		{"openai", "testdata/providersim-openai.sse", OpenAI},
		{"anthropic", "testdata/providersim-anthropic.sse", Anthropic},
	} {
		b.Run(c.name, func(b *testing.B) {
			var events []Event
			rd := NewReader(strings.NewReader(mustRead(b, c.file)))
			for {
				var ev Event
				if rd.Next(&ev) != nil {
					break
				}
				events = append(events, Event{Name: bytes.Clone(ev.Name), Data: bytes.Clone(ev.Data)})
			}
			out := NewWriter()
			b.ReportAllocs()
			for b.Loop() {
				st := For(c.front, c.front).Stream(withUsage(false))
				for i := range events {
					out.Reset()
					if err := st.Event(&events[i], out); err != nil {
						b.Fatal(err)
					}
				}
				if !st.Finished() || st.Usage().Input == 0 {
					b.Fatal("stream not read")
				}
			}
		})
	}
}
