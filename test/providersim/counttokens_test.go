package providersim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// TestAnthropicCountTokens: the official SDK's Messages.CountTokens gets
// the input a Messages call with the same prompt reports, in Anthropic's
// shape, and the API's own refusals.
func TestAnthropicCountTokens(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{APIKey: testKey, Models: []string{claudeModel}})
	client := anthropicClient(url)
	ctx := context.Background()
	system := []anthropic.TextBlockParam{{Text: "You are terse."}}
	msgs := []anthropic.MessageParam{userMsg("Hello there simulator"), anthropic.NewAssistantMessage(anthropic.NewTextBlock("Hi.")), userMsg("Count these words please")}

	var raw *http.Response
	n, err := client.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
		Model: claudeModel, System: anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: system}, Messages: msgs,
	}, option.WithResponseInto(&raw))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: claudeModel, MaxTokens: 16, System: system, Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	if n.InputTokens != msg.Usage.InputTokens || n.InputTokens < 10 {
		t.Errorf("count_tokens says %d input tokens, the Messages call %d", n.InputTokens, msg.Usage.InputTokens)
	}
	if raw.Header.Get("request-id") == "" {
		t.Error("no request-id header")
	}

	for _, tc := range []struct {
		name, body, want string
		status           int
	}{
		{"max_tokens is not a count_tokens field", `{"model":"` + claudeModel + `","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, "max_tokens: Extra inputs are not permitted", 400},
		{"no model", `{"messages":[{"role":"user","content":"hi"}]}`, "model: Field required", 400},
		{"no messages", `{"model":"` + claudeModel + `","messages":[]}`, "messages: at least one message is required", 400},
		{"unknown model", `{"model":"claude-nope","messages":[{"role":"user","content":"hi"}]}`, "model: claude-nope", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", url+"/v1/messages/count_tokens", strings.NewReader(tc.body))
			req.Header.Set("x-api-key", testKey)
			req.Header.Set("anthropic-version", "2023-06-01")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Type  string `json:"type"`
				Error struct{ Type, Message string }
			}
			_ = jsonDecode(resp, &e)
			if resp.StatusCode != tc.status || e.Type != "error" || e.Error.Message != tc.want {
				t.Errorf("%d %+v, want %d %q", resp.StatusCode, e, tc.status, tc.want)
			}
		})
	}
	wrong := anthropicClient(url, option.WithAPIKey("wrong"))
	if _, err := wrong.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: claudeModel, Messages: msgs}); err == nil || asAnthropicError(t, err).StatusCode != 401 {
		t.Errorf("a wrong key: %v", err)
	}
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// TestAnthropicCountTokensFaults: a queued fault answers count_tokens as it
// would a Messages call.
func TestAnthropicCountTokensFaults(t *testing.T) {
	sim, url := providersim.Start(t, providersim.Options{APIKey: testKey})
	sim.Enqueue(providersim.Fault{Overloaded: true})
	client := anthropicClient(url)
	params := anthropic.MessageCountTokensParams{Model: claudeModel, Messages: []anthropic.MessageParam{userMsg("one two three")}}
	if _, err := client.Messages.CountTokens(context.Background(), params); err == nil || asAnthropicError(t, err).StatusCode != 529 {
		t.Fatalf("with an overload queued: %v", err)
	}
	n, err := client.Messages.CountTokens(context.Background(), params)
	if err != nil || n.InputTokens != 3 {
		t.Fatalf("after it: %v, %v", n, err)
	}
}
