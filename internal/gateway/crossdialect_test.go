package gateway_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// lastBody decodes the last request a simulator received.
func lastBody(t *testing.T, s *providersim.Server, v any) {
	t.Helper()
	r, ok := s.LastRequest()
	if !ok {
		t.Fatal("no upstream request")
	}
	if err := r.JSON(v); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAIFrontAnthropicProvider: tool calls, tool results, multi-turn
// history, images and stop reasons through openai_anthropic.go.
func TestOpenAIFrontAnthropicProvider(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	client := e.openaiClient(alice)
	weather := openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name: "get_weather", Description: openai.String("Current weather"),
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}},
	})
	params := openai.ChatCompletionNewParams{
		Model:    "sonnet",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("weather in Oslo? [[tool]]")},
		Tools:    []openai.ChatCompletionToolUnionParam{weather},
	}
	cc, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	msg := cc.Choices[0].Message
	if cc.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "get_weather" || !jsonEq(msg.ToolCalls[0].Function.Arguments, `{"city":"simulated"}`) {
		t.Fatalf("tool call not translated: finish %q, %+v", cc.Choices[0].FinishReason, msg.ToolCalls)
	}

	s := client.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if tc := acc.Choices[0].Message.ToolCalls; len(tc) != 1 || !jsonEq(tc[0].Function.Arguments, `{"city":"simulated"}`) || tc[0].ID == "" || acc.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("streamed tool call: %+v, finish %q", tc, acc.Choices[0].FinishReason)
	}

	// Second turn: the tool result, plus an image by data URL and by URL.
	params.Messages = append(params.Messages, msg.ToParam(), openai.ToolMessage("sunny", msg.ToolCalls[0].ID),
		openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
			openai.TextContentPart("and these?"),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "https://example.com/cat.jpg"}),
		}))
	params.MaxCompletionTokens = openai.Int(3)
	cc, err = client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if cc.Choices[0].FinishReason != "length" {
		t.Errorf("max_tokens stop → finish_reason %q, want length", cc.Choices[0].FinishReason)
	}
	var sent struct {
		System    []map[string]any `json:"system"`
		MaxTokens int              `json:"max_tokens"`
		Messages  []struct {
			Role    string `json:"role"`
			Content []struct {
				Type      string          `json:"type"`
				Text      string          `json:"text"`
				ID        string          `json:"id"`
				Name      string          `json:"name"`
				Input     json.RawMessage `json:"input"`
				ToolUseID string          `json:"tool_use_id"`
				Source    map[string]any  `json:"source"`
				Content   []map[string]any
			} `json:"content"`
		} `json:"messages"`
	}
	lastBody(t, e.anth, &sent)
	if len(sent.System) != 1 || sent.System[0]["text"] != "be brief" || sent.MaxTokens != 3 {
		t.Errorf("system %v, max_tokens %d", sent.System, sent.MaxTokens)
	}
	if len(sent.Messages) != 3 {
		t.Fatalf("want user, assistant, user; got %d messages", len(sent.Messages))
	}
	asst, user := sent.Messages[1], sent.Messages[2]
	if asst.Role != "assistant" || asst.Content[len(asst.Content)-1].Type != "tool_use" || asst.Content[len(asst.Content)-1].ID != msg.ToolCalls[0].ID {
		t.Errorf("assistant turn: %+v", asst)
	}
	if user.Role != "user" || len(user.Content) != 4 ||
		user.Content[0].Type != "tool_result" || user.Content[0].ToolUseID != msg.ToolCalls[0].ID ||
		user.Content[2].Source["type"] != "base64" || user.Content[2].Source["media_type"] != "image/png" ||
		user.Content[3].Source["type"] != "url" || user.Content[3].Source["url"] != "https://example.com/cat.jpg" {
		t.Errorf("user turn (tool result first, then text and images): %+v", user)
	}
}

// TestAnthropicFrontOpenAIProvider: the same through anthropic_openai.go.
func TestAnthropicFrontOpenAIProvider(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	client := e.anthropicClient(alice)
	params := anthropic.MessageNewParams{
		Model: "gpt", MaxTokens: 200,
		System:   []anthropic.TextBlockParam{{Text: "be brief"}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather in Oslo? [[tool]]"))},
		Tools: []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{
			Name: "get_weather", InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}},
		}}},
	}
	msg, err := client.Messages.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if msg.StopReason != anthropic.StopReasonToolUse || len(msg.Content) != 1 || msg.Content[0].Type != "tool_use" || !jsonEq(string(msg.Content[0].Input), `{"city":"simulated"}`) {
		t.Fatalf("tool use not translated: %s", msg.RawJSON())
	}
	s := client.Messages.NewStreaming(ctx, params)
	var acc anthropic.Message
	for s.Next() {
		if err := acc.Accumulate(s.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.StopReason != anthropic.StopReasonToolUse || len(acc.Content) != 1 || acc.Content[0].Name != "get_weather" || !jsonEq(string(acc.Content[0].Input), `{"city":"simulated"}`) {
		t.Fatalf("streamed tool use: %s", acc.RawJSON())
	}

	params.Messages = append(params.Messages, msg.ToParam(), anthropic.NewUserMessage(
		anthropic.NewToolResultBlock(msg.Content[0].ID, "sunny", false),
		anthropic.NewTextBlock("and this?"),
		anthropic.NewImageBlockBase64("image/png", "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="),
	))
	params.MaxTokens = 3
	msg, err = client.Messages.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if msg.StopReason != anthropic.StopReasonMaxTokens {
		t.Errorf("finish_reason length → stop_reason %q, want max_tokens", msg.StopReason)
	}
	var sent struct {
		MaxTokens int `json:"max_tokens"`
		Messages  []struct {
			Role       string          `json:"role"`
			Content    json.RawMessage `json:"content"`
			ToolCallID string          `json:"tool_call_id"`
			ToolCalls  []struct {
				ID       string `json:"id"`
				Function struct {
					Name, Arguments string
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"messages"`
	}
	lastBody(t, e.oai, &sent)
	roles := []string{}
	for _, m := range sent.Messages {
		roles = append(roles, m.Role)
	}
	if len(roles) != 5 || roles[0] != "system" || roles[2] != "assistant" || roles[3] != "tool" || roles[4] != "user" || sent.MaxTokens != 3 {
		t.Fatalf("roles %v, max_tokens %d", roles, sent.MaxTokens)
	}
	if tc := sent.Messages[2].ToolCalls; len(tc) != 1 || tc[0].ID == "" || tc[0].Function.Name != "get_weather" {
		t.Errorf("assistant tool calls %+v", tc)
	}
	if sent.Messages[3].ToolCallID == "" || string(sent.Messages[3].Content) != `"sunny"` {
		t.Errorf("tool message %+v", sent.Messages[3])
	}
	var parts []map[string]any
	_ = json.Unmarshal(sent.Messages[4].Content, &parts)
	if len(parts) != 2 || parts[1]["type"] != "image_url" || parts[1]["image_url"].(map[string]any)["url"] != "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==" {
		t.Errorf("user parts %v", parts)
	}
}

// TestRequestHandling: defaults, limits and errors that are the gateway's own.
func TestRequestHandling(t *testing.T) {
	e := newEnv(t, func(c *gatewayconfig.Config) { c.MaxRequestBodyBytes = 4096 })
	t.Run("default model", func(t *testing.T) {
		resp, body := e.do("POST", "/v1/chat/completions", authHeader(alice), `{"messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		var sent struct {
			Model     string `json:"model"`
			MaxTokens int    `json:"max_tokens"`
		}
		lastBody(t, e.anth, &sent)
		if sent.Model != sonnetID || sent.MaxTokens != 8192 {
			t.Errorf("upstream got model %q max_tokens %d", sent.Model, sent.MaxTokens)
		}
	})
	t.Run("provider model id accepted", func(t *testing.T) {
		resp, body := e.do("POST", "/v1/messages", authHeader(alice), `{"model":"`+sonnetID+`","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("unknown model", func(t *testing.T) {
		resp, body := e.do("POST", "/v1/messages", authHeader(alice), `{"model":"gpt-5","max_tokens":5,"messages":[]}`)
		if resp.StatusCode != 404 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		assertErrorDialect(t, "/v1/messages", body, "use one of both, gpt, sonnet")
	})
	t.Run("body too large", func(t *testing.T) {
		big := `{"model":"gpt","messages":[{"role":"user","content":"` + string(make([]byte, 5000)) + `"}]}`
		resp, body := e.do("POST", "/v1/chat/completions", authHeader(alice), big)
		if resp.StatusCode != 413 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		assertErrorDialect(t, "/v1/chat/completions", body, "4096 bytes")
	})
	t.Run("not JSON", func(t *testing.T) {
		resp, body := e.do("POST", "/v1/messages", authHeader(alice), `{"model":`)
		if resp.StatusCode != 400 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		assertErrorDialect(t, "/v1/messages", body, "JSON object")
	})
	t.Run("models list", func(t *testing.T) {
		oai := e.openaiClient(alice)
		page, err := oai.Models.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range page.Data {
			ids = append(ids, m.ID)
		}
		if len(ids) != 3 || ids[0] != "both" || ids[2] != "sonnet" {
			t.Errorf("models %v", ids)
		}
		ac := e.anthropicClient(alice)
		apage, err := ac.Models.List(context.Background(), anthropic.ModelListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(apage.Data) != 3 || apage.Data[1].ID != "gpt" {
			t.Errorf("anthropic models %+v", apage.Data)
		}
	})
}

// jsonEq compares JSON texts by value: providers differ in whitespace.
func jsonEq(a, b string) bool {
	var va, vb any
	if json.Unmarshal([]byte(a), &va) != nil || json.Unmarshal([]byte(b), &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
