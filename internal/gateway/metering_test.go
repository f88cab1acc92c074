package gateway_test

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// TestMetricsAfterScriptedRun checks exact metric values and ledger costs
// after a known sequence of requests.
func TestMetricsAfterScriptedRun(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// 1, 2: alice, Anthropic front, a cached system prompt of 6 words: the
	// first request writes the cache, the second reads it.
	ac := e.anthropicClient(alice)
	params := anthropic.MessageNewParams{
		Model: "sonnet", MaxTokens: 100,
		System:   []anthropic.TextBlockParam{{Text: "you are a helpful assistant today", CacheControl: anthropic.NewCacheControlEphemeralParam()}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	}
	for range 2 {
		if _, err := ac.Messages.New(ctx, params); err != nil {
			t.Fatal(err)
		}
	}
	// 3: bob, OpenAI front, streaming from the OpenAI provider.
	if _, err := e.openaiClientChat(bob, "gpt", "hi", true); err != nil {
		t.Fatal(err)
	}
	// 4: alice, failover from anthropic to openai ("hi" and the marker: 2 words).
	if _, err := e.chat("both", "hi [[fault:provider=anthropic,503]]", false); err != nil {
		t.Fatal(err)
	}
	// 5: alice, unknown model.
	if _, err := e.chat("nope", "hi", false); err == nil {
		t.Fatal("unknown model accepted")
	}

	e.settle()
	// Prices per token in picodollars = the price in USD per MTok × 1e6.
	const (
		sonnetWrite = 1*3_000_000 + 8*15_000_000 + 6*3_750_000 // 145.5 µ$
		sonnetRead  = 1*3_000_000 + 8*15_000_000 + 6*300_000   // 124.8 µ$
		gptBob      = 1*150_000 + 8*600_000
		bothAlice   = 2*150_000 + 8*600_000
	)
	if got, want := e.ledger.Spend(alice), metering.Picodollars(sonnetWrite+sonnetRead+bothAlice); got != want {
		t.Errorf("alice's spend %s, want %s", got, want)
	}
	if got, want := e.ledger.Spend(bob), metering.Picodollars(gptBob); got != want {
		t.Errorf("bob's spend %s, want %s", got, want)
	}

	usd := func(pico ...int64) string {
		var f float64
		for _, p := range pico { // the counter adds one request at a time
			f += metering.Picodollars(p).USD()
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	want := map[string][]string{
		"chatgateway_requests_total": {
			`chatgateway_requests_total{end_user="alice@example.com",model="",provider="",requested_model="",status="404"} 1`,
			`chatgateway_requests_total{end_user="alice@example.com",model="both",provider="openai",requested_model="both",status="200"} 1`,
			`chatgateway_requests_total{end_user="alice@example.com",model="sonnet",provider="anthropic",requested_model="sonnet",status="200"} 2`,
			`chatgateway_requests_total{end_user="bob@example.com",model="gpt",provider="openai",requested_model="gpt",status="200"} 1`,
		},
		"chatgateway_tokens_total": {
			`chatgateway_tokens_total{end_user="alice@example.com",model="both",provider="openai",type="input"} 2`,
			`chatgateway_tokens_total{end_user="alice@example.com",model="both",provider="openai",type="output"} 8`,
			`chatgateway_tokens_total{end_user="alice@example.com",model="sonnet",provider="anthropic",type="cache_read"} 6`,
			`chatgateway_tokens_total{end_user="alice@example.com",model="sonnet",provider="anthropic",type="cache_write"} 6`,
			`chatgateway_tokens_total{end_user="alice@example.com",model="sonnet",provider="anthropic",type="input"} 2`,
			`chatgateway_tokens_total{end_user="alice@example.com",model="sonnet",provider="anthropic",type="output"} 16`,
			`chatgateway_tokens_total{end_user="bob@example.com",model="gpt",provider="openai",type="input"} 1`,
			`chatgateway_tokens_total{end_user="bob@example.com",model="gpt",provider="openai",type="output"} 8`,
		},
		"chatgateway_spend_usd_total": {
			`chatgateway_spend_usd_total{end_user="alice@example.com",model="both",provider="openai"} ` + usd(bothAlice),
			`chatgateway_spend_usd_total{end_user="alice@example.com",model="sonnet",provider="anthropic"} ` + usd(sonnetWrite, sonnetRead),
			`chatgateway_spend_usd_total{end_user="bob@example.com",model="gpt",provider="openai"} ` + usd(gptBob),
		},
		"chatgateway_failovers_total": {
			`chatgateway_failovers_total{from="anthropic",reason="ServerError",to="openai"} 1`,
		},
		// The unknown model's 404 is counted, not timed: no series with an
		// empty provider among the providers' latencies.
		"chatgateway_request_duration_seconds_count": {
			`chatgateway_request_duration_seconds_count{model="both",provider="openai"} 1`,
			`chatgateway_request_duration_seconds_count{model="gpt",provider="openai"} 1`,
			`chatgateway_request_duration_seconds_count{model="sonnet",provider="anthropic"} 2`,
		},
		"chatgateway_time_to_first_token_seconds_count": {
			`chatgateway_time_to_first_token_seconds_count{model="gpt",provider="openai"} 1`,
		},
	}
	for prefix, lines := range want {
		got := nonZero(e.metric(prefix + "{"))
		if !slices.Equal(got, lines) {
			t.Errorf("%s:\ngot  %s\nwant %s", prefix, strings.Join(got, "\n     "), strings.Join(lines, "\n     "))
		}
	}
}

// nonZero drops the series at zero: each person's series exist from the
// start (TestSeriesExistFromTheStart).
func nonZero(lines []string) []string {
	return slices.DeleteFunc(lines, func(l string) bool { return strings.HasSuffix(l, " 0") })
}

// TestSeriesExistFromTheStart: each allowlisted person's request, spend
// and token series exist at zero before their first request, for every
// model and provider that may serve them, and a person added by a reload
// gets theirs: Prometheus sees a first request as an increase, with no
// created-timestamp ingestion and no race with the first scrape. A
// refusal (429) is counted but never timed.
func TestSeriesExistFromTheStart(t *testing.T) {
	e := newEnv(t, withQuota("", "0.000001"))
	for _, who := range []string{alice, bob} {
		for _, route := range []string{`model="sonnet",provider="anthropic"`, `model="gpt",provider="openai"`, `model="both",provider="anthropic"`, `model="both",provider="openai"`} {
			for _, want := range []string{
				fmt.Sprintf(`chatgateway_spend_usd_total{end_user="%s",%s} 0`, who, route),
				fmt.Sprintf(`chatgateway_tokens_total{end_user="%s",%s,type="output"} 0`, who, route),
			} {
				if len(e.scrape(want)) != 1 {
					t.Errorf("missing before the first request: %s", want)
				}
			}
		}
	}
	carol := "carol@example.com"
	e.cfg.Users = append(e.cfg.Users, gatewayconfig.User{Email: carol, Role: gatewayconfig.RoleUser})
	e.writeConfig(e.cfg)
	if _, err := e.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if want := `chatgateway_requests_total{end_user="carol@example.com",model="gpt",provider="openai",requested_model="gpt",status="200"} 0`; len(e.scrape(want)) != 1 {
		t.Errorf("missing after the reload: %s", want)
	}
	// Over the limit: refused, counted with no provider, timed nowhere.
	if resp, _ := send(t, e.url, "/v1/chat/completions", alice, chatBody("gpt", "hi", 10, false)); resp.StatusCode != 429 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := e.metric(`chatgateway_request_duration_seconds_count{model="gpt",provider=""`); len(got) != 0 {
		t.Errorf("a refusal was timed: %q", got)
	}
	if got := e.metric(`chatgateway_requests_total{end_user="alice@example.com",model="gpt",provider="",requested_model="gpt",status="429"} 1`); len(got) != 1 {
		t.Errorf("the refusal was not counted: %q", e.metric("chatgateway_requests_total"))
	}
}

func (e *env) openaiClientChat(who, alias, text string, stream bool) (string, error) {
	client := e.openaiClient(who)
	params := openai.ChatCompletionNewParams{
		Model: alias, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	if !stream {
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{}
		cc, err := client.Chat.Completions.New(context.Background(), params)
		if err != nil {
			return "", err
		}
		return cc.Choices[0].Message.Content, nil
	}
	s := client.Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	return acc.Choices[0].Message.Content, s.Err()
}

// expectedHash recomputes the keyed identity hash independently.
func expectedHash(t *testing.T, master, email string) string {
	key, err := hkdf.Key(sha256.New, []byte(master), nil, "identity-hash", 32)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(email))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func TestIdentityForms(t *testing.T) {
	e := newEnv(t, func(c *gatewayconfig.Config) {
		c.Identity = gatewayconfig.Identity{Upstream: gatewayconfig.IdentityHash, MetricsEndUser: gatewayconfig.IdentityHash}
	})
	hash := expectedHash(t, strings.Repeat("k", 32), alice)
	for _, alias := range []string{"sonnet", "gpt"} {
		for _, stream := range []bool{false, true} {
			if _, err := e.chat(alias, "hi", stream); err != nil {
				t.Fatal(err)
			}
		}
		ac := e.anthropicClient(alice)
		if _, err := ac.Messages.New(context.Background(), anthropic.MessageNewParams{
			Model: alias, MaxTokens: 10, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range e.anth.Requests() {
		var body struct {
			Metadata struct {
				UserID string `json:"user_id"`
			} `json:"metadata"`
		}
		_ = json.Unmarshal(r.Body, &body)
		if body.Metadata.UserID != hash {
			t.Errorf("anthropic metadata.user_id = %q, want %q", body.Metadata.UserID, hash)
		}
	}
	for _, r := range e.oai.Requests() {
		var body struct {
			User string `json:"user"`
		}
		_ = json.Unmarshal(r.Body, &body)
		if body.User != hash {
			t.Errorf("openai user = %q, want %q", body.User, hash)
		}
	}
	if got := nonZero(e.metric(fmt.Sprintf(`chatgateway_requests_total{end_user="%s"`, hash))); len(got) != 2 {
		t.Errorf("hashed end_user series: %q", got)
	}
	all := e.metricsPage()
	if strings.Contains(all, alice) {
		t.Error("/metrics shows an email although metricsEndUser is Hash")
	}

	t.Run("None", func(t *testing.T) {
		e := newEnv(t, func(c *gatewayconfig.Config) { c.Identity.MetricsEndUser = gatewayconfig.IdentityNone })
		if _, err := e.chat("gpt", "hi", false); err != nil {
			t.Fatal(err)
		}
		if got := e.metric(`chatgateway_requests_total{end_user="",model="gpt"`); len(got) != 1 {
			t.Errorf("end_user should be empty: %q", e.metric("chatgateway_requests_total"))
		}
	})
}
