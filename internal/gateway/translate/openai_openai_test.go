package translate

import (
	"bytes"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

func TestOpenAIOpenAIRequest(t *testing.T) {
	// Unknown fields pass; the model and user are the gateway's; a stream
	// always asks for usage, keeping the caller's other stream options.
	v := upstreamBody(t, OpenAI, OpenAI, `{"model":"gpt","user":"spoofed","logprobs":true,"stream":true,"stream_options":{"include_obfuscation":false},"messages":[]}`, testTarget)
	if v["model"] != "upstream-id" || v["user"] != "u@example.com" || v["logprobs"] != true ||
		jsonPath(v, "stream_options", "include_usage") != true || jsonPath(v, "stream_options", "include_obfuscation") != false {
		t.Errorf("upstream body %v", v)
	}
	if _, ok := v["max_tokens"]; ok {
		t.Errorf("max_tokens added without CapOutput: %v", v)
	}
	capped := testTarget
	capped.CapOutput = true
	if v := upstreamBody(t, OpenAI, OpenAI, `{"messages":[]}`, capped); v["max_tokens"] != 321.0 {
		t.Errorf("capped: %v", v)
	}
	if v := upstreamBody(t, OpenAI, OpenAI, `{"max_completion_tokens":5,"messages":[]}`, capped); v["max_tokens"] != nil || v["max_completion_tokens"] != 5.0 {
		t.Errorf("the caller's cap: %v", v)
	}
}

func TestOpenAIOpenAIResponse(t *testing.T) {
	body := `{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":4}}}`
	var out bytes.Buffer
	u, err := openaiOpenAI{}.Response([]byte(body), &out)
	if err != nil || out.String() != body || u != (metering.Usage{Input: 6, Output: 2, CacheRead: 4}) {
		t.Errorf("%v %+v %s", err, u, out.Bytes())
	}
	if _, err := (openaiOpenAI{}).Response([]byte(`{"error":{"message":"x"}}`), &out); err == nil {
		t.Error("a body without choices passed")
	}
}

func TestOpenAIOpenAIStream(t *testing.T) {
	t.Run("hides the usage chunk the caller did not ask for", func(t *testing.T) {
		st := openaiOpenAI{}.Stream(withUsage(false))
		events, err := runStream(st, openaiStreamSeed)
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 6 {
			t.Errorf("%d events, want 6 (the usage chunk dropped)", len(events))
		}
		if u := st.Usage(); u != (metering.Usage{Input: 5, Output: 3, CacheRead: 4}) {
			t.Errorf("metered %+v", u)
		}
	})
	t.Run("keeps it when asked", func(t *testing.T) {
		events, err := runStream(openaiOpenAI{}.Stream(withUsage(true)), openaiStreamSeed)
		if err != nil || len(events) != 7 {
			t.Errorf("%d events, %v", len(events), err)
		}
	})
}
