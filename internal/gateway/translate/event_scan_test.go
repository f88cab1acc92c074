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
	`{"choices":5,"usage":{"prompt_tokens":1}}`, `{"choices":[1],"error":{}}`, `{"choices":"x"}`, `{"choices":[null],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{}],"choices":[],"usage":{"prompt_tokens":1}}`, `{"choices":[],"choices":[{}],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{}],"choices":null,"usage":{"prompt_tokens":1}}`,
	`{"usage":5}`, `{"usage":{"prompt_tokens":"1"}}`, `{"usage":{"prompt_tokens":1.5}}`, `{"usage":[]}`, `{"usage":"x","error":null}`,
	`[]`, `["error"]`, `"usage"`, `5`, `null`, `{}`, `[{"usage":{"prompt_tokens":1}}]`,
	`{"usage":{"prompt_tokens":1},"choices":[{}],"error":null}`,
	`  {"usage": {"prompt_tokens": 1} }  `,
	"{\"choices\":[],\"usage\":{\"prompt_tokens\":1},\"x\":\"\xff\"}",
	"{\"error\":{\"message\":\"\xff\"}}", `{"error":{"message":"\ud800"}}`,
	`{"choices":[],"usage":{"prompt_tokens":1}`, `{"usage":{"prompt_tokens":1}}x`, `{"usage":{"prompt_tokens":1},}`,
	"{\"choices\":[]}\n{\"usage\":{\"prompt_tokens\":1}}",
}

func eventCorpus(t testing.TB) []string {
	return append(append(append([]string{}, eventSeeds...), replySeeds...), streamSeeds(t)...)
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
		compareEvent(t, data, &openaiPassStream{includeUsage: include}, &unmarshalledPassStream{includeUsage: include})
	}
}

// compareEvent feeds one event to two streams and compares what they do
// with it: the fault (its kind; what it says, unless the event was
// malformed, where the decoders' words differ), the events written, the
// usage and whether the stream finished.
func compareEvent(t *testing.T, data []byte, got, want Stream) {
	t.Helper()
	gout, wout := NewWriter(), NewWriter()
	gerr := got.Event(&Event{Data: data}, gout)
	werr := want.Event(&Event{Data: data}, wout)
	var gf, wf *Fault
	if (gerr == nil) != (werr == nil) || gerr != nil && (!errors.As(gerr, &gf) || !errors.As(werr, &wf) ||
		gf.Kind != wf.Kind || gf.Kind != FaultMalformed && *gf != *wf) {
		t.Fatalf("%q: error %v, want %v", data, gerr, werr)
	}
	if !bytes.Equal(gout.Bytes(), wout.Bytes()) {
		t.Fatalf("%q: wrote %q, want %q", data, gout.Bytes(), wout.Bytes())
	}
	if got.Usage() != want.Usage() || got.Finished() != want.Finished() {
		t.Fatalf("%q: usage %+v finished %v, want %+v %v", data, got.Usage(), got.Finished(), want.Usage(), want.Finished())
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
