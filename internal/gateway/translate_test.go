package gateway

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
	front, upstream dialect
}{
	{"anthropic_anthropic", dialectAnthropic, dialectAnthropic},
	{"anthropic_openai", dialectAnthropic, dialectOpenAI},
	{"openai_anthropic", dialectOpenAI, dialectAnthropic},
	{"openai_openai", dialectOpenAI, dialectOpenAI},
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
// caller or becomes a JSON object carrying the provider's model id.
func FuzzTranslateRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range translatorPairs {
			in, aerr := parseClientRequest(p.front, []byte(body))
			if aerr != nil {
				if aerr.status != 400 {
					t.Fatalf("%s: status %d", p.name, aerr.status)
				}
				continue
			}
			var out bytes.Buffer
			if aerr := translatorFor(p.front, p.upstream).request(in, target{modelID: "upstream-id", maxTokens: 9, user: "u@example.com"}, &out); aerr != nil {
				continue
			}
			var v struct {
				Model string `json:"model"`
			}
			if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Model != "upstream-id" {
				t.Fatalf("%s: %v, model %q in %s", p.name, err, v.Model, out.Bytes())
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
			u, err := translatorFor(p.front, p.upstream).response([]byte(body), &out)
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
func runStream(st streamTranslator, upstream string) ([]parsedEvent, error) {
	rd := newSSEReader(strings.NewReader(upstream))
	out := newSSEWriter()
	var ev sseEvent
	for {
		err := rd.next(&ev)
		if errors.Is(err, io.EOF) {
			if err := st.eof(out); err != nil {
				return nil, err
			}
			break
		}
		if err != nil {
			return nil, err
		}
		if err := st.event(&ev, out); err != nil {
			return nil, err
		}
	}
	return parseAll(nil, out.buf.String())
}

func TestStreamTranslation(t *testing.T) {
	t.Run("openai_anthropic", func(t *testing.T) {
		st := openaiAnthropic{}.stream(&clientRequest{includeUsage: true})
		events, err := runStream(st, anthropicStreamSeed)
		if err != nil {
			t.Fatal(err)
		}
		var content, args string
		var finish string
		var usage *openaiUsage
		for _, ev := range events[:len(events)-1] {
			var c openaiChunk
			if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
				t.Fatal(err)
			}
			for _, ch := range c.Choices {
				if ch.Delta.Content != nil {
					content += *ch.Delta.Content
				}
				for _, tc := range ch.Delta.ToolCalls {
					args += tc.Function.Arguments
				}
				if ch.FinishReason != nil {
					finish = *ch.FinishReason
				}
			}
			if c.Usage != nil {
				usage = c.Usage
			}
		}
		if content != "Hi" || args != `{"a":1}` || finish != "tool_calls" || events[len(events)-1].data != "[DONE]" {
			t.Errorf("content %q args %q finish %q last %q", content, args, finish, events[len(events)-1].data)
		}
		if usage == nil || usage.PromptTokens != 7 || usage.CompletionTokens != 7 || usage.PromptTokensDetails.CachedTokens != 2 {
			t.Errorf("usage %+v", usage)
		}
		if u := st.usage(); u != (metering.Usage{Input: 5, Output: 7, CacheRead: 2}) {
			t.Errorf("metered %+v", u)
		}
	})
	t.Run("anthropic_openai", func(t *testing.T) {
		st := anthropicOpenAI{}.stream(&clientRequest{})
		events, err := runStream(st, openaiStreamSeed)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, ev := range events {
			names = append(names, ev.name)
			if !json.Valid([]byte(ev.data)) {
				t.Errorf("invalid JSON in %s", ev.data)
			}
		}
		want := "message_start content_block_start content_block_delta content_block_stop content_block_start content_block_delta content_block_stop message_delta message_stop"
		if got := strings.Join(names, " "); got != want {
			t.Errorf("events\n got %s\nwant %s", got, want)
		}
		if !strings.Contains(events[7].data, `"stop_reason":"tool_use"`) || !strings.Contains(events[7].data, `"input_tokens":5`) {
			t.Errorf("message_delta %s", events[7].data)
		}
		if u := st.usage(); u != (metering.Usage{Input: 5, Output: 3, CacheRead: 4}) {
			t.Errorf("metered %+v", u)
		}
	})
	t.Run("openai_openai hides the usage chunk", func(t *testing.T) {
		st := openaiOpenAI{}.stream(&clientRequest{includeUsage: false})
		events, err := runStream(st, openaiStreamSeed)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 6 {
			t.Errorf("%d events, want 6 (the usage chunk dropped)", len(events))
		}
		if u := st.usage(); u != (metering.Usage{Input: 5, Output: 3, CacheRead: 4}) {
			t.Errorf("metered %+v", u)
		}
	})
	t.Run("error event is a fault", func(t *testing.T) {
		for _, p := range translatorPairs {
			up := "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n"
			wantClass := classOverloaded
			if p.upstream == dialectOpenAI {
				up = "data: {\"error\":{\"message\":\"busy\",\"type\":\"server_error\"}}\n\n"
				wantClass = classServerError
			}
			_, err := runStream(translatorFor(p.front, p.upstream).stream(&clientRequest{}), up)
			var sf *streamFault
			if !errors.As(err, &sf) || sf.class != wantClass || sf.msg != "busy" {
				t.Errorf("%s: %v", p.name, err)
			}
		}
	})
	t.Run("truncated stream is a fault", func(t *testing.T) {
		for _, p := range translatorPairs {
			seed := anthropicStreamSeed
			if p.upstream == dialectOpenAI {
				seed = openaiStreamSeed
			}
			_, err := runStream(translatorFor(p.front, p.upstream).stream(&clientRequest{}), seed[:len(seed)/2])
			if err == nil {
				t.Errorf("%s: a stream cut in half passed as complete", p.name)
			}
		}
	})
}

// FuzzStreamTranslation: whatever a provider streams, the client gets
// well-formed events whose data is JSON (or [DONE]), or the stream fails.
func FuzzStreamTranslation(f *testing.F) {
	f.Add(anthropicStreamSeed)
	f.Add(openaiStreamSeed)
	f.Add("data: {\"error\":{}}\n\n")
	f.Add("event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":-1}}\n\n")
	f.Fuzz(func(t *testing.T, upstream string) {
		for _, p := range translatorPairs {
			events, err := runStream(translatorFor(p.front, p.upstream).stream(&clientRequest{includeUsage: true}), upstream)
			if err != nil {
				continue
			}
			for _, ev := range events {
				if ev.data != "[DONE]" && !json.Valid([]byte(ev.data)) {
					t.Fatalf("%s: client event with invalid JSON: %q", p.name, ev.data)
				}
			}
		}
	})
}

func TestWriteObject(t *testing.T) {
	raw := map[string]json.RawMessage{"b": json.RawMessage(`1`), "a": json.RawMessage(`"x"`), "drop": json.RawMessage(`true`), "ü\"": json.RawMessage(`2`)}
	var out bytes.Buffer
	writeObject(&out, raw, rawField{"c", []byte(`3`)}, rawField{"drop", nil}, rawField{"a", []byte(`"y"`)})
	if got := out.String(); got != `{"a":"y","b":1,"c":3,"ü\"":2}` {
		t.Errorf("%s", got)
	}
}
