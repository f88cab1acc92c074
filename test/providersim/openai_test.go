package providersim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

const gptModel = "gpt-4o-mini"

func openaiClient(url string, opts ...option.RequestOption) openai.Client {
	base := []option.RequestOption{option.WithBaseURL(url + "/v1/"), option.WithAPIKey(testKey), option.WithMaxRetries(0)}
	return openai.NewClient(append(base, opts...)...)
}

// collectOpenAI drains a stream through the SDK's accumulator.
func collectOpenAI(t *testing.T, client openai.Client, ctx context.Context, params openai.ChatCompletionNewParams) (openai.ChatCompletionAccumulator, []openai.ChatCompletionChunk, error) {
	t.Helper()
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	var chunks []openai.ChatCompletionChunk
	for stream.Next() {
		chunk := stream.Current()
		if !acc.AddChunk(chunk) {
			t.Fatalf("accumulator rejected chunk %s", chunk.RawJSON())
		}
		chunks = append(chunks, chunk)
	}
	return acc, chunks, stream.Err()
}

func asOpenAIError(t *testing.T, err error) *openai.Error {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not an *openai.Error", err, err)
	}
	return apiErr
}

func TestOpenAINonStreaming(t *testing.T) {
	sim, url := providersim.Start(t, providersim.Options{APIKey: testKey})
	client := openaiClient(url)
	var raw *http.Response
	cc, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    gptModel,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("Hello there simulator")},
		User:     openai.String("user-42"),
	}, option.WithResponseInto(&raw))
	if err != nil {
		t.Fatal(err)
	}
	want := "Simulated reply from " + gptModel + " to 5 input tokens."
	if cc.Object != "chat.completion" || len(cc.Choices) != 1 || cc.Choices[0].Message.Content != want || cc.Choices[0].FinishReason != "stop" {
		t.Fatalf("completion %s", cc.RawJSON())
	}
	if u := cc.Usage; u.PromptTokens != 5 || u.CompletionTokens != 8 || u.TotalTokens != 13 || u.PromptTokensDetails.CachedTokens != 0 {
		t.Errorf("usage %+v", u)
	}
	if !strings.HasPrefix(cc.ID, "chatcmpl-") || raw.Header.Get("x-request-id") == "" {
		t.Errorf("id %q request id %q", cc.ID, raw.Header.Get("x-request-id"))
	}
	rec, _ := sim.LastRequest()
	var body struct {
		User string `json:"user"`
	}
	if err := rec.JSON(&body); err != nil || body.User != "user-42" || rec.Header.Get("Authorization") != "Bearer "+testKey {
		t.Errorf("recorded user %q auth %q (%v)", body.User, rec.Header.Get("Authorization"), err)
	}
}

func TestOpenAIStreaming(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{ReplyWords: 10, Chunks: 3})
	client := openaiClient(url)
	params := openai.ChatCompletionNewParams{
		Model:    gptModel,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("one two three")},
	}
	nonStream, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("without usage", func(t *testing.T) {
		acc, chunks, err := collectOpenAI(t, client, context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		// role, 3 content, finish.
		if len(chunks) != 5 {
			t.Errorf("%d chunks", len(chunks))
		}
		for _, c := range chunks {
			if c.JSON.Usage.Valid() || strings.Contains(c.RawJSON(), `"usage"`) {
				t.Errorf("chunk carries usage without include_usage: %s", c.RawJSON())
			}
		}
		if acc.Choices[0].Message.Content != nonStream.Choices[0].Message.Content || acc.Choices[0].FinishReason != "stop" {
			t.Errorf("accumulated %q finish %q", acc.Choices[0].Message.Content, acc.Choices[0].FinishReason)
		}
		if acc.Usage.TotalTokens != 0 {
			t.Errorf("usage without include_usage: %+v", acc.Usage)
		}
	})
	t.Run("include_usage", func(t *testing.T) {
		p := params
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		acc, chunks, err := collectOpenAI(t, client, context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		last := chunks[len(chunks)-1]
		if len(last.Choices) != 0 || last.Usage.TotalTokens != nonStream.Usage.TotalTokens {
			t.Errorf("last chunk %s", last.RawJSON())
		}
		for _, c := range chunks[:len(chunks)-1] {
			if !strings.Contains(c.RawJSON(), `"usage":null`) {
				t.Errorf("chunk without usage null: %s", c.RawJSON())
			}
		}
		if acc.Usage.PromptTokens != 3 || acc.Usage.CompletionTokens != 10 || acc.Usage.TotalTokens != 13 {
			t.Errorf("accumulated usage %+v", acc.Usage)
		}
		if !strings.HasPrefix(acc.ID, "chatcmpl-sim") || acc.Model != gptModel {
			t.Errorf("id %q model %q", acc.ID, acc.Model)
		}
	})
}

// TestOpenAIWireFormat checks the framing the SDK hides: data-only events
// and the [DONE] sentinel.
func TestOpenAIWireFormat(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{Chunks: 2})
	res, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(
		`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	events := readSSE(t, res)
	// role, 2 content, finish, usage, [DONE]
	if len(events) != 6 || events[5].data != "[DONE]" {
		t.Fatalf("events %+v", events)
	}
	for _, ev := range events {
		if ev.event != "" {
			t.Errorf("OpenAI events are unnamed, got %q", ev.event)
		}
	}
	var usage struct {
		Choices []any          `json:"choices"`
		Usage   map[string]any `json:"usage"`
	}
	if err := json.Unmarshal([]byte(events[4].data), &usage); err != nil || usage.Choices == nil || len(usage.Choices) != 0 || usage.Usage["total_tokens"] != 9.0 {
		t.Errorf("usage chunk %s", events[4].data)
	}
}

func TestOpenAIToolCalls(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{Chunks: 3})
	client := openaiClient(url)
	params := openai.ChatCompletionNewParams{
		Model: gptModel,
		Tools: []openai.ChatCompletionToolUnionParam{
			openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "lookup", Parameters: shared.FunctionParameters{
				"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string"}},
			}}),
			openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "get_weather", Parameters: shared.FunctionParameters{
				"type":       "object",
				"properties": map[string]any{"city": map[string]any{"type": "string"}, "metric": map[string]any{"type": "boolean"}},
			}}),
		},
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("weather please [[tool:get_weather]]")},
	}
	const wantArgs = `{"city": "simulated", "metric": true}`
	cc, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	msg := cc.Choices[0].Message
	if cc.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 || msg.Content != "" {
		t.Fatalf("completion %s", cc.RawJSON())
	}
	tc := msg.ToolCalls[0]
	if tc.Function.Name != "get_weather" || tc.Function.Arguments != wantArgs || !strings.HasPrefix(tc.ID, "call_") || tc.Type != "function" {
		t.Errorf("tool call %s", tc.RawJSON())
	}
	if cc.Usage.CompletionTokens != 4 {
		t.Errorf("completion tokens %d, want 4", cc.Usage.CompletionTokens)
	}

	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	var finished []openai.FinishedChatCompletionToolCall
	argChunks := 0
	for stream.Next() {
		chunk := stream.Current()
		acc.AddChunk(chunk)
		if len(chunk.Choices) > 0 && len(chunk.Choices[0].Delta.ToolCalls) > 0 && chunk.Choices[0].Delta.ToolCalls[0].Function.Arguments != "" {
			argChunks++
		}
		if ftc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, ftc)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if argChunks != 3 || len(finished) != 1 || finished[0].Name != "get_weather" || finished[0].Arguments != wantArgs || finished[0].ID != acc.Choices[0].Message.ToolCalls[0].ID {
		t.Errorf("streamed %d argument chunks, finished %+v", argChunks, finished)
	}
	if acc.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("finish %q", acc.Choices[0].FinishReason)
	}

	// Sending the tool result back ends with a text answer.
	params.Messages = append(params.Messages, msg.ToParam(), openai.ToolMessage("sunny", tc.ID))
	final, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if final.Choices[0].FinishReason != "stop" || final.Choices[0].Message.Content == "" {
		t.Errorf("after tool result %s", final.RawJSON())
	}

	// tool_choice "none" suppresses the call even with the marker.
	params.Messages = params.Messages[:1]
	params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("none")}
	none, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if none.Choices[0].FinishReason != "stop" {
		t.Errorf("tool_choice none: %s", none.RawJSON())
	}
}

func TestOpenAILimits(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{ReplyWords: 20})
	client := openaiClient(url)
	params := openai.ChatCompletionNewParams{
		Model:               gptModel,
		MaxCompletionTokens: openai.Int(4),
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	}
	cc, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if cc.Choices[0].FinishReason != "length" || cc.Usage.CompletionTokens != 4 || cc.Choices[0].Message.Content != "Simulated reply from "+gptModel {
		t.Errorf("max_completion_tokens: %s", cc.RawJSON())
	}
	acc, _, err := collectOpenAI(t, client, context.Background(), params)
	if err != nil || acc.Choices[0].FinishReason != "length" || acc.Choices[0].Message.Content != cc.Choices[0].Message.Content {
		t.Errorf("streamed max tokens: %v %+v", err, acc.Choices)
	}

	params.MaxCompletionTokens = param.Opt[int64]{}
	params.MaxTokens = openai.Int(2) // the deprecated name still works
	params.Stop = openai.ChatCompletionNewParamsStopUnion{OfString: openai.String("reply")}
	cc, err = client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if cc.Choices[0].FinishReason != "stop" || cc.Choices[0].Message.Content != "Simulated " {
		t.Errorf("stop: %s", cc.RawJSON())
	}
}

func TestOpenAICachedTokens(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{OpenAICacheMinTokens: 5})
	client := openaiClient(url)
	system := openai.SystemMessage("a shared system prompt of eight words")
	ask := func(q string) openai.CompletionUsage {
		t.Helper()
		cc, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model:    gptModel,
			Messages: []openai.ChatCompletionMessageParamUnion{system, openai.UserMessage(q)},
		})
		if err != nil {
			t.Fatal(err)
		}
		return cc.Usage
	}
	if u := ask("first"); u.PromptTokensDetails.CachedTokens != 0 || u.PromptTokens != 8 {
		t.Errorf("first %+v", u)
	}
	if u := ask("second one"); u.PromptTokensDetails.CachedTokens != 7 || u.PromptTokens != 9 {
		t.Errorf("second %+v, want the 7-word system prompt cached", u)
	}
	if u := ask("second one"); u.PromptTokensDetails.CachedTokens != 9 {
		t.Errorf("repeat %+v, want all 9 cached", u)
	}
}

func TestOpenAIErrors(t *testing.T) {
	sim, url := providersim.Start(t, providersim.Options{APIKey: testKey, Models: []string{gptModel}})
	client := openaiClient(url)
	params := openai.ChatCompletionNewParams{Model: gptModel, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	withText := func(text string) openai.ChatCompletionNewParams {
		p := params
		p.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)}
		return p
	}
	ctx := context.Background()
	tests := []struct {
		name       string
		queue      *providersim.Fault
		client     openai.Client
		params     openai.ChatCompletionNewParams
		status     int
		typ, code  string
		retryAfter string
	}{
		{name: "queued 429", queue: &providersim.Fault{Status: 429, RetryAfter: "3"}, client: client, params: params, status: 429, typ: "requests", code: "rate_limit_exceeded", retryAfter: "3"},
		{name: "queued overloaded", queue: &providersim.Fault{Overloaded: true}, client: client, params: params, status: 503, typ: "server_error"},
		{name: "marker 500", client: client, params: withText("[[fault:500]]"), status: 500, typ: "server_error"},
		{name: "marker 429", client: client, params: withText("x [[fault:status=429,retry-after=1]]"), status: 429, typ: "requests", code: "rate_limit_exceeded", retryAfter: "1"},
		{name: "wrong key", client: openaiClient(url, option.WithAPIKey("sk-wrong-key-123")), params: params, status: 401, typ: "invalid_request_error", code: "invalid_api_key"},
		{name: "unknown model", client: client, params: openai.ChatCompletionNewParams{Model: "gpt-nope", Messages: params.Messages}, status: 404, typ: "invalid_request_error", code: "model_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, stream := range []bool{false, true} {
				if tt.queue != nil {
					sim.Enqueue(*tt.queue)
				}
				var err error
				if stream {
					_, _, err = collectOpenAI(t, tt.client, ctx, tt.params)
				} else {
					_, err = tt.client.Chat.Completions.New(ctx, tt.params)
				}
				apiErr := asOpenAIError(t, err)
				if apiErr.StatusCode != tt.status || apiErr.Type != tt.typ || apiErr.Code != tt.code || apiErr.Message == "" {
					t.Errorf("stream=%v: %d type %q code %q msg %q; want %d %q %q", stream, apiErr.StatusCode, apiErr.Type, apiErr.Code, apiErr.Message, tt.status, tt.typ, tt.code)
				}
				if got := apiErr.Response.Header.Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("stream=%v: Retry-After %q, want %q", stream, got, tt.retryAfter)
				}
			}
		})
	}
}

func TestOpenAIStreamFaults(t *testing.T) {
	sim, url := providersim.Start(t, providersim.Options{Chunks: 4})
	client := openaiClient(url)
	params := openai.ChatCompletionNewParams{Model: gptModel, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	ctx := context.Background()

	t.Run("reset mid-stream", func(t *testing.T) {
		sim.Enqueue(providersim.Fault{ResetAfterEvents: 3})
		_, chunks, err := collectOpenAI(t, client, ctx, params)
		var apiErr *openai.Error
		if err == nil || errors.As(err, &apiErr) || len(chunks) != 3 {
			t.Errorf("got %v after %d chunks", err, len(chunks))
		}
	})
	t.Run("error mid-stream", func(t *testing.T) {
		sim.Enqueue(providersim.Fault{ErrorAfterEvents: 2, Status: 500})
		_, chunks, err := collectOpenAI(t, client, ctx, params)
		var streamErr *ssestream.StreamError
		if !errors.As(err, &streamErr) || !strings.Contains(streamErr.Message, "server_error") || len(chunks) != 2 {
			t.Errorf("got %v after %d chunks", err, len(chunks))
		}
	})
	t.Run("malformed stream", func(t *testing.T) {
		sim.Enqueue(providersim.Fault{Malformed: true})
		_, chunks, err := collectOpenAI(t, client, ctx, params)
		if err == nil || len(chunks) != 1 {
			t.Errorf("got %v after %d chunks", err, len(chunks))
		}
	})
	t.Run("malformed body", func(t *testing.T) {
		p := params
		p.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage("[[fault:malformed]]")}
		_, err := client.Chat.Completions.New(ctx, p)
		var apiErr *openai.Error
		if err == nil || errors.As(err, &apiErr) {
			t.Errorf("want a decode error, got %v", err)
		}
	})
	t.Run("hang until cancel", func(t *testing.T) {
		sim.Enqueue(providersim.Fault{HangUntilCancel: true})
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := client.Chat.Completions.New(cctx, params)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("provider scoped", func(t *testing.T) {
		// An Anthropic-only fault is left for the Anthropic route.
		sim.Enqueue(providersim.Fault{Provider: providersim.ProviderAnthropic, Overloaded: true})
		if _, err := client.Chat.Completions.New(ctx, params); err != nil {
			t.Fatal(err)
		}
		if sim.Queued() != 1 {
			t.Errorf("queued %d, want 1", sim.Queued())
		}
		p := params
		p.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage("[[fault:provider=anthropic,529]]")}
		if _, err := client.Chat.Completions.New(ctx, p); err != nil {
			t.Errorf("anthropic-only marker fired on the OpenAI route: %v", err)
		}
		sim.Reset()
	})
}
