package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/chatgateway/chatgateway-operator/internal/gateway"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// TestCountTokens drives POST /v1/messages/count_tokens with the official
// SDK's Messages.CountTokens: an Anthropic model is counted by its
// provider, an OpenAI-compatible one estimated and marked so; a person
// whose quota refuses every completion may still count; nothing is
// metered; the provider's refusals reach the caller in Anthropic's shape.
func TestCountTokens(t *testing.T) {
	e := newEnv(t, withQuota("", "0.000001")) // too little for any completion
	ctx := context.Background()
	client := e.anthropicClient(bob)
	params := func(model string) anthropic.MessageCountTokensParams {
		return anthropic.MessageCountTokensParams{
			Model:    anthropic.Model(model),
			System:   anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: []anthropic.TextBlockParam{{Text: "be brief"}}},
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello there gateway"))},
		}
	}

	// A completion is refused by the quota: counting is not a completion.
	_, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: "sonnet", MaxTokens: 10,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello there gateway"))}})
	if apiErr := (*anthropic.Error)(nil); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a completion over the quota: %v, want 429", err)
	}
	e.anth.Reset()

	t.Run("an Anthropic model: its provider counts", func(t *testing.T) {
		var raw *http.Response
		n, err := client.Messages.CountTokens(ctx, params("sonnet"), aoption.WithResponseInto(&raw))
		if err != nil {
			t.Fatal(err)
		}
		if n.InputTokens != 5 { // the simulator's count: a token a word
			t.Errorf("input_tokens %d, want 5", n.InputTokens)
		}
		if got := raw.Header.Get(gateway.TokenCountHeader); got != gateway.TokenCountProvider {
			t.Errorf("%s: %q, want %q", gateway.TokenCountHeader, got, gateway.TokenCountProvider)
		}
		rec, ok := e.anth.LastRequest()
		if !ok || rec.Path != "/v1/messages/count_tokens" {
			t.Fatalf("the provider got %+v", rec)
		}
		var sent struct{ Model string }
		if err := rec.JSON(&sent); err != nil || sent.Model != sonnetID {
			t.Errorf("the provider was asked about model %q, want %s", sent.Model, sonnetID)
		}
		if rec.Header.Get("X-Api-Key") != anthKey || rec.Header.Get("X-Forwarded-Email") != "" || strings.Contains(rec.Header.Get("Authorization"), currentToken) {
			t.Errorf("the provider got the wrong credentials or the caller's headers: %v", rec.Header)
		}
	})

	t.Run("an OpenAI-compatible model: an estimate, marked", func(t *testing.T) {
		var raw *http.Response
		n, err := client.Messages.CountTokens(ctx, params("gpt"), aoption.WithResponseInto(&raw))
		if err != nil {
			t.Fatal(err)
		}
		// 27 bytes of text in 5 words: at least a token a word, at most one a byte.
		if n.InputTokens < 5 || n.InputTokens > 27+4 {
			t.Errorf("estimate %d, want between 5 and 31", n.InputTokens)
		}
		if got := raw.Header.Get(gateway.TokenCountHeader); got != gateway.TokenCountEstimate {
			t.Errorf("%s: %q, want %q", gateway.TokenCountHeader, got, gateway.TokenCountEstimate)
		}
		if e.oai.Served() != 0 {
			t.Error("the OpenAI-compatible provider was called")
		}
	})

	t.Run("the Anthropic provider is overloaded: the fallback's estimate", func(t *testing.T) {
		e.anth.Enqueue(providersim.Fault{Overloaded: true})
		var raw *http.Response
		if _, err := client.Messages.CountTokens(ctx, params("sonnet"), aoption.WithResponseInto(&raw)); err != nil {
			t.Fatal(err)
		}
		if got := raw.Header.Get(gateway.TokenCountHeader); got != gateway.TokenCountEstimate {
			t.Errorf("%s: %q after a 529, want the fallback's estimate", gateway.TokenCountHeader, got)
		}
	})

	t.Run("refusals in Anthropic's shape", func(t *testing.T) {
		for _, tc := range []struct {
			name, body, want string
			status           int
		}{
			{"unknown model", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`, `model \"nope\" is not served`, 404},
			{"no messages", `{"model":"sonnet","messages":[]}`, "at least one message", 400},
			{"the provider's own refusal", `{"model":"sonnet","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, "max_tokens: Extra inputs are not permitted", 400},
			{"not JSON", `{"model":`, "JSON object", 400},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := authHeader(bob)
				h.Set("Content-Type", "application/json")
				h.Set("Anthropic-Version", "2023-06-01")
				resp, body := e.do("POST", "/v1/messages/count_tokens", h, tc.body)
				if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) || !strings.HasPrefix(body, `{"type":"error"`) {
					t.Errorf("%d %s, want %d with %q", resp.StatusCode, body, tc.status, tc.want)
				}
			})
		}
		resp, body := e.do("POST", "/v1/messages/count_tokens", http.Header{"Content-Type": {"application/json"}}, `{"model":"sonnet","messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("without the token: %d %s", resp.StatusCode, body)
		}
	})

	e.settle()
	if n := len(e.ledger.Entries()); n != 0 {
		t.Errorf("counting tokens left %d ledger entries", n)
	}
	if st, err := e.gw.QuotaStatus(ctx, bob); err != nil || st.SpentPicodollars != 0 || st.ReservedPicodollars != 0 {
		t.Errorf("bob's quota after counting: %+v, %v", st, err)
	}
}
