package gateway_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// lockedBuffer collects logs from concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCanaryLeaksNowhere runs whole conversations, stateless and stateful,
// streamed and not, with failures, around a unique canary prompt, and looks
// for the canary everywhere except the one place it belongs (the owner's
// decrypted session): the logs at debug level, /metrics, every error body,
// the ledger and usage answers, and the bytes of the SQLite files.
func TestCanaryLeaksNowhere(t *testing.T) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	canary := "CANARY" + hex.EncodeToString(b[:])
	logs := &lockedBuffer{}
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{Chunks: 5}, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		func(c *gatewayconfig.Config) { c.Privacy.AdminChatAccess = false })
	prompt := "Please remember the code word " + canary + " for later."
	var errorBodies []string
	check := func(what string, code int, body string) {
		t.Helper()
		if code >= 400 {
			errorBodies = append(errorBodies, what+": "+body)
		}
	}

	// Stateless, both fronts, streamed and not, one failing mid-stream and
	// one failing before the first byte.
	anth := func(text string, stream bool) string {
		j, _ := json.Marshal(map[string]any{"model": "sonnet", "max_tokens": 100, "stream": stream,
			"messages": []map[string]string{{"role": "user", "content": text}}})
		return string(j)
	}
	oai := func(text string, stream bool) string {
		j, _ := json.Marshal(map[string]any{"model": "gpt", "stream": stream,
			"messages": []map[string]string{{"role": "user", "content": text}}})
		return string(j)
	}
	h := authHeader(bob)
	h.Set("Anthropic-Version", "2023-06-01")
	for _, req := range []struct {
		path, body string
	}{
		{"/v1/messages", anth(prompt, false)},
		{"/v1/messages", anth(prompt, true)},
		{"/v1/chat/completions", oai(prompt, false)},
		{"/v1/chat/completions", oai(prompt, true)},
		{"/v1/chat/completions", oai(prompt+" [[fault:reset=3]]", true)},
		{"/v1/chat/completions", oai(prompt+" [[fault:400]]", false)},
		{"/v1/messages", `{"model": "sonnet", "messages": [` + canary},
	} {
		resp, body := e.do("POST", req.path, h, req.body)
		check(req.path, resp.StatusCode, body)
		if strings.Contains(body, "error") && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") || resp.StatusCode >= 400 {
			errorBodies = append(errorBodies, body)
		}
		if strings.Contains(req.body, "reset") {
			errorBodies = append(errorBodies, body[strings.LastIndex(body, "data: "):])
		}
	}

	// Stateful: a streamed conversation, a continued one, a cut one, a
	// failed one, and bad requests.
	_, _, evs := e.turn("/api/chat", bob, prompt)
	d, _ := done(t, evs)
	_, _, evs = e.turn("/api/sessions/"+d.SessionID+"/messages", bob, "And what was the code word? "+canary)
	done(t, evs)
	_, _, evs = e.turn("/api/sessions/"+d.SessionID+"/messages", bob, canary+" [[fault:reset=5]]")
	for _, ev := range evs {
		if ev.Name == "error" || ev.Name == "done" {
			errorBodies = append(errorBodies, ev.Data)
		}
	}
	var s store.Session
	e.apiJSON("POST", "/api/sessions", bob, map[string]string{"model": "gpt"}, http.StatusCreated, &s)
	code, _, evs := e.turn("/api/sessions/"+s.ID+"/messages", bob, canary+" [[fault:500]]")
	check("failed turn", code, evs[0].Data)
	// (A model name is not content: an unknown one is named back to its
	// sender, so the canary stays out of the model field.)
	for _, bad := range []string{`{"content": 1, "x": "` + canary + `"}`, `{"content": "` + canary} {
		code, body := e.api("POST", "/api/chat", bob, bad)
		check("bad chat", code, body)
	}
	code, body := e.api("GET", "/api/sessions/"+d.SessionID, alice, nil)
	check("someone else's session", code, body)
	code, body = e.api("POST", "/api/me/import", bob, `{"id": "`+canary)
	check("bad import", code, body)

	// The canary is where it belongs.
	var got sessionWithMessages
	e.apiJSON("GET", "/api/sessions/"+d.SessionID, bob, nil, 200, &got)
	if len(got.Messages) < 4 || !strings.Contains(got.Messages[0].Content, canary) || !strings.Contains(got.Title, canary) {
		t.Fatalf("the conversation was not stored: %+v", got)
	}

	if len(errorBodies) < 8 {
		t.Fatalf("only %d error bodies collected", len(errorBodies))
	}
	for _, eb := range errorBodies {
		if strings.Contains(eb, canary) {
			t.Errorf("canary in an error body: %s", eb)
		}
	}
	metrics := e.metricsPage()
	_, myUsage := e.api("GET", "/api/me/usage", bob, nil)
	_, adminUsage := e.api("GET", "/api/admin/usage", alice, nil)
	_, audit := e.api("GET", "/api/me/audit", bob, nil)
	e.settle()
	for what, text := range map[string]string{"logs": logs.String(), "metrics": metrics, "usage": myUsage, "admin usage": adminUsage, "audit": audit} {
		if text == "" {
			t.Errorf("%s: empty", what)
		}
		if strings.Contains(text, canary) {
			t.Errorf("canary in %s", what)
		}
	}
	if !strings.Contains(logs.String(), "Served request") {
		t.Error("the logs were not captured")
	}
	// Every byte of the database, the ledger included.
	files, _ := filepath.Glob(e.cfg.Sessions.Store.Path + "*")
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(canary)) || bytes.Contains(raw, []byte("code word")) {
			t.Errorf("plaintext in %s", filepath.Base(f))
		}
	}
}
