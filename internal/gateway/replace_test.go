package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// turnWith sends a streamed turn with body as its JSON (a string is sent
// as it is) and returns its status, headers and events; an answer that
// is not a stream is one event named "body".
func (e *storeEnv) turnWith(path, who string, body any) (int, http.Header, []sseEv) {
	e.t.Helper()
	b, ok := body.(string)
	if !ok {
		j, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		b = string(j)
	}
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(b))
	req.Header = authHeader(who)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, []sseEv{{Name: "body", Data: string(out)}}
	}
	return resp.StatusCode, resp.Header, readSSE(e.t, resp.Body)
}

// upstreamTurns is what the last request to sim said, turn by turn.
func upstreamTurns(t *testing.T, sim *providersim.Server) []string {
	t.Helper()
	rec, _ := sim.LastRequest()
	var up struct {
		Messages []struct{ Role, Content string }
	}
	if err := rec.JSON(&up); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range up.Messages {
		out = append(out, m.Role+": "+m.Content)
	}
	return out
}

// TestReplaceRunsATurnAgain: regenerate (the last message with its own
// text), edit and resend (an earlier one with new text), and retry after
// a failure (the failed message, named by X-User-Message-Id): the turn
// sees only what came before the replaced message, the session keeps one
// copy of it, and the ledger keeps every turn that was paid for.
func TestReplaceRunsATurnAgain(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newStoreEnv(t, kind, providersim.Options{}, nil)
		var s store.Session
		e.apiJSON("POST", "/api/sessions", bob, map[string]string{"model": "sonnet"}, http.StatusCreated, &s)
		path := "/api/sessions/" + s.ID + "/messages"
		var ids []string
		for _, q := range []string{"[[echo]]one", "[[echo]]two", "[[echo]]three"} {
			code, h, evs := e.turn(path, bob, q)
			d, _ := done(t, evs)
			if code != http.StatusOK || d.Status != "complete" || h.Get("X-User-Message-Id") != d.UserMessageID || d.UserMessageID == "" {
				t.Fatalf("turn %q: %d %+v, X-User-Message-Id %q", q, code, d, h.Get("X-User-Message-Id"))
			}
			ids = append(ids, d.UserMessageID)
		}

		// Regenerate: the last message with its own text.
		code, h, evs := e.turnWith(path, bob, map[string]string{"content": "[[echo]]three again", "replace": ids[2]})
		d, text := done(t, evs)
		if code != http.StatusOK || d.Status != "complete" || d.UserMessageID != ids[2] || h.Get("X-User-Message-Id") != ids[2] || text != "three again" {
			t.Fatalf("regenerate: %d %+v %q", code, d, text)
		}
		if got, want := upstreamTurns(t, e.anth), []string{"user: [[echo]]one", "assistant: one", "user: [[echo]]two", "assistant: two", "user: [[echo]]three again"}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("regenerate sent %q, want %q", got, want)
		}
		var got sessionWithMessages
		e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
		if n := len(got.Messages); n != 6 || got.Messages[4].ID != ids[2] || got.Messages[4].Content != "[[echo]]three again" || got.Messages[5].Content != "three again" {
			t.Fatalf("after regenerate: %+v", got.Messages)
		}

		// Edit the first message: everything after it goes, and the title
		// it gave the session follows it.
		_, _, evs = e.turnWith(path, bob, map[string]string{"content": "[[echo]]uno", "replace": ids[0]})
		if d, text := done(t, evs); d.Status != "complete" || text != "uno" {
			t.Fatalf("edit: %+v %q", d, text)
		}
		if got := upstreamTurns(t, e.anth); len(got) != 1 || got[0] != "user: [[echo]]uno" {
			t.Errorf("edit sent %q", got)
		}
		e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
		if len(got.Messages) != 2 || got.Messages[0].ID != ids[0] || got.Title != "[[echo]]uno" {
			t.Fatalf("after edit: %q %+v", got.Title, got.Messages)
		}

		// A turn that fails before its first byte keeps its message and
		// says which it is; the retry replaces it.
		code, h, evs = e.turn(path, bob, "[[fault:400]] hello")
		failed := h.Get("X-User-Message-Id")
		if code != http.StatusBadRequest || failed == "" || evs[0].Name != "body" {
			t.Fatalf("failed turn: %d %q %+v", code, failed, evs)
		}
		_, _, evs = e.turnWith(path, bob, map[string]string{"content": "[[echo]]hello", "replace": failed})
		if d, text := done(t, evs); d.Status != "complete" || d.UserMessageID != failed || text != "hello" {
			t.Fatalf("retry: %+v %q", d, text)
		}
		e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
		var users []string
		for _, m := range got.Messages {
			if m.Role == store.RoleUser {
				users = append(users, m.Content)
			}
		}
		if strings.Join(users, "|") != "[[echo]]uno|[[echo]]hello" {
			t.Errorf("user messages after the retry: %q", users)
		}

		// Every paid turn stays in the ledger: 3 + regenerate + edit + the
		// retry (the refused one cost nothing and has no row).
		e.settle()
		days, err := e.st.UsageByDay(context.Background(), bob, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 1 || days[0].Requests < 6 {
			t.Errorf("ledger: %+v", days)
		}
	})
}

// TestReplaceRefusals: replace must name a user message of the session;
// an assistant's is 400 in the /api shape, an unknown id or another
// person's session 404, and nothing changes.
func TestReplaceRefusals(t *testing.T) {
	e := newStoreEnv(t, "Embedded", providersim.Options{}, nil)
	var s store.Session
	e.apiJSON("POST", "/api/sessions", bob, nil, http.StatusCreated, &s)
	path := "/api/sessions/" + s.ID + "/messages"
	_, _, evs := e.turn(path, bob, "[[echo]]hi")
	d, _ := done(t, evs)

	for _, tc := range []struct {
		name, who, path string
		body            any
		status          int
		inBody          string
	}{
		{"an assistant message", bob, path, map[string]string{"content": "x", "replace": d.MessageID}, 400, `{"error":{"type":"invalid_request","message":"replace must name one of your messages in this conversation"}}`},
		{"an unknown id", bob, path, map[string]string{"content": "x", "replace": "nope"}, 404, `"type":"not_found"`},
		{"another person's session", alice, path, map[string]string{"content": "x", "replace": d.UserMessageID}, 404, `"type":"not_found"`},
		{"replace not a string", bob, path, `{"content": "x", "replace": 7}`, 400, `"type":"invalid_request"`},
	} {
		code, _, evs := e.turnWith(tc.path, tc.who, tc.body)
		if code != tc.status || evs[0].Name != "body" || !strings.Contains(evs[0].Data, tc.inBody) {
			t.Errorf("%s: %d %+v", tc.name, code, evs)
		}
	}
	var got sessionWithMessages
	e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
	if len(got.Messages) != 2 || got.Messages[0].Content != "[[echo]]hi" {
		t.Errorf("the refusals changed the session: %+v", got.Messages)
	}
}

// TestStoppedTurnKeepsWhatWasShown: a client that hangs up mid-stream
// (the page's Stop) leaves the reply as it saw it, marked incomplete at
// once, while the gateway still reads the provider's answer to bill it.
func TestStoppedTurnKeepsWhatWasShown(t *testing.T) {
	e := newStoreEnv(t, "Embedded", providersim.Options{ReplyWords: 40, Chunks: 20, EventDelay: 100 * time.Millisecond}, nil)
	var s store.Session
	e.apiJSON("POST", "/api/sessions", bob, nil, http.StatusCreated, &s)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url+"/api/sessions/"+s.ID+"/messages", strings.NewReader(`{"content":"talk"}`))
	req.Header = authHeader(bob)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "event: delta") {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		seen.Write(buf[:n])
	}
	cancel()
	resp.Body.Close()

	var got sessionWithMessages
	waitFor(t, "the reply to be finished as stopped", func() bool {
		e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
		return len(got.Messages) == 2 && got.Messages[1].Status == store.StatusIncomplete
	})
	reply := got.Messages[1].Content
	if !strings.HasPrefix(reply, "Simulated reply") || len(strings.Fields(reply)) >= 40 {
		t.Errorf("the stopped reply reads %q", reply)
	}
	// The provider's whole answer is read and billed; the message stays
	// as the person saw it.
	e.settle()
	days, err := e.st.UsageByDay(context.Background(), bob, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), time.UTC)
	if err != nil || len(days) != 1 || days[0].Requests != 1 || days[0].Tokens.Output == 0 {
		t.Errorf("ledger: %+v %v", days, err)
	}
	e.apiJSON("GET", "/api/sessions/"+s.ID, bob, nil, http.StatusOK, &got)
	if got.Messages[1].Content != reply || got.Messages[1].Status != store.StatusIncomplete {
		t.Errorf("after the answer was read: %q %s", got.Messages[1].Content, got.Messages[1].Status)
	}
}
