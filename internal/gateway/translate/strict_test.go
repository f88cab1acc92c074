package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestStrictDecoding: what a family member poking at the gateway would
// try to make it admit one thing and send another, in both dialects. Each
// body is refused with a 400 naming the member at fault.
func TestStrictDecoding(t *testing.T) {
	for _, tc := range []struct {
		front Dialect
		body  string
		want  string
	}{
		// Case variants of a known member: providers read them, the gateway refuses them.
		{OpenAI, `{"max_tokens":1,"MAX_TOKENS":64000,"messages":[]}`, `MAX_TOKENS is not a member of the chat completions API: member names are case-sensitive`},
		{Anthropic, `{"max_tokens":1,"Max_Tokens":64000,"messages":[]}`, `Max_Tokens is not a member of the Messages API: member names are case-sensitive`},
		{OpenAI, `{"modEl":0,"model":"gpt","messages":[]}`, `use "model"`},
		{Anthropic, `{"messages":[{"role":"user","content":[{"type":"text","TEXT":"x","text":"y"}]}]}`, `messages[0].content[0].TEXT is not a member`},
		// Duplicates, at the top and deep down.
		{OpenAI, `{"max_tokens":1,"max_tokens":64000,"messages":[]}`, `the member max_tokens more than once`},
		{Anthropic, `{"messages":[{"role":"user","role":"assistant","content":"x"}]}`, `messages[0].role more than once`},
		{OpenAI, `{"messages":[],"tools":[{"type":"function","function":{"name":"f","parameters":{"a":1,"a":2}}}]}`, `more than once`},
		// Numbers that are not what the field holds.
		{OpenAI, `{"n":2.0,"messages":[]}`, `n has a value of the wrong type (want an integer)`},
		{OpenAI, `{"max_tokens":"64000","messages":[]}`, `max_tokens has a value of the wrong type`},
		{Anthropic, `{"max_tokens":1e9999,"messages":[]}`, `max_tokens`},
		{OpenAI, `{"max_tokens":0,"messages":[]}`, `max_tokens must be at least 1`},
		{OpenAI, `{"max_tokens":5,"max_completion_tokens":6,"messages":[]}`, `max_tokens and max_completion_tokens differ`},
		// Members the gateway cannot price.
		{OpenAI, `{"messages":[],"web_search_options":{}}`, `web_search_options is not a member of the chat completions API that this gateway forwards`},
		{OpenAI, `{"messages":[],"audio":{"voice":"alloy","format":"wav"}}`, `audio is not a member`},
		{OpenAI, `{"messages":[],"modalities":["text","audio"]}`, `audio output is priced apart`},
		{OpenAI, `{"messages":[],"service_tier":"priority"}`, `service_tier "priority"`},
		{OpenAI, `{"messages":[],"prediction":{"type":"content","content":"x"}}`, `prediction is not a member`},
		{OpenAI, `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"wav"}}]}]}`, `input_audio is not a member`},
		{OpenAI, `{"messages":[],"tools":[{"type":"web_search"}]}`, `tools[0].type "web_search" is not a function tool`},
		{Anthropic, `{"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5}]}`, `max_uses is not a member`},
		{Anthropic, `{"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`, `tools[0].type "web_search_20250305" is a tool Anthropic defines`},
		{Anthropic, `{"messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]}`, `messages[0].content[0].cache_control.ttl "1h"`},
		{Anthropic, `{"system":[{"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[]}`, `system[0].cache_control.ttl`},
		{Anthropic, `{"messages":[],"service_tier":"auto"}`, `service_tier "auto" may use the priority tier`},
		{Anthropic, `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]}`, `messages[0].content[0].type "document" is not a content block this gateway forwards`},
		{Anthropic, `{"messages":[],"mcp_servers":[]}`, `mcp_servers is not a member`},
		{Anthropic, `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, `file_id is not a member`},
		// Not an object at all.
		{OpenAI, `[]`, `must be a JSON object`},
		{Anthropic, `{"messages":[]`, `not valid JSON`},
	} {
		in, aerr := Parse(tc.front, []byte(tc.body))
		if aerr == nil {
			t.Errorf("%s %s: admitted (cap %d)", tc.front, tc.body, in.OutputCap())
			continue
		}
		if aerr.Status != http.StatusBadRequest || !strings.Contains(aerr.Msg, tc.want) {
			t.Errorf("%s %s: %d %q, want %q", tc.front, tc.body, aerr.Status, aerr.Msg, tc.want)
		}
	}
}

// TestAdmittedCapIsSent: on every front × provider pair, the cap the
// quota reads (OutputCap, or the model's limit when there is none) is the
// cap the provider receives, in its own dialect's member; a null cap is
// no cap.
func TestAdmittedCapIsSent(t *testing.T) {
	capped := Target{ModelID: "upstream-id", MaxTokens: 321, User: "u@example.com", CapOutput: true}
	bodies := map[Dialect][]string{
		OpenAI: {
			`{"max_tokens":17,"messages":[{"role":"user","content":"hi"}]}`,
			`{"max_completion_tokens":17,"messages":[{"role":"user","content":"hi"}]}`,
			`{"max_completion_tokens":17,"max_tokens":17,"messages":[{"role":"user","content":"hi"}]}`,
			`{"max_tokens":null,"messages":[{"role":"user","content":"hi"}]}`,
			`{"max_tokens":null,"max_completion_tokens":null,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			`{"messages":[{"role":"user","content":"hi"}]}`,
		},
		Anthropic: {
			`{"max_tokens":17,"messages":[{"role":"user","content":"hi"}]}`,
			`{"max_tokens":null,"messages":[{"role":"user","content":"hi"}]}`,
			`{"messages":[{"role":"user","content":"hi"}],"stream":true}`,
		},
	}
	for _, p := range translatorPairs {
		for _, body := range bodies[p.front] {
			in, aerr := Parse(p.front, []byte(body))
			if aerr != nil {
				t.Fatalf("%s %s: %v", p.name, body, aerr)
			}
			want := in.OutputCap()
			if want == 0 {
				want = capped.MaxTokens
			}
			var out bytes.Buffer
			if aerr := For(p.front, p.upstream).Request(in, capped, &out); aerr != nil {
				t.Fatalf("%s %s: %v", p.name, body, aerr)
			}
			if got, err := sentCap(p.upstream, out.Bytes()); err != nil || got != want {
				t.Errorf("%s %s: the provider gets a cap of %d (%v), the quota admitted %d: %s", p.name, body, got, err, want, out.Bytes())
			}
		}
	}
}

// sentCap reads the output cap a provider of dialect d would apply to
// body: its one cap member (a duplicate or a case variant would be a
// second one), refusing a null or two different caps.
func sentCap(d Dialect, body []byte) (int64, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return 0, err
	}
	var caps []int64
	for k, v := range m {
		lk := strings.ToLower(k)
		if lk != "max_tokens" && !(d == OpenAI && lk == "max_completion_tokens") {
			continue
		}
		var n *int64
		if err := json.Unmarshal(v, &n); err != nil || n == nil {
			return 0, fmt.Errorf("%s is %s", k, v)
		}
		caps = append(caps, *n)
	}
	switch {
	case len(caps) == 0:
		return 0, fmt.Errorf("no cap")
	case len(caps) == 2 && caps[0] != caps[1] || len(caps) > 2:
		return 0, fmt.Errorf("caps %v", caps)
	}
	return caps[0], nil
}

// TestStrictDecodingKeepsWhatIsPriced: the members a client commonly sends
// that the gateway can bill for pass, and reach a same-dialect provider.
func TestStrictDecodingKeepsWhatIsPriced(t *testing.T) {
	v := upstreamBody(t, OpenAI, OpenAI, `{"model":"gpt","messages":[{"role":"user","content":"hi"}],"seed":1,"frequency_penalty":0.5,"presence_penalty":0,"logit_bias":{"50256":-100},"logprobs":true,"top_logprobs":2,"reasoning_effort":"low","service_tier":"flex","modalities":["text"],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}},"metadata":{"k":"v"},"prompt_cache_key":"p","n":2}`, testTarget)
	for _, k := range []string{"seed", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs", "reasoning_effort", "service_tier", "modalities", "response_format", "metadata", "prompt_cache_key", "n"} {
		if _, ok := v[k]; !ok {
			t.Errorf("%s was dropped: %v", k, v)
		}
	}
	if jsonPath(v, "presence_penalty") != 0.0 || jsonPath(v, "response_format", "json_schema", "name") != "x" {
		t.Errorf("values changed: %v", v)
	}
	a := upstreamBody(t, Anthropic, Anthropic, `{"model":"m","max_tokens":9,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral","ttl":"5m"}}]},{"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"sig"},{"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"ok"}],"is_error":false}]}],"tools":[{"name":"f","input_schema":{},"cache_control":{"type":"ephemeral"}}],"thinking":{"type":"enabled","budget_tokens":1024},"top_k":5,"service_tier":"standard_only"}`, testTarget)
	if jsonPath(a, "messages", 1, "content", 1, "input") == nil || jsonPath(a, "tools", 0, "input_schema") == nil || jsonPath(a, "messages", 1, "content", 0, "signature") != "sig" ||
		jsonPath(a, "system", 0, "cache_control", "type") != "ephemeral" || jsonPath(a, "top_k") != 5.0 || jsonPath(a, "thinking", "budget_tokens") != 1024.0 {
		t.Errorf("upstream body %v", a)
	}
}

func TestRequestImages(t *testing.T) {
	in, aerr := Parse(OpenAI, []byte(`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/a.png"}},{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}`))
	if aerr != nil || in.Images() != 2 {
		t.Errorf("OpenAI: %v %d", aerr, in.Images())
	}
	in, aerr = Parse(Anthropic, []byte(`{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/a.png"}},{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]}]}`))
	if aerr != nil || in.Images() != 2 {
		t.Errorf("Anthropic: %v %d", aerr, in.Images())
	}
}

// BenchmarkParse is the strict decode of a small request, as the bench
// sends it, and its same-dialect encoding.
//
//	go test ./internal/gateway/translate -run '^$' -bench Parse -benchmem
func BenchmarkParse(b *testing.B) {
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to the benchmark in a few words."}],"max_tokens":64,"stream":true}`)
	var out bytes.Buffer
	for b.Loop() {
		in, aerr := Parse(OpenAI, body)
		if aerr != nil {
			b.Fatal(aerr)
		}
		out.Reset()
		if aerr := For(OpenAI, OpenAI).Request(in, testTarget, &out); aerr != nil {
			b.Fatal(aerr)
		}
	}
}
