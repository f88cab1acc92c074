package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

func TestSessionLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newStoreEnv(t, kind, providersim.Options{}, nil)
		var s store.Session
		e.apiJSON("POST", "/api/sessions", bob, map[string]string{"model": "gpt", "title": "Plans"}, http.StatusCreated, &s)
		if s.ID == "" || s.Owner != bob || s.Model != "gpt" || s.Title != "Plans" {
			t.Fatalf("created %+v", s)
		}
		var def store.Session
		e.apiJSON("POST", "/api/sessions", bob, nil, http.StatusCreated, &def)
		if def.Model != "sonnet" {
			t.Errorf("no model: got %q, want the default sonnet", def.Model)
		}
		if code, body := e.api("POST", "/api/sessions", bob, map[string]string{"model": "nope"}); code != http.StatusBadRequest || !strings.Contains(body, `"type":"invalid_request"`) {
			t.Errorf("unknown model: %d %s", code, body)
		}

		var list struct {
			Sessions []store.Session
			Next     string
		}
		e.apiJSON("GET", "/api/sessions?limit=1", bob, nil, http.StatusOK, &list)
		if len(list.Sessions) != 1 || list.Next == "" {
			t.Fatalf("page 1: %+v", list)
		}
		first := list.Sessions[0].ID
		cursor := list.Next
		list.Next = ""
		e.apiJSON("GET", "/api/sessions?limit=1&cursor="+cursor, bob, nil, http.StatusOK, &list)
		if len(list.Sessions) != 1 || list.Sessions[0].ID == first || list.Next != "" {
			t.Fatalf("page 2: %+v", list)
		}
		e.apiJSON("GET", "/api/sessions", alice, nil, http.StatusOK, &list)
		if len(list.Sessions) != 0 {
			t.Errorf("alice sees bob's sessions: %+v", list.Sessions)
		}

		var renamed store.Session
		e.apiJSON("PATCH", "/api/sessions/"+s.ID, bob, map[string]string{"title": "Holiday"}, http.StatusOK, &renamed)
		if renamed.Title != "Holiday" {
			t.Errorf("renamed: %+v", renamed)
		}
		var got sessionWithMessages
		e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
		if got.Title != "Holiday" || len(got.Messages) != 0 {
			t.Errorf("get: %+v", got)
		}
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			if code, body := e.api(m, "/api/sessions/"+s.ID, alice, map[string]string{"title": "x"}); code != http.StatusNotFound || !strings.Contains(body, `"type":"not_found"`) {
				t.Errorf("%s as alice: %d %s", m, code, body)
			}
		}
		e.apiJSON("DELETE", "/api/sessions/"+s.ID, bob, nil, http.StatusNoContent, nil)
		if code, _ := e.api("GET", "/api/sessions/"+s.ID, bob, nil); code != http.StatusNotFound {
			t.Errorf("after delete: %d", code)
		}
		if code, body := e.api("GET", "/api/sessions", "", nil); code != http.StatusUnauthorized || !strings.Contains(body, `"type":"authentication"`) {
			t.Errorf("no token: %d %s", code, body)
		}
	})
}

func TestStatefulChatStreams(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newStoreEnv(t, kind, providersim.Options{Chunks: 6}, nil)
		var s store.Session
		e.apiJSON("POST", "/api/sessions", bob, nil, http.StatusCreated, &s)

		code, h, evs := e.turn("/api/sessions/"+s.ID+"/messages", bob, "What is the capital of France?")
		if code != http.StatusOK || h.Get("X-Session-Id") != s.ID {
			t.Fatalf("status %d, session %q: %+v", code, h.Get("X-Session-Id"), evs)
		}
		d, text := done(t, evs)
		if d.Status != "complete" || d.SessionID != s.ID || d.Model != "sonnet" || d.Provider != "anthropic" || d.Error != nil {
			t.Fatalf("done: %+v", d)
		}
		if !strings.HasPrefix(text, "Simulated reply from "+sonnetID) {
			t.Errorf("text %q", text)
		}
		// 6 words of prompt; the reply is 8 words.
		if d.Usage.InputTokens != 6 || d.Usage.OutputTokens != 8 {
			t.Errorf("usage %+v", d.Usage)
		}
		// 6 × $3/M + 8 × $15/M
		if d.CostUSD != "0.000138000000" {
			t.Errorf("cost %s", d.CostUSD)
		}

		// The second turn carries the history.
		_, _, evs = e.turn("/api/sessions/"+s.ID+"/messages", bob, "And of Italy?")
		d2, _ := done(t, evs)
		if d2.Status != "complete" {
			t.Fatalf("second turn: %+v", d2)
		}
		rec, _ := e.anth.LastRequest()
		var up struct {
			Messages []struct{ Role, Content string }
			Metadata struct {
				UserID string `json:"user_id"`
			}
		}
		if err := rec.JSON(&up); err != nil {
			t.Fatal(err)
		}
		if len(up.Messages) != 3 || up.Messages[0].Content != "What is the capital of France?" || up.Messages[1].Content != text || up.Messages[2].Role != "user" {
			t.Errorf("upstream history: %+v", up.Messages)
		}
		if up.Metadata.UserID != bob {
			t.Errorf("upstream identity %q", up.Metadata.UserID)
		}

		var got sessionWithMessages
		e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
		if len(got.Messages) != 4 {
			t.Fatalf("messages: %+v", got.Messages)
		}
		for i, m := range got.Messages {
			if m.Status != store.StatusComplete {
				t.Errorf("message %d: %s", i, m.Status)
			}
		}
		if got.Messages[1].Content != text || got.Messages[1].OutputTokens != 8 || got.Messages[1].ID != d.MessageID {
			t.Errorf("assistant message %+v", got.Messages[1])
		}
		if got.Title != "What is the capital of France?" {
			t.Errorf("title from the first message: %q", got.Title)
		}

		// The ledger has both turns, billed exactly.
		e.settle()
		days, err := e.st.UsageByDay(context.Background(), bob, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 1 || days[0].Requests != 2 || days[0].Tokens.Input != 6+3+8+6 {
			t.Errorf("ledger: %+v", days)
		}
		// The same metrics as the model API.
		if !hasMetric(e.metric("chatgateway_requests_total{"), " 2", `end_user="bob@example.com"`, `model="sonnet"`, `provider="anthropic"`, `status="200"`) {
			t.Errorf("metrics: %v", e.metric("chatgateway_requests_total{"))
		}

	})
}

func TestStatefulChatNonStreaming(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil)
	var s store.Session
	e.apiJSON("POST", "/api/sessions", bob, map[string]string{"model": "gpt"}, http.StatusCreated, &s)
	var d turnDone
	e.apiJSON("POST", "/api/sessions/"+s.ID+"/messages?stream=false", bob, map[string]string{"content": "hello there"}, http.StatusOK, &d)
	if d.Status != "complete" || d.Content == nil || !strings.HasPrefix(*d.Content, "Simulated reply from "+gptID) || d.Provider != "openai" {
		t.Fatalf("%+v", d)
	}
	if d.Usage.InputTokens != 2 || d.Usage.OutputTokens != 8 {
		t.Errorf("usage %+v", d.Usage)
	}
	if code, body := e.api("POST", "/api/sessions/"+s.ID+"/messages", bob, map[string]string{"content": "  "}); code != http.StatusBadRequest {
		t.Errorf("empty content: %d %s", code, body)
	}
	if code, _ := e.api("POST", "/api/sessions/"+s.ID+"/messages", alice, map[string]string{"content": "hi"}); code != http.StatusNotFound {
		t.Errorf("someone else's session: %d", code)
	}
}

func TestChatUsesActiveSessionUntilIdle(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newStoreEnv(t, kind, providersim.Options{}, nil, func(c *gatewayconfig.Config) {
			c.Sessions.IdleTimeout = gatewayconfig.D(30 * time.Minute)
		})
		_, h, evs := e.turn("/api/chat", bob, "first")
		d1, _ := done(t, evs)
		if !d1.NewSession || h.Get("X-Session-New") != "true" {
			t.Fatalf("first chat: %+v", d1)
		}
		e.clock.Set(e.clock.Now().Add(29 * time.Minute))
		_, _, evs = e.turn("/api/chat", bob, "second")
		d2, _ := done(t, evs)
		if d2.NewSession || d2.SessionID != d1.SessionID {
			t.Fatalf("within idle timeout: %+v", d2)
		}
		// Alice's chat is hers.
		_, _, evs = e.turn("/api/chat", alice, "hers")
		if d, _ := done(t, evs); !d.NewSession || d.SessionID == d1.SessionID {
			t.Errorf("alice: %+v", d)
		}
		e.clock.Set(e.clock.Now().Add(31 * time.Minute))
		_, h, evs = e.turn("/api/chat", bob, "third")
		d3, _ := done(t, evs)
		if !d3.NewSession || d3.SessionID == d1.SessionID || h.Get("X-Session-Id") != d3.SessionID {
			t.Fatalf("after idle timeout: %+v", d3)
		}
		var got sessionWithMessages
		e.apiJSON("GET", "/api/sessions/"+d1.SessionID, bob, nil, http.StatusOK, &got)
		if len(got.Messages) != 4 {
			t.Errorf("first session: %d messages", len(got.Messages))
		}
	})
}

func TestContextWindowDropsOldestTurns(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, func(c *gatewayconfig.Config) {
		m := &c.Providers[0].Models[0] // sonnet
		m.ContextWindow, m.MaxOutputTokens = 200, 50
	})
	var s store.Session
	e.apiJSON("POST", "/api/sessions", bob, nil, http.StatusCreated, &s)
	long := strings.Repeat("word ", 40) // 200 bytes: ~54 tokens by the estimate
	var dropped []int
	for i := range 4 {
		_, _, evs := e.turn("/api/sessions/"+s.ID+"/messages", bob, fmt.Sprintf("%d %s", i, long))
		d, _ := done(t, evs)
		if d.Status != "complete" {
			t.Fatalf("turn %d: %+v", i, d)
		}
		dropped = append(dropped, d.DroppedMessages)
	}
	if dropped[0] != 0 || dropped[3] == 0 {
		t.Fatalf("dropped per turn: %v", dropped)
	}
	rec, _ := e.anth.LastRequest()
	var up struct {
		Messages []struct{ Role, Content string }
	}
	_ = rec.JSON(&up)
	if want := 7 - dropped[3]; len(up.Messages) != want || up.Messages[0].Role != "user" || !strings.HasPrefix(up.Messages[len(up.Messages)-1].Content, "3 ") {
		t.Errorf("upstream got %d messages, want %d: %+v", len(up.Messages), want, up.Messages)
	}
	huge := strings.Repeat("x", 2000)
	if code, body := e.api("POST", "/api/sessions/"+s.ID+"/messages", bob, map[string]string{"content": huge}); code != http.StatusBadRequest || !strings.Contains(body, "context window") {
		t.Errorf("too long: %d %s", code, body)
	}
}

func TestStatefulChatUpstreamFailures(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newStoreEnv(t, kind, providersim.Options{Chunks: 8, ReplyWords: 40}, nil)
		var s store.Session
		e.apiJSON("POST", "/api/sessions", bob, map[string]string{"model": "gpt"}, http.StatusCreated, &s)

		// Before the first byte: an ordinary error, the user message kept.
		code, h, evs := e.turn("/api/sessions/"+s.ID+"/messages", bob, "hi [[fault:500,times=1]]")
		if code != http.StatusBadGateway || h.Get("X-Session-Id") != s.ID || !strings.Contains(evs[0].Data, `"type":"upstream"`) {
			t.Fatalf("failure before the first byte: %d %+v", code, evs)
		}
		// The next turn works; the unanswered message is joined to it.
		_, _, evs = e.turn("/api/sessions/"+s.ID+"/messages", bob, "once more")
		if d, _ := done(t, evs); d.Status != "complete" || d.DroppedMessages != 0 {
			t.Errorf("after a failure: %+v", d)
		}
		var up struct {
			Messages []struct{ Role, Content string }
		}
		rec, _ := e.oai.LastRequest()
		_ = rec.JSON(&up)
		if len(up.Messages) != 1 || up.Messages[0].Content != "hi [[fault:500,times=1]]\n\nonce more" {
			t.Errorf("upstream messages %+v", up.Messages)
		}

		// Mid-stream: an error event, the reply kept as incomplete and billed.
		e.apiJSON("POST", "/api/sessions", bob, map[string]string{"model": "gpt"}, http.StatusCreated, &s)
		code, _, evs = e.turn("/api/sessions/"+s.ID+"/messages", bob, "again [[fault:reset=4]]")
		if code != http.StatusOK {
			t.Fatalf("status %d %+v", code, evs)
		}
		d, text := done(t, evs)
		if d.Status != "incomplete" || d.Error == nil || text == "" || evs[len(evs)-2].Name != "error" {
			t.Fatalf("cut stream: %+v %q", d, text)
		}
		var got sessionWithMessages
		e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
		if len(got.Messages) != 2 || got.Messages[1].Status != store.StatusIncomplete || got.Messages[1].Content != text {
			t.Fatalf("stored: %+v", got.Messages)
		}
		e.settle()
		days, _ := e.st.UsageByDay(context.Background(), bob, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), time.UTC)
		if len(days) != 1 || days[0].Requests != 2 || days[0].Tokens.Output <= 8 || days[0].CostPicodollars == 0 {
			t.Errorf("the cut stream is billed for what was streamed: %+v", days)
		}
	})
}

// hasMetric reports whether a line has every label and ends with value
// (labels are matched one by one, so added labels do not break the test).
func hasMetric(lines []string, value string, labels ...string) bool {
	for _, l := range lines {
		ok := strings.HasSuffix(l, value)
		for _, lb := range labels {
			ok = ok && strings.Contains(l, lb)
		}
		if ok {
			return true
		}
	}
	return false
}

// beginFails is a store whose BeginAssistantMessage fails, as a full disk
// or a lost database connection would make it.
type beginFails struct{ store.Store }

var errDiskFull = errors.New("database or disk is full")

func (beginFails) BeginAssistantMessage(context.Context, string, string) (store.Message, error) {
	return store.Message{}, errDiskFull
}

// TestStatefulChatStoreFailure: when the store cannot begin the reply, the
// turn answers 500 saying so, and the request is a store failure in the
// metrics and the log (status 500 with the store's error), not a client
// that went away (499).
func TestStatefulChatStoreFailure(t *testing.T) {
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	e := newStoreEnvWrapped(t, gatewayconfig.StoreEmbedded, providersim.Options{}, log, func(st store.Store) store.Store { return beginFails{st} })
	code, _, evs := e.turn("/api/chat", bob, "hello")
	if code != http.StatusInternalServerError || !strings.Contains(evs[0].Data, "the session store failed") {
		t.Fatalf("%d %+v", code, evs)
	}
	if m := e.metric(`chatgateway_requests_total{end_user="bob@example.com",model="sonnet",provider="anthropic",requested_model="sonnet",status="500"} 1`); len(m) != 1 {
		t.Errorf("requests: %q", e.metric("chatgateway_requests_total"))
	}
	if m := nonZero(e.metric(`chatgateway_requests_total{end_user="bob@example.com"`)); len(m) != 1 {
		t.Errorf("the turn counted other than once: %q", m)
	}
	var served bool
	for _, line := range strings.Split(logs.String(), "\n") {
		served = served || strings.Contains(line, `"msg":"Served request"`) && strings.Contains(line, `"status":500`) && strings.Contains(line, errDiskFull.Error())
	}
	if !served {
		t.Errorf("no log line names the store failure:\n%s", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
