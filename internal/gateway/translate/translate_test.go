package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

var translatorPairs = []struct {
	name            string
	front, upstream Dialect
}{
	{"anthropic_anthropic", Anthropic, Anthropic},
	{"anthropic_openai", Anthropic, OpenAI},
	{"openai_anthropic", OpenAI, Anthropic},
	{"openai_openai", OpenAI, OpenAI},
}

var requestSeeds = []string{
	`{"model":"m","max_tokens":5,"system":"s","messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"m","max_tokens":5,"stream":true,"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`,
	`{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,AA=="}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required","stream":true,"stream_options":{"include_usage":true},"stop":["x"],"temperature":1.5}`,
	`{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false,"max_completion_tokens":7,"stop":"y"}`,
	`{"messages":[]}`,
	`{}`,
	`[]`,
	`{"model":1}`,
}

// FuzzTranslateRequest: any body either is refused with an error for the
// caller or becomes a JSON object carrying the provider's model id and
// exactly the output cap the quota admitted. (Under -fuzz the exec count
// pauses while each new interesting input is minimized, up to
// -fuzzminimizetime, 60s by default: that is not a hang.)
func FuzzTranslateRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range translatorPairs {
			in, aerr := Parse(p.front, []byte(body))
			if aerr != nil {
				if aerr.Status != 400 {
					t.Fatalf("%s: status %d", p.name, aerr.Status)
				}
				continue
			}
			var out bytes.Buffer
			if aerr := For(p.front, p.upstream).Request(in, Target{ModelID: "upstream-id", MaxTokens: 9, User: "u@example.com", CapOutput: true}, &out); aerr != nil {
				continue
			}
			var v struct {
				Model string `json:"model"`
			}
			if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Model != "upstream-id" {
				t.Fatalf("%s: %v, model %q in %s", p.name, err, v.Model, out.Bytes())
			}
			// The cap the quota admitted is the one the provider reads.
			want := in.OutputCap()
			if want == 0 {
				want = 9
			}
			if got, err := sentCap(p.upstream, out.Bytes()); err != nil || got != want {
				t.Fatalf("%s: admitted a cap of %d, the provider reads %d (%v) in %s", p.name, want, got, err, out.Bytes())
			}
		}
	})
}

var responseSeeds = []string{
	`{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hi"},{"type":"tool_use","id":"t","name":"f","input":{"a":1}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":2,"cache_creation_input_tokens":1}}`,
	`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","tool_calls":[{"id":"x","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"length"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":4}}}`,
	`{"choices":[]}`,
	`{"type":"message","content":null}`,
}

// FuzzTranslateResponse: any provider body is refused or becomes valid JSON.
func FuzzTranslateResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range translatorPairs {
			var out bytes.Buffer
			u, err := For(p.front, p.upstream).Response([]byte(body), &out)
			if err != nil {
				continue
			}
			if !json.Valid(out.Bytes()) {
				t.Fatalf("%s: invalid JSON %s", p.name, out.Bytes())
			}
			if u.Input < 0 || u.Output < 0 || u.CacheRead < 0 || u.CacheWrite < 0 {
				// Negative counts come only from a provider sending them.
				if !strings.Contains(body, "-") {
					t.Fatalf("%s: negative usage %+v", p.name, u)
				}
			}
		}
	})
}

const anthropicStreamSeed = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"x\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
	"event: ping\ndata: {\"type\":\"ping\"}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
	"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"1}\"}}\n\n" +
	"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n" +
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":7,\"cache_read_input_tokens\":2}}\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

const openaiStreamSeed = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n" +
	"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],\"usage\":null}\n\n" +
	"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n" +
	"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n" +
	"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n" +
	"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n" +
	"data: [DONE]\n\n"

// runStream feeds a provider stream through a translator and returns the
// client's events.
func runStream(st Stream, upstream string) ([]parsedEvent, error) {
	rd := NewReader(strings.NewReader(upstream))
	out := NewWriter()
	var ev Event
	for {
		err := rd.Next(&ev)
		if errors.Is(err, io.EOF) {
			if err := st.EOF(out); err != nil {
				return nil, err
			}
			break
		}
		if err != nil {
			return nil, err
		}
		if err := st.Event(&ev, out); err != nil {
			return nil, err
		}
	}
	return parseAll(nil, out.buf.String())
}

// TestStreamFaults: whatever the pair, an error event and a stream that
// stops short are faults, never a finished stream.
func TestStreamFaults(t *testing.T) {
	t.Run("error event is a fault", func(t *testing.T) {
		for _, p := range translatorPairs {
			up := "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n"
			wantType := "overloaded_error"
			if p.upstream == OpenAI {
				up = "data: {\"error\":{\"message\":\"busy\",\"type\":\"server_error\"}}\n\n"
				wantType = "" // only Anthropic's error types are read
			}
			_, err := runStream(For(p.front, p.upstream).Stream(&Request{}), up)
			var sf *Fault
			if !errors.As(err, &sf) || sf.Kind != FaultReported || sf.Type != wantType || sf.Msg != "busy" {
				t.Errorf("%s: %v", p.name, err)
			}
		}
	})
	t.Run("truncated stream is a fault", func(t *testing.T) {
		for _, p := range translatorPairs {
			seed := anthropicStreamSeed
			if p.upstream == OpenAI {
				seed = openaiStreamSeed
			}
			_, err := runStream(For(p.front, p.upstream).Stream(&Request{}), seed[:len(seed)/2])
			var sf *Fault
			if !errors.As(err, &sf) || sf.Kind == FaultReported {
				t.Errorf("%s: a stream cut in half passed as complete", p.name)
			}
		}
	})
}

// FuzzStreamTranslation: whatever a provider streams, the client gets
// well-formed events whose data is JSON (or [DONE]), or the stream fails;
// a Conversation reads text and never writes client events.
func FuzzStreamTranslation(f *testing.F) {
	f.Add(anthropicStreamSeed)
	f.Add(openaiStreamSeed)
	f.Add("data: {\"error\":{}}\n\n")
	f.Add("event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":-1}}\n\n")
	f.Fuzz(func(t *testing.T, upstream string) {
		for _, p := range translatorPairs {
			events, err := runStream(For(p.front, p.upstream).Stream(withUsage(true)), upstream)
			if err != nil {
				continue
			}
			for _, ev := range events {
				if ev.data != "[DONE]" && !json.Valid([]byte(ev.data)) {
					t.Fatalf("%s: client event with invalid JSON: %q", p.name, ev.data)
				}
			}
		}
		for _, d := range []Dialect{Anthropic, OpenAI} {
			in := NewConversation("m", conversation)
			if _, _, err := readConversation(in.Translator(d).Stream(in), upstream); err != nil && !errors.As(err, new(*Fault)) && !errors.Is(err, ErrEventTooLarge) {
				t.Fatalf("conversation from %s: %v", d, err)
			}
		}
	})
}

func TestOpenAIUsageSplit(t *testing.T) {
	cases := []struct {
		json string
		want metering.Usage
	}{
		{`{"prompt_tokens":10,"completion_tokens":2}`, metering.Usage{Input: 10, Output: 2}},
		{`{"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":4}}`, metering.Usage{Input: 6, Output: 2, CacheRead: 4}},
		// LiteLLM in front of Anthropic: prompt_tokens includes reads and writes.
		{`{"prompt_tokens":98805,"completion_tokens":5120,"prompt_tokens_details":{"cached_tokens":66360,"cache_creation_tokens":32435},"cache_creation_input_tokens":32435}`, metering.Usage{Input: 10, Output: 5120, CacheRead: 66360, CacheWrite: 32435}},
	}
	for _, c := range cases {
		var u openaiUsage
		if err := json.Unmarshal([]byte(c.json), &u); err != nil {
			t.Fatal(err)
		}
		if got := u.usage(); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.json, got, c.want)
		}
	}
}
