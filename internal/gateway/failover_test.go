package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// chat sends one OpenAI-front request for alias with text as the user
// message; it returns the reply text (streamed or not).
func (e *env) chat(alias, text string, stream bool) (string, error) {
	client := e.openaiClient(alice)
	params := openai.ChatCompletionNewParams{Model: alias, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)}}
	ctx := context.Background()
	if !stream {
		cc, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			return "", err
		}
		return cc.Choices[0].Message.Content, nil
	}
	s := client.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	return acc.Choices[0].Message.Content, nil
}

func withFirstByte(d time.Duration) envOption {
	return func(c *gatewayconfig.Config) {
		for i := range c.Providers {
			c.Providers[i].Timeouts.FirstByte = gatewayconfig.D(d)
		}
	}
}

// TestFailoverBeforeFirstByte: every failure class on the primary, before
// anything reached the client, moves the request to the next provider.
func TestFailoverBeforeFirstByte(t *testing.T) {
	cases := []struct {
		fault  string
		stream bool
		class  string
	}{
		{"529", false, "Overloaded"},
		{"overloaded", true, "Overloaded"},
		{"500", false, "ServerError"},
		{"502", true, "ServerError"},
		{"503", false, "ServerError"},
		{"504", false, "ServerError"},
		{"429", true, "RateLimited"},
		{"disconnect", false, "ConnectionError"},
		{"disconnect", true, "ConnectionError"},
		{"reset=1", false, "ConnectionError"}, // headers and half the body, then RST
		{"malformed", false, "ServerError"},
		{"delay=10s", false, "Timeout"},
		{"hang", true, "Timeout"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/stream=%v", c.fault, c.stream), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, withFirstByte(300*time.Millisecond))
			got, err := e.chat("both", "hi [[fault:provider=anthropic,"+c.fault+"]]", c.stream)
			if err != nil {
				t.Fatal(err)
			}
			if want := simReply(gptID, 2); got != want {
				t.Errorf("reply %q, want %q (from the second provider)", got, want)
			}
			want := fmt.Sprintf(`chatgateway_failovers_total{from="anthropic",reason="%s",to="openai"} 1`, c.class)
			if m := e.metric("chatgateway_failovers_total"); len(m) != 1 || m[0] != want {
				t.Errorf("failover metric %q, want %q", m, want)
			}
		})
	}
}

// TestNoFailover: other 4xx and classes missing from retryOn go back to the
// caller; the second provider is never asked.
func TestNoFailover(t *testing.T) {
	t.Run("400", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.chat("both", "hi [[fault:provider=anthropic,400]]", false)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
			t.Fatalf("err = %v, want a 400", err)
		}
		if e.oai.Served() != 0 {
			t.Error("a 400 failed over")
		}
	})
	t.Run("class not in retryOn", func(t *testing.T) {
		e := newEnv(t, func(c *gatewayconfig.Config) { c.Failover.RetryOn = []string{"ServerError"} })
		_, err := e.chat("both", "hi [[fault:provider=anthropic,429]]", false)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
			t.Fatalf("err = %v, want a 429", err)
		}
		if e.oai.Served() != 0 {
			t.Error("a 429 failed over although RateLimited is not in retryOn")
		}
	})
	t.Run("every provider overloaded", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.chat("both", "hi [[fault:529]]", false)
		var oerr *openai.Error
		if !errors.As(err, &oerr) || oerr.StatusCode != 503 {
			t.Fatalf("OpenAI front: %v, want 503", err)
		}
		ac := e.anthropicClient(alice)
		_, err = ac.Messages.New(context.Background(), anthropic.MessageNewParams{
			Model: "both", MaxTokens: 10, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi [[fault:529]]"))},
		})
		var aerr *anthropic.Error
		if !errors.As(err, &aerr) || aerr.StatusCode != 529 || !strings.Contains(aerr.Error(), "overloaded_error") {
			t.Fatalf("Anthropic front: %v, want 529 overloaded_error", err)
		}
	})
	t.Run("every provider rate limited", func(t *testing.T) {
		e := newEnv(t)
		resp, body := e.do("POST", "/v1/chat/completions", authHeader(alice), `{"model":"both","messages":[{"role":"user","content":"[[fault:429,retry-after=7]]"}]}`)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
			t.Fatalf("%d Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	})
	t.Run("upstream rejects the gateway's key", func(t *testing.T) {
		e := newEnv(t)
		writeFile(t, e.cfg.Providers[1].APIKeyFile, "wrong")
		if _, err := e.gw.Reload(); err != nil {
			t.Fatal(err)
		}
		_, err := e.chat("gpt", "hi", false)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 502 || !strings.Contains(apiErr.Message, "API key") {
			t.Fatalf("err = %v, want a 502 naming the key", err)
		}
	})
}

// TestFailoverAfterFirstByte: once the client has the first event, a broken
// upstream ends the stream with an error event in the client's dialect, and
// the usage seen so far is billed.
func TestFailoverAfterFirstByte(t *testing.T) {
	for fault, wantInput := range map[string]int64{"reset=2": 3, "error-after=2": 3, "malformed": 1} {
		t.Run("anthropic-front/"+fault, func(t *testing.T) {
			e := newEnv(t)
			client := e.anthropicClient(alice)
			s := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{
				Model: "both", MaxTokens: 100,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("one two [[fault:provider=anthropic," + fault + "]]"))},
			})
			events := 0
			for s.Next() {
				events++
			}
			if s.Err() == nil || events == 0 {
				t.Fatalf("events %d, err %v: want some events, then an error", events, s.Err())
			}
			if e.oai.Served() != 0 {
				t.Error("failed over after the first byte")
			}
			e.settle()
			entries := e.ledger.Entries()
			if len(entries) != 1 || entries[0].Status != 502 || entries[0].Usage.Input != wantInput || entries[0].Provider != "anthropic" {
				t.Fatalf("ledger %+v, want one 502 billing the %d input tokens of message_start", entries, wantInput)
			}
		})
	}
	t.Run("openai-front/error-after=3", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.chat("gpt", "hi [[fault:error-after=3]]", true)
		if err == nil || !strings.Contains(err.Error(), "mid-stream") {
			t.Fatalf("err = %v, want the gateway's mid-stream error", err)
		}
		if got := e.metric(`chatgateway_requests_total{end_user="alice@example.com",model="gpt",provider="openai",requested_model="gpt",status="502"}`); len(got) != 1 {
			t.Errorf("requests metric %q", got)
		}
	})
}

func TestCooldown(t *testing.T) {
	t.Run("after failureThreshold", func(t *testing.T) {
		e := newEnv(t)
		for i := range 3 {
			if _, err := e.chat("both", fmt.Sprintf("hi [[fault:provider=anthropic,503,id=%d]]", i), false); err != nil {
				t.Fatal(err)
			}
		}
		before := e.anth.Served()
		got, err := e.chat("both", "hi", false)
		if err != nil {
			t.Fatal(err)
		}
		if e.anth.Served() != before || got != simReply(gptID, 1) {
			t.Errorf("a provider that failed 3 times in a row was asked again (reply %q)", got)
		}
	})
	t.Run("Retry-After", func(t *testing.T) {
		e := newEnv(t)
		if _, err := e.chat("both", "hi [[fault:provider=anthropic,429,retry-after=30]]", false); err != nil {
			t.Fatal(err)
		}
		before := e.anth.Served()
		if _, err := e.chat("both", "hi", true); err != nil {
			t.Fatal(err)
		}
		if e.anth.Served() != before {
			t.Error("a provider that answered 429 with Retry-After was asked again")
		}
	})
	t.Run("benched provider still serves when nothing else can", func(t *testing.T) {
		e := newEnv(t, func(c *gatewayconfig.Config) { c.Fallbacks = nil })
		if _, err := e.chat("both", "hi [[fault:provider=anthropic,429,retry-after=30]]", false); err != nil {
			t.Fatal(err)
		}
		got, err := e.chat("sonnet", "hi", false)
		if err != nil || got != simReply(sonnetID, 1) {
			t.Fatalf("reply %q, err %v: want the benched provider to serve its only model", got, err)
		}
	})
}

func TestDeadlines(t *testing.T) {
	t.Run("overall request timeout", func(t *testing.T) {
		e := newEnv(t, func(c *gatewayconfig.Config) { c.Failover.RequestTimeout = gatewayconfig.D(300 * time.Millisecond) })
		start := time.Now()
		_, err := e.chat("both", "hi [[fault:hang]]", false)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 504 {
			t.Fatalf("err = %v, want 504", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %s", d)
		}
	})
	t.Run("every provider times out", func(t *testing.T) {
		e := newEnv(t, withFirstByte(100*time.Millisecond))
		_, err := e.chat("both", "hi [[fault:hang]]", false)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 504 || !strings.Contains(apiErr.Message, "firstByte") {
			t.Fatalf("err = %v, want 504 naming the firstByte timeout", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String()
		ln.Close()
		e := newEnv(t, func(c *gatewayconfig.Config) { c.Providers[0].BaseURL = dead })
		got, err := e.chat("both", "hi", false)
		if err != nil || got != simReply(gptID, 1) {
			t.Fatalf("reply %q, err %v", got, err)
		}
		if m := e.metric("chatgateway_failovers_total"); len(m) != 1 || !strings.Contains(m[0], `reason="ConnectionError"`) {
			t.Errorf("failovers %q", m)
		}
	})
}

// TestClientDisconnect: a caller who hangs up mid-stream is billed what
// the provider bills. An OpenAI-compatible stream reports usage only in
// its last chunk, so the gateway reads on after the caller left (without
// writing to them) and bills the provider's usage; an upstream that never
// finishes is given up at the request timeout and billed an estimate
// never below the input's bound: never nothing once the request was sent.
func TestClientDisconnect(t *testing.T) {
	hangUp := func(t *testing.T, e *env, text string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		client := e.openaiClient(alice)
		s := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model: "gpt", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)},
		})
		if !s.Next() {
			t.Fatalf("no first chunk: %v", s.Err())
		}
		cancel()
		for s.Next() {
		}
		waitFor(t, "the request to end as 499", func() bool {
			return len(e.metric(`chatgateway_requests_total{end_user="alice@example.com",model="gpt",provider="openai",requested_model="gpt",status="499"} 1`)) == 1
		})
		e.settle()
	}
	t.Run("the provider finishes", func(t *testing.T) {
		e := newEnvWith(t, providersim.Options{Chunks: 10, EventDelay: 20 * time.Millisecond}, testLogger(t))
		// What the provider bills for the whole answer.
		if _, err := e.chat("gpt", "hi", true); err != nil {
			t.Fatal(err)
		}
		e.settle()
		whole := e.ledger.Entries()[0]
		hangUp(t, e, "hi")
		cut := e.ledger.Entries()[1]
		if cut.Status != 499 || cut.Usage != whole.Usage || cut.Cost != whole.Cost || cut.Cost == 0 {
			t.Fatalf("hung up: %+v; want the provider's whole usage as in %+v", cut, whole)
		}
	})
	t.Run("the provider stalls", func(t *testing.T) {
		e := newEnv(t, func(c *gatewayconfig.Config) { c.Failover.RequestTimeout = gatewayconfig.D(time.Second) })
		hangUp(t, e, "hi [[fault:stall=2]]")
		entries := e.ledger.Entries()
		if len(entries) != 1 {
			t.Fatalf("ledger %+v", entries)
		}
		cut := entries[0]
		if cut.Status != 499 || cut.Usage.Input < 1024 || cut.Cost == 0 {
			t.Fatalf("stalled: %+v; want an estimate at least the input's bound", cut)
		}
	})
}
