package translate

import (
	"bytes"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

func TestAnthropicAnthropicRequest(t *testing.T) {
	// Fields this gateway does not model still reach the provider; the
	// model, the identity and (when absent) max_tokens are the gateway's.
	v := upstreamBody(t, Anthropic, Anthropic, `{"model":"sonnet","metadata":{"user_id":"spoofed"},"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"hi"}]}`, testTarget)
	if v["model"] != "upstream-id" || jsonPath(v, "metadata", "user_id") != "u@example.com" || v["max_tokens"] != 321.0 || jsonPath(v, "thinking", "budget_tokens") != 1024.0 {
		t.Errorf("upstream body %v", v)
	}
	v = upstreamBody(t, Anthropic, Anthropic, `{"model":"sonnet","max_tokens":5,"messages":[]}`, testTarget)
	if v["max_tokens"] != 5.0 {
		t.Errorf("the caller's max_tokens: %v", v["max_tokens"])
	}
}

func TestAnthropicAnthropicResponse(t *testing.T) {
	body := `{"id":"m","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":2,"cache_creation_input_tokens":1}}`
	var out bytes.Buffer
	u, err := anthropicAnthropic{}.Response([]byte(body), &out)
	if err != nil || out.String() != body {
		t.Fatalf("%v: %s", err, out.Bytes())
	}
	if u != (metering.Usage{Input: 3, Output: 4, CacheRead: 2, CacheWrite: 1}) {
		t.Errorf("usage %+v", u)
	}
	if _, err := (anthropicAnthropic{}).Response([]byte(`{"type":"error"}`), &out); err == nil {
		t.Error("an error object passed as a message")
	}
}

func TestAnthropicAnthropicStream(t *testing.T) {
	st := anthropicAnthropic{}.Stream(&Request{})
	// A provider that leaves event names out still gets them named.
	events, err := runStream(st, "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"+anthropicStreamSeed[len("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"x\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"):])
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 11 || events[0].name != "message_start" || events[3].name != "content_block_delta" || events[10].name != "message_stop" {
		t.Errorf("events %q", events)
	}
	if u := st.Usage(); u != (metering.Usage{Input: 5, Output: 7, CacheRead: 2}) {
		t.Errorf("metered %+v", u)
	}
}
