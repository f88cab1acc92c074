package translate

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

func TestAnthropicOpenAIRequest(t *testing.T) {
	v := upstreamBody(t, Anthropic, OpenAI, `{"model":"gpt","max_tokens":0,"stream":true,"stop_sequences":["END"],
		"system":[{"type":"text","text":"be brief"}],
		"messages":[
			{"role":"user","content":[{"type":"text","text":"look"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]},
			{"role":"assistant","content":[{"type":"thinking","thinking":"hm"},{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},
			{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok","is_error":true},{"type":"text","text":"and?"}]}],
		"tools":[{"name":"f","input_schema":{"type":"object"}}],
		"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`, testTarget)
	want := map[string]any{
		"model": "upstream-id", "user": "u@example.com", "max_tokens": 321.0, "stream": true,
		"stop": []any{"END"}, "tool_choice": "required", "parallel_tool_calls": false,
		"stream_options": map[string]any{"include_usage": true},
	}
	for k, w := range want {
		if g, _ := json.Marshal(v[k]); string(g) != string(must(json.Marshal(w))) {
			t.Errorf("%s = %s, want %v", k, g, w)
		}
	}
	msgs, _ := v["messages"].([]any)
	roles := []string{}
	for _, m := range msgs {
		roles = append(roles, jsonPath(m, "role").(string))
	}
	if strings.Join(roles, " ") != "system user assistant tool user" {
		t.Fatalf("roles %v in %v", roles, msgs)
	}
	if jsonPath(msgs, 1, "content", 1, "image_url", "url") != "data:image/png;base64,AA==" ||
		jsonPath(msgs, 2, "tool_calls", 0, "function", "arguments") != `{"a":1}` ||
		jsonPath(msgs, 3, "content") != "Error: ok" || jsonPath(msgs, 4, "content") != "and?" {
		t.Errorf("messages %v", msgs)
	}
}

func TestAnthropicOpenAIRefuses(t *testing.T) {
	for _, body := range []string{
		`{"model":"m","max_tokens":5,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`,
		`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","data":"x"}}]}]}`,
		`{"model":"m","max_tokens":5,"messages":[],"tool_choice":{"type":"sometimes"}}`,
		`{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]}`,
	} {
		if e := refused(t, Anthropic, OpenAI, body); e.Status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, e.Status, e.Msg)
		}
	}
}

func TestAnthropicOpenAIResponse(t *testing.T) {
	body := `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","tool_calls":[{"id":"x","type":"function","function":{"name":"f","arguments":"not json"}}]},"finish_reason":"length"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":4}}}`
	var out bytes.Buffer
	u, err := anthropicOpenAI{}.Response([]byte(body), &out)
	if err != nil {
		t.Fatal(err)
	}
	var m anthropicResponse
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "message" || len(m.Content) != 2 || m.Content[0].Text != "hi" || string(m.Content[1].Input) != "{}" || *m.StopReason != "max_tokens" {
		t.Errorf("message %s", out.Bytes())
	}
	if u != (metering.Usage{Input: 6, Output: 2, CacheRead: 4}) || m.Usage.InputTokens != 6 || m.Usage.CacheReadInputTokens != 4 {
		t.Errorf("usage %+v, reported %+v", u, m.Usage)
	}
}

func TestAnthropicOpenAIStream(t *testing.T) {
	st := anthropicOpenAI{}.Stream(&Request{})
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
	if u := st.Usage(); u != (metering.Usage{Input: 5, Output: 3, CacheRead: 4}) {
		t.Errorf("metered %+v", u)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
