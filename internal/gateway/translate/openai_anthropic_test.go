package translate

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

func TestOpenAIAnthropicRequest(t *testing.T) {
	v := upstreamBody(t, OpenAI, Anthropic, `{"model":"sonnet","temperature":1.7,"stop":"END","max_completion_tokens":7,
		"messages":[
			{"role":"system","content":"be brief"},{"role":"developer","content":[{"type":"text","text":"and kind"}]},
			{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},
			{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
			{"role":"tool","tool_call_id":"c1","content":"ok"},{"role":"user","content":"and?"}],
		"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}`, testTarget)
	if v["model"] != "upstream-id" || jsonPath(v, "metadata", "user_id") != "u@example.com" || v["temperature"] != 1.0 || v["max_tokens"] != 7.0 ||
		jsonPath(v, "stop_sequences", 0) != "END" || jsonPath(v, "system", 1, "text") != "and kind" {
		t.Errorf("upstream body %v", v)
	}
	msgs := v["messages"].([]any)
	// The tool result and the next user text share one user turn, tool result first.
	if len(msgs) != 3 || jsonPath(msgs, 0, "content", 1, "source", "url") != "https://example.com/a.png" ||
		jsonPath(msgs, 1, "content", 0, "input", "a") != 1.0 || jsonPath(msgs, 2, "content", 0, "type") != "tool_result" || jsonPath(msgs, 2, "content", 1, "text") != "and?" {
		t.Errorf("messages %v", msgs)
	}
	if jsonPath(v, "tool_choice", "type") != "tool" || jsonPath(v, "tool_choice", "disable_parallel_tool_use") != true || jsonPath(v, "tools", 0, "input_schema", "type") != "object" {
		t.Errorf("tools %v %v", v["tools"], v["tool_choice"])
	}
	// max_tokens is required by the Messages API: the model's limit when the caller set none.
	if v := upstreamBody(t, OpenAI, Anthropic, `{"messages":[{"role":"user","content":"hi"}]}`, testTarget); v["max_tokens"] != 321.0 {
		t.Errorf("default max_tokens %v", v["max_tokens"])
	}
}

func TestOpenAIAnthropicRefuses(t *testing.T) {
	for _, body := range []string{
		`{"messages":[],"n":2}`,
		`{"messages":[],"response_format":{"type":"json_object"}}`,
		`{"messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`,
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}`,
		`{"messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"[1]"}}]}]}`,
		`{"messages":[],"tools":[{"type":"code_interpreter"}]}`,
		`{"messages":[],"stop":{"a":1}}`,
	} {
		if e := refused(t, OpenAI, Anthropic, body); e.Status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, e.Status, e.Msg)
		}
	}
}

func TestOpenAIAnthropicResponse(t *testing.T) {
	body := `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"hi"},{"type":"tool_use","id":"t","name":"f","input":{"a":1}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":2,"cache_creation_input_tokens":1}}`
	var out bytes.Buffer
	u, err := openaiAnthropic{}.Response([]byte(body), &out)
	if err != nil {
		t.Fatal(err)
	}
	var c openaiCompletion
	if err := json.Unmarshal(out.Bytes(), &c); err != nil {
		t.Fatal(err)
	}
	ch := c.Choices[0]
	if c.Object != "chat.completion" || *ch.Message.Content != "hi" || ch.Message.ToolCalls[0].Function.Arguments != `{"a":1}` || ch.FinishReason != "tool_calls" {
		t.Errorf("completion %s", out.Bytes())
	}
	// prompt_tokens counts cached tokens, as OpenAI's does.
	if u != (metering.Usage{Input: 3, Output: 4, CacheRead: 2, CacheWrite: 1}) || c.Usage.PromptTokens != 6 || c.Usage.PromptTokensDetails.CachedTokens != 2 {
		t.Errorf("usage %+v, reported %+v", u, c.Usage)
	}
}

func TestOpenAIAnthropicStream(t *testing.T) {
	st := openaiAnthropic{}.Stream(withUsage(true))
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
	if u := st.Usage(); u != (metering.Usage{Input: 5, Output: 7, CacheRead: 2}) {
		t.Errorf("metered %+v", u)
	}
}
