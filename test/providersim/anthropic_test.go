package providersim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

const (
	testKey     = "sk-test-0123456789abcdef"
	claudeModel = "claude-sonnet-4-5-20250929"
)

func anthropicClient(url string, opts ...option.RequestOption) anthropic.Client {
	base := []option.RequestOption{option.WithBaseURL(url), option.WithAPIKey(testKey), option.WithMaxRetries(0)}
	return anthropic.NewClient(append(base, opts...)...)
}

func userMsg(text string) anthropic.MessageParam {
	return anthropic.NewUserMessage(anthropic.NewTextBlock(text))
}

// collectAnthropic drains a stream into an accumulated message and the
// event types seen.
func collectAnthropic(t *testing.T, client anthropic.Client, ctx context.Context, params anthropic.MessageNewParams) (anthropic.Message, []string, error) {
	t.Helper()
	stream := client.Messages.NewStreaming(ctx, params)
	defer stream.Close()
	var msg anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if err := msg.Accumulate(ev); err != nil {
			t.Fatalf("Accumulate(%s): %v", ev.Type, err)
		}
	}
	return msg, types, stream.Err()
}

func asAnthropicError(t *testing.T, err error) *anthropic.Error {
	t.Helper()
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not an *anthropic.Error", err, err)
	}
	return apiErr
}

func TestAnthropicNonStreaming(t *testing.T) {
	sim, url := providersim.Start(t, providersim.Options{APIKey: testKey})
	client := anthropicClient(url)

	var raw *http.Response
	msg, err := client.Messages.New(context.Background(), anthropic.MessageNewParams{
		Model:     claudeModel,
		MaxTokens: 256,
		System:    []anthropic.TextBlockParam{{Text: "You are terse."}},
		Messages:  []anthropic.MessageParam{userMsg("Hello there simulator")},
		Metadata:  anthropic.MetadataParam{UserID: anthropic.String("user-42")},
	}, option.WithResponseInto(&raw))
	if err != nil {
		t.Fatal(err)
	}
	want := "Simulated reply from " + claudeModel + " to 6 input tokens."
	if len(msg.Content) != 1 || msg.Content[0].Type != "text" || msg.Content[0].Text != want {
		t.Fatalf("content = %+v, want one text block %q", msg.Content, want)
	}
	if msg.StopReason != anthropic.StopReasonEndTurn || msg.Model != claudeModel || !strings.HasPrefix(msg.ID, "msg_") {
		t.Errorf("stop_reason=%q model=%q id=%q", msg.StopReason, msg.Model, msg.ID)
	}
	if msg.Usage.InputTokens != 6 || msg.Usage.OutputTokens != 8 || msg.Usage.CacheReadInputTokens != 0 || msg.Usage.CacheCreationInputTokens != 0 {
		t.Errorf("usage = %+v, want input 6 output 8", msg.Usage)
	}
	if raw.Header.Get("request-id") == "" {
		t.Error("no request-id header")
	}

	rec, ok := sim.LastRequest()
	if !ok || rec.Path != "/v1/messages" || rec.Header.Get("Authorization") != "Bearer "+testKey || rec.Header.Get("anthropic-version") == "" {
		t.Fatalf("recorded %+v", rec)
	}
	var body struct {
		Metadata struct {
			UserID string `json:"user_id"`
		} `json:"metadata"`
	}
	if err := rec.JSON(&body); err != nil || body.Metadata.UserID != "user-42" {
		t.Errorf("recorded metadata.user_id = %q (%v)", body.Metadata.UserID, err)
	}
	if sim.Served() != 1 {
		t.Errorf("Served() = %d, want 1", sim.Served())
	}
}

func TestAnthropicStreaming(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{APIKey: testKey, ReplyWords: 12, Chunks: 3})
	client := anthropicClient(url)
	params := anthropic.MessageNewParams{
		Model:     claudeModel,
		MaxTokens: 256,
		Messages:  []anthropic.MessageParam{userMsg("one two three four")},
	}
	msg, types, err := collectAnthropic(t, client, context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := "message_start content_block_start content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(types, " "); got != wantTypes {
		t.Errorf("events:\n got %s\nwant %s", got, wantTypes)
	}
	nonStream, err := client.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[0].Text != nonStream.Content[0].Text || len(strings.Fields(msg.Content[0].Text)) != 12 {
		t.Errorf("streamed text %q, non-streamed %q", msg.Content[0].Text, nonStream.Content[0].Text)
	}
	if msg.Usage.InputTokens != 4 || msg.Usage.OutputTokens != 12 || msg.StopReason != anthropic.StopReasonEndTurn {
		t.Errorf("accumulated usage %+v stop %q", msg.Usage, msg.StopReason)
	}
}

// TestAnthropicWireFormat checks what the SDK hides: SSE framing, the ping,
// and the message_start placeholder usage.
func TestAnthropicWireFormat(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{Chunks: 2})
	req, _ := http.NewRequest("POST", url+"/v1/messages", strings.NewReader(
		`{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("anthropic-version", "2023-06-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	events := readSSE(t, res)
	if len(events) != 8 {
		t.Fatalf("got %d events: %+v", len(events), events)
	}
	for _, ev := range events {
		var data struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(ev.data), &data); err != nil || data.Type != ev.event {
			t.Errorf("event %q carries type %q (%v)", ev.event, data.Type, err)
		}
	}
	if events[2].event != "ping" {
		t.Errorf("third event %q, want ping", events[2].event)
	}
	var start struct {
		Message struct {
			Content    []any           `json:"content"`
			StopReason *string         `json:"stop_reason"`
			Usage      map[string]any  `json:"usage"`
			Extra      json.RawMessage `json:"stop_sequence"`
		} `json:"message"`
	}
	_ = json.Unmarshal([]byte(events[0].data), &start)
	if start.Message.StopReason != nil || len(start.Message.Content) != 0 || start.Message.Usage["output_tokens"] != 1.0 || start.Message.Usage["input_tokens"] != 1.0 {
		t.Errorf("message_start = %s", events[0].data)
	}
	if !strings.Contains(events[6].data, `"output_tokens":8`) || !strings.Contains(events[6].data, `"stop_reason":"end_turn"`) {
		t.Errorf("message_delta = %s", events[6].data)
	}
}

func TestAnthropicToolUse(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{APIKey: testKey, Chunks: 3})
	client := anthropicClient(url)
	tools := []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{
		Name: "get_weather",
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{
			"city": map[string]any{"type": "string"},
			"days": map[string]any{"type": "integer"},
		}},
	}}}
	params := anthropic.MessageNewParams{
		Model:     claudeModel,
		MaxTokens: 256,
		Tools:     tools,
		Messages:  []anthropic.MessageParam{userMsg("What is the weather? [[tool]]")},
	}
	// Arguments {"city": "simulated", "days": 1}: 4 words.
	check := func(name string, msg anthropic.Message) {
		t.Helper()
		if msg.StopReason != anthropic.StopReasonToolUse || len(msg.Content) != 2 {
			t.Fatalf("%s: stop %q content %+v", name, msg.StopReason, msg.Content)
		}
		if msg.Content[0].Text != "Calling tool get_weather." {
			t.Errorf("%s: preamble %q", name, msg.Content[0].Text)
		}
		tu := msg.Content[1]
		var args map[string]any
		_ = json.Unmarshal(tu.Input, &args)
		if tu.Type != "tool_use" || tu.Name != "get_weather" || !strings.HasPrefix(tu.ID, "toolu_") || args["city"] != "simulated" || args["days"] != 1.0 || len(args) != 2 {
			t.Errorf("%s: tool_use %+v input %s", name, tu, tu.Input)
		}
		if msg.Usage.OutputTokens != 3+4 {
			t.Errorf("%s: output tokens %d, want 7", name, msg.Usage.OutputTokens)
		}
	}
	msg, err := client.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	check("non-streaming", *msg)
	streamed, types, err := collectAnthropic(t, client, context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	check("streaming", streamed)
	if n := strings.Count(strings.Join(types, " "), "content_block_start"); n != 2 {
		t.Errorf("%d content blocks streamed", n)
	}

	// Answering the tool ends the turn: the marker is no longer in the last user message.
	params.Messages = append(params.Messages, msg.ToParam(),
		anthropic.NewUserMessage(anthropic.NewToolResultBlock(msg.Content[1].ID, "sunny and warm", false)))
	final, err := client.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if final.StopReason != anthropic.StopReasonEndTurn || final.Content[0].Type != "text" {
		t.Errorf("after tool result: stop %q content %+v", final.StopReason, final.Content)
	}
	// Question 5 words + preamble 3 + args as the SDK re-encodes them
	// ({"city":"simulated","days":1}, 1 word) + result 3.
	if final.Usage.InputTokens != 12 {
		t.Errorf("input tokens after tool round trip = %d, want 12", final.Usage.InputTokens)
	}

	// tool_choice naming a tool forces the call without a marker.
	params.Messages = []anthropic.MessageParam{userMsg("no marker here")}
	params.ToolChoice = anthropic.ToolChoiceParamOfTool("get_weather")
	forced, err := client.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	check("forced", *forced)
}

func TestAnthropicMaxTokensAndStopSequences(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{ReplyWords: 20})
	client := anthropicClient(url)
	params := anthropic.MessageNewParams{
		Model:     claudeModel,
		MaxTokens: 5,
		Messages:  []anthropic.MessageParam{userMsg("hi")},
	}
	msg, err := client.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if msg.StopReason != anthropic.StopReasonMaxTokens || msg.Usage.OutputTokens != 5 || msg.Content[0].Text != "Simulated reply from "+claudeModel+" to" {
		t.Errorf("max_tokens: stop %q usage %+v text %q", msg.StopReason, msg.Usage, msg.Content[0].Text)
	}
	streamed, _, err := collectAnthropic(t, client, context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if streamed.StopReason != anthropic.StopReasonMaxTokens || streamed.Content[0].Text != msg.Content[0].Text || streamed.Usage.OutputTokens != 5 {
		t.Errorf("streamed max_tokens: stop %q text %q", streamed.StopReason, streamed.Content[0].Text)
	}

	params.MaxTokens = 100
	params.StopSequences = []string{"from"}
	msg, err = client.Messages.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if msg.StopReason != anthropic.StopReasonStopSequence || msg.StopSequence != "from" || msg.Content[0].Text != "Simulated reply " || msg.Usage.OutputTokens != 2 {
		t.Errorf("stop_sequences: stop %q seq %q text %q usage %+v", msg.StopReason, msg.StopSequence, msg.Content[0].Text, msg.Usage)
	}
}

func TestAnthropicPromptCache(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{})
	client := anthropicClient(url)
	params := func(question string) anthropic.MessageNewParams {
		return anthropic.MessageNewParams{
			Model:     claudeModel,
			MaxTokens: 100,
			System: []anthropic.TextBlockParam{{
				Text:         "a long shared system prompt of ten words in total",
				CacheControl: anthropic.NewCacheControlEphemeralParam(),
			}},
			Messages: []anthropic.MessageParam{userMsg(question)},
		}
	}
	first, err := client.Messages.New(context.Background(), params("first question"))
	if err != nil {
		t.Fatal(err)
	}
	if u := first.Usage; u.CacheCreationInputTokens != 10 || u.CacheReadInputTokens != 0 || u.InputTokens != 2 || u.CacheCreation.Ephemeral5mInputTokens != 10 {
		t.Errorf("first usage %+v, want 10 written, 2 uncached", u)
	}
	second, _, err := collectAnthropic(t, client, context.Background(), params("a different second question"))
	if err != nil {
		t.Fatal(err)
	}
	if u := second.Usage; u.CacheReadInputTokens != 10 || u.CacheCreationInputTokens != 0 || u.InputTokens != 4 {
		t.Errorf("second usage %+v, want 10 read, 4 uncached", u)
	}
	if want := "Simulated reply from " + claudeModel + " to 14 input tokens."; second.Content[0].Text != want {
		t.Errorf("reply %q counts cached tokens as input: want %q", second.Content[0].Text, want)
	}
	// Without cache_control nothing is cached.
	p := params("plain")
	p.System[0].CacheControl = anthropic.CacheControlEphemeralParam{}
	plain, err := client.Messages.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if u := plain.Usage; u.CacheReadInputTokens != 0 || u.CacheCreationInputTokens != 0 || u.InputTokens != 11 {
		t.Errorf("uncached usage %+v", u)
	}
}

func TestAnthropicErrors(t *testing.T) {
	sim, url := providersim.Start(t, providersim.Options{APIKey: testKey, Models: []string{claudeModel}})
	client := anthropicClient(url)
	params := anthropic.MessageNewParams{Model: claudeModel, MaxTokens: 50, Messages: []anthropic.MessageParam{userMsg("hi")}}
	ctx := context.Background()

	tests := []struct {
		name       string
		setup      func() (anthropic.Client, anthropic.MessageNewParams)
		status     int
		errType    anthropic.ErrorType
		retryAfter string
	}{
		{"queued 429", func() (anthropic.Client, anthropic.MessageNewParams) {
			sim.Enqueue(providersim.Fault{Status: 429, RetryAfter: "2"})
			return client, params
		}, 429, anthropic.ErrorTypeRateLimitError, "2"},
		{"queued overloaded", func() (anthropic.Client, anthropic.MessageNewParams) {
			sim.Enqueue(providersim.Fault{Overloaded: true})
			return client, params
		}, 529, anthropic.ErrorTypeOverloadedError, ""},
		{"marker 529", func() (anthropic.Client, anthropic.MessageNewParams) {
			p := params
			p.Messages = []anthropic.MessageParam{userMsg("please [[fault:529]]")}
			return client, p
		}, 529, anthropic.ErrorTypeOverloadedError, ""},
		{"marker 500", func() (anthropic.Client, anthropic.MessageNewParams) {
			p := params
			p.Messages = []anthropic.MessageParam{userMsg("[[fault:500]]")}
			return client, p
		}, 500, anthropic.ErrorTypeAPIError, ""},
		{"marker 403", func() (anthropic.Client, anthropic.MessageNewParams) {
			p := params
			p.Messages = []anthropic.MessageParam{userMsg("[[fault:403]]")}
			return client, p
		}, 403, anthropic.ErrorTypePermissionError, ""},
		{"bad marker", func() (anthropic.Client, anthropic.MessageNewParams) {
			p := params
			p.Messages = []anthropic.MessageParam{userMsg("[[fault:sometimes]]")}
			return client, p
		}, 400, anthropic.ErrorTypeInvalidRequestError, ""},
		{"wrong key", func() (anthropic.Client, anthropic.MessageNewParams) {
			return anthropicClient(url, option.WithAPIKey("sk-wrong")), params
		}, 401, anthropic.ErrorTypeAuthenticationError, ""},
		{"unknown model", func() (anthropic.Client, anthropic.MessageNewParams) {
			p := params
			p.Model = "claude-nonexistent"
			return client, p
		}, 404, anthropic.ErrorTypeNotFoundError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := tt.setup()
			for _, stream := range []bool{false, true} {
				if stream && tt.name == "queued 429" {
					sim.Enqueue(providersim.Fault{Status: 429, RetryAfter: "2"})
				}
				if stream && tt.name == "queued overloaded" {
					sim.Enqueue(providersim.Fault{Overloaded: true})
				}
				var err error
				if stream {
					_, _, err = collectAnthropic(t, c, ctx, p)
				} else {
					_, err = c.Messages.New(ctx, p)
				}
				apiErr := asAnthropicError(t, err)
				if apiErr.StatusCode != tt.status || apiErr.Type() != tt.errType {
					t.Errorf("stream=%v: status %d type %q, want %d %q", stream, apiErr.StatusCode, apiErr.Type(), tt.status, tt.errType)
				}
				if apiErr.RequestID == "" {
					t.Errorf("stream=%v: no request id", stream)
				}
				if got := apiErr.Response.Header.Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("stream=%v: Retry-After %q, want %q", stream, got, tt.retryAfter)
				}
			}
		})
	}
	if sim.Queued() != 0 {
		t.Errorf("%d faults left in the queue", sim.Queued())
	}
}

func TestAnthropicStreamFaults(t *testing.T) {
	sim, url := providersim.Start(t, providersim.Options{Chunks: 4})
	client := anthropicClient(url)
	params := anthropic.MessageNewParams{Model: claudeModel, MaxTokens: 50, Messages: []anthropic.MessageParam{userMsg("hi")}}
	ctx := context.Background()

	t.Run("reset mid-stream", func(t *testing.T) {
		sim.Enqueue(providersim.Fault{ResetAfterEvents: 2})
		_, types, err := collectAnthropic(t, client, ctx, params)
		if err == nil {
			t.Fatal("stream ended cleanly after a reset")
		}
		var apiErr *anthropic.Error
		if errors.As(err, &apiErr) {
			t.Fatalf("reset surfaced as an API error: %v", err)
		}
		if strings.Join(types, " ") != "message_start content_block_start" {
			t.Errorf("events before reset: %v", types)
		}
		t.Logf("SDK error after reset: %v", err)
	})
	t.Run("reset marker", func(t *testing.T) {
		p := params
		p.Messages = []anthropic.MessageParam{userMsg("hi [[fault:reset=4]]")}
		_, types, err := collectAnthropic(t, client, ctx, p)
		// message_start, content_block_start, ping (not surfaced), one delta.
		if err == nil || len(types) != 3 {
			t.Errorf("got %v after %v", err, types)
		}
	})
	t.Run("error event mid-stream", func(t *testing.T) {
		sim.Enqueue(providersim.Fault{ErrorAfterEvents: 4})
		_, types, err := collectAnthropic(t, client, ctx, params)
		apiErr := asAnthropicError(t, err)
		if apiErr.Type() != anthropic.ErrorTypeOverloadedError || apiErr.StatusCode != 200 || len(types) != 3 {
			t.Errorf("type %q status %d after %v", apiErr.Type(), apiErr.StatusCode, types)
		}
	})
	t.Run("malformed stream", func(t *testing.T) {
		sim.Enqueue(providersim.Fault{Malformed: true})
		_, types, err := collectAnthropic(t, client, ctx, params)
		var syntaxErr *json.SyntaxError
		if !errors.As(err, &syntaxErr) && !strings.Contains(fmtErr(err), "unexpected end of JSON") {
			t.Errorf("want a JSON decode error, got %v", err)
		}
		if len(types) != 1 || types[0] != "message_start" {
			t.Errorf("events before the broken one: %v", types)
		}
	})
	t.Run("malformed body", func(t *testing.T) {
		sim.Enqueue(providersim.Fault{Malformed: true})
		_, err := client.Messages.New(ctx, params)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "json") {
			t.Errorf("want a JSON decode error, got %v", err)
		}
	})
	t.Run("reset non-streaming", func(t *testing.T) {
		sim.Enqueue(providersim.Fault{ResetAfterEvents: 1})
		var raw *http.Response
		_, err := client.Messages.New(ctx, params, option.WithResponseInto(&raw))
		if err == nil || !strings.Contains(err.Error(), "reading response body") {
			t.Fatalf("want a body read error, got %v", err)
		}
		if raw == nil || raw.StatusCode != 200 {
			t.Errorf("headers should arrive before the reset: %v", raw)
		}
	})
	t.Run("disconnect", func(t *testing.T) {
		sim.Enqueue(providersim.Fault{Disconnect: true})
		_, err := client.Messages.New(ctx, params)
		var apiErr *anthropic.Error
		if err == nil || errors.As(err, &apiErr) || strings.Contains(err.Error(), "reading response body") {
			t.Fatalf("want a transport error before any response, got %v", err)
		}
		t.Logf("SDK error after disconnect: %v", err)
	})
	t.Run("stall until cancel", func(t *testing.T) {
		sim.Enqueue(providersim.Fault{StallAfterEvents: 2})
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, types, err := collectAnthropic(t, client, cctx, params)
		if !errors.Is(err, context.DeadlineExceeded) || len(types) != 2 {
			t.Errorf("got %v after %v", err, types)
		}
	})
	t.Run("delay", func(t *testing.T) {
		p := params
		p.Messages = []anthropic.MessageParam{userMsg("[[fault:delay=60ms]]")}
		start := time.Now()
		if _, err := client.Messages.New(ctx, p); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 60*time.Millisecond {
			t.Errorf("answered after %v", d)
		}
	})
	t.Run("times", func(t *testing.T) {
		// A gateway retry sees the same marker; times=1 lets the retry succeed.
		p := params
		p.Messages = []anthropic.MessageParam{userMsg("[[fault:529,times=1]]")}
		_, err := client.Messages.New(ctx, p)
		if asAnthropicError(t, err).StatusCode != 529 {
			t.Fatal(err)
		}
		if _, err := client.Messages.New(ctx, p); err != nil {
			t.Errorf("second attempt: %v", err)
		}
		// The SDK's own retry gets through too; retry-after=0 keeps it from sleeping.
		p.Messages = []anthropic.MessageParam{userMsg("[[fault:529,retry-after=0,times=1,id=sdk]]")}
		retrying := anthropicClient(url, option.WithMaxRetries(1))
		if _, err := retrying.Messages.New(ctx, p); err != nil {
			t.Errorf("SDK retry: %v", err)
		}
	})
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
