package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// The route × credential × origin matrix: every route the gateway serves,
// called with each credential a caller can bring and from its own page or
// from another site, against the status the rules below promise.
//
// Credentials:
//
//	sidecar  what OAuth2 Proxy forwards for a signed-in person: the
//	         gateway token and the email header
//	key      a personal API key, alone
//	token    the gateway token alone (no email): it is for the sidecar only
//	none     nothing
//
// Origins are what a browser says (Sec-Fetch-Site and Origin): the page's
// own, or another site's. Programs send neither and are judged as the
// page is.
//
// Run with -v to print the table.

type matrixRoute struct {
	pattern string // as registered on the mux
	// ok is what a signed-in admin gets from the page.
	ok int
	// public routes need no credential; keyless ones refuse personal keys.
	public, keyless bool
	// setup makes what the call needs (a fresh session, a key to revoke)
	// and returns its path and body.
	setup func(m *matrixEnv) (path, body string)
}

type matrixEnv struct {
	*storeEnv
	t testing.TB
}

// session makes a fresh session of who and returns its id.
func (m *matrixEnv) session(who string) string {
	var s struct{ ID string }
	m.apiJSON("POST", "/api/sessions", who, map[string]string{"title": "matrix"}, http.StatusCreated, &s)
	return s.ID
}

func (m *matrixEnv) shared(who string) string {
	id := m.session(who)
	m.apiJSON("PUT", "/api/sessions/"+id+"/share", who, nil, http.StatusOK, nil)
	return id
}

func fixed(path, body string) func(*matrixEnv) (string, string) {
	return func(*matrixEnv) (string, string) { return path, body }
}

const (
	matrixChatBody     = `{"model":"gpt","messages":[{"role":"user","content":"hi"}]}`
	matrixMessagesBody = `{"model":"sonnet","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`
	matrixTurnBody     = `{"content":"hi"}`
	matrixSubject      = bob
)

var matrixRoutes = []matrixRoute{
	{pattern: "GET /healthz", ok: 200, public: true, setup: fixed("/healthz", "")},
	{pattern: "GET /readyz", ok: 200, public: true, setup: fixed("/readyz", "")},
	{pattern: "GET /{$}", ok: 200, setup: fixed("/", "")},
	{pattern: "GET /static/", ok: 200, setup: fixed("/static/app.js", "")},
	{pattern: "GET /v1/models", ok: 200, setup: fixed("/v1/models", "")},
	{pattern: "GET /v1/models/{id}", ok: 200, setup: fixed("/v1/models/sonnet", "")},
	{pattern: "POST /v1/messages", ok: 200, setup: fixed("/v1/messages", matrixMessagesBody)},
	{pattern: "POST /v1/messages/count_tokens", ok: 200, setup: fixed("/v1/messages/count_tokens", `{"model":"sonnet","messages":[{"role":"user","content":"hi"}]}`)},
	{pattern: "POST /v1/chat/completions", ok: 200, setup: fixed("/v1/chat/completions", matrixChatBody)},
	{pattern: "POST /v1/images/generations", ok: 200, setup: fixed("/v1/images/generations", `{"model":"canvas","prompt":"a cat","size":"1024x1024"}`)},
	{pattern: "POST /api/sessions", ok: 201, setup: fixed("/api/sessions", `{"title":"t"}`)},
	{pattern: "GET /api/sessions", ok: 200, setup: fixed("/api/sessions", "")},
	{pattern: "GET /api/sessions/{id}", ok: 200, setup: func(m *matrixEnv) (string, string) { return "/api/sessions/" + m.session(alice), "" }},
	{pattern: "PATCH /api/sessions/{id}", ok: 200, setup: func(m *matrixEnv) (string, string) {
		return "/api/sessions/" + m.session(alice), `{"title":"renamed"}`
	}},
	{pattern: "DELETE /api/sessions/{id}", ok: 204, setup: func(m *matrixEnv) (string, string) { return "/api/sessions/" + m.session(alice), "" }},
	{pattern: "POST /api/sessions/{id}/messages", ok: 200, setup: func(m *matrixEnv) (string, string) {
		return "/api/sessions/" + m.session(alice) + "/messages?stream=false", matrixTurnBody
	}},
	{pattern: "POST /api/chat", ok: 200, setup: fixed("/api/chat?stream=false", matrixTurnBody)},
	{pattern: "GET /api/me", ok: 200, setup: fixed("/api/me", "")},
	{pattern: "GET /api/models", ok: 200, setup: fixed("/api/models", "")},
	{pattern: "GET /api/sessions/{id}/attachments/{aid}", ok: 200, setup: func(m *matrixEnv) (string, string) {
		id := m.session(alice)
		msg, err := m.st.AppendMessage(context.Background(), alice, id, store.NewMessage{Role: store.RoleUser, Content: "look",
			Attachments: []store.NewAttachment{{MediaType: "image/png", Name: "p.png", Width: 4, Height: 4, Data: pngOf(m.t, 4, 4)}}})
		if err != nil {
			m.t.Fatal(err)
		}
		return "/api/sessions/" + id + "/attachments/" + msg.Attachments[0].ID, ""
	}},
	{pattern: "GET /api/me/usage", ok: 200, setup: fixed("/api/me/usage", "")},
	{pattern: "GET /api/me/audit", ok: 200, setup: fixed("/api/me/audit", "")},
	{pattern: "GET /api/me/export", ok: 200, setup: fixed("/api/me/export?format=jsonl", "")},
	{pattern: "POST /api/me/import", ok: 200, setup: func(m *matrixEnv) (string, string) {
		return "/api/me/import", fmt.Sprintf(`{"id":"imp-%s","model":"gpt","title":"imported","createdAt":"2026-01-01T00:00:00Z","lastActivityAt":"2026-01-01T00:00:00Z","messages":[]}`+"\n", randomID())
	}},
	{pattern: "DELETE /api/me/data", ok: 204, setup: fixed("/api/me/data", "")},
	{pattern: "GET /api/me/keys", ok: 200, keyless: true, setup: fixed("/api/me/keys", "")},
	{pattern: "POST /api/me/keys", ok: 201, keyless: true, setup: fixed("/api/me/keys", `{"name":"another"}`)},
	{pattern: "DELETE /api/me/keys/{id}", ok: 204, keyless: true, setup: func(m *matrixEnv) (string, string) {
		return "/api/me/keys/" + m.newKey(alice, "to revoke").ID, ""
	}},
	{pattern: "GET /api/admin/usage", ok: 200, setup: fixed("/api/admin/usage", "")},
	{pattern: "GET /api/admin/users/{email}/sessions", ok: 200, setup: fixed("/api/admin/users/"+matrixSubject+"/sessions", "")},
	{pattern: "GET /api/admin/users/{email}/sessions/{id}", ok: 200, setup: func(m *matrixEnv) (string, string) {
		return "/api/admin/users/" + matrixSubject + "/sessions/" + m.session(matrixSubject), ""
	}},
	{pattern: "GET /api/admin/users/{email}/export", ok: 200, setup: fixed("/api/admin/users/"+matrixSubject+"/export", "")},
	{pattern: "PUT /api/sessions/{id}/share", ok: 200, setup: func(m *matrixEnv) (string, string) { return "/api/sessions/" + m.session(alice) + "/share", "" }},
	{pattern: "DELETE /api/sessions/{id}/share", ok: 200, setup: func(m *matrixEnv) (string, string) { return "/api/sessions/" + m.shared(alice) + "/share", "" }},
	{pattern: "GET /api/shared", ok: 200, setup: fixed("/api/shared", "")},
	{pattern: "GET /api/shared/{owner}/{id}", ok: 200, setup: func(m *matrixEnv) (string, string) {
		return "/api/shared/" + matrixSubject + "/" + m.shared(matrixSubject), ""
	}},
}

var idCounter int

func randomID() string { idCounter++; return fmt.Sprintf("%08d", idCounter) }

var (
	matrixCreds   = []string{"sidecar", "key", "token", "none"}
	matrixOrigins = []string{"same-origin", "cross-site"}
)

// expected is the rule: a browser on another site changes nothing (403,
// whoever it is); reading is left to the browser's same-origin policy (no
// CORS header is ever sent, so the other site's script cannot read the
// answer); then no credential, or the token without an email (which is
// what the sidecar forwards for someone not signed in), is 401, and a
// personal key is its owner except where keys are managed.
func expected(r matrixRoute, cred, origin string) int {
	method, _, _ := strings.Cut(r.pattern, " ")
	safe := method == "GET" || method == "HEAD" || method == "OPTIONS"
	switch {
	case origin == "cross-site" && !safe:
		return http.StatusForbidden
	case r.public:
		return r.ok
	case cred == "none" || cred == "token":
		return http.StatusUnauthorized
	case cred == "key" && r.keyless:
		return http.StatusForbidden
	}
	return r.ok
}

func TestRouteCredentialOriginMatrix(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, quietLogger(), func(c *gatewayconfig.Config) {
		c.Privacy = gatewayconfig.Privacy{AdminChatAccess: true, AdminExport: true, CommunitySharing: true}
	}, withCanvas)
	m := &matrixEnv{storeEnv: e, t: t}

	// Every route the gateway registers is in the matrix.
	registered := registeredPatterns(t)
	for _, p := range registered {
		if !slices.ContainsFunc(matrixRoutes, func(r matrixRoute) bool { return r.pattern == p }) {
			t.Errorf("route %q is not in the matrix: add it", p)
		}
	}
	for _, r := range matrixRoutes {
		if !slices.Contains(registered, r.pattern) {
			t.Errorf("the matrix lists %q, which the gateway does not register", r.pattern)
		}
	}

	got := map[string]map[string]int{}
	for _, r := range matrixRoutes {
		got[r.pattern] = map[string]int{}
		for _, cred := range matrixCreds {
			for _, origin := range matrixOrigins {
				path, body := r.setup(m)
				h := http.Header{}
				switch cred {
				case "sidecar":
					h = authHeader(alice)
				case "key":
					h = keyHeader(m.newKey(alice, "matrix").Key)
				case "token":
					h.Set("Authorization", "Bearer "+currentToken)
				}
				if body != "" {
					h.Set("Content-Type", "application/json")
					if r.pattern == "POST /api/me/import" {
						h.Set("Content-Type", "application/x-ndjson")
					}
				}
				switch origin {
				case "same-origin":
					h.Set("Sec-Fetch-Site", "same-origin")
					h.Set("Origin", e.url)
				case "cross-site":
					h.Set("Sec-Fetch-Site", "cross-site")
					h.Set("Origin", "https://evil.example")
				}
				method, _, _ := strings.Cut(r.pattern, " ")
				resp, out := e.do(method, path, h, body)
				got[r.pattern][cred+"/"+origin] = resp.StatusCode
				if want := expected(r, cred, origin); resp.StatusCode != want {
					t.Errorf("%s as %s from %s: %d, want %d: %.200s", r.pattern, cred, origin, resp.StatusCode, want, out)
				}
			}
		}
	}
	// The metrics are not on this port, whoever asks.
	if resp, _ := e.do("GET", "/metrics", authHeader(alice), ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the API port: %d", resp.StatusCode)
	}
	t.Log("\n" + matrixTable(got))
}

func matrixTable(got map[string]map[string]int) string {
	var b strings.Builder
	b.WriteString("| route | sidecar+email same / cross | personal key same / cross | shared token alone same / cross | nothing same / cross |\n|---|---|---|---|---|\n")
	for _, r := range matrixRoutes {
		fmt.Fprintf(&b, "| `%s` |", r.pattern)
		for _, cred := range matrixCreds {
			fmt.Fprintf(&b, " %d / %d |", got[r.pattern][cred+"/same-origin"], got[r.pattern][cred+"/cross-site"])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// registeredPatterns reads the routes the gateway registers from its
// source: every HandleFunc with a method.
func registeredPatterns(t *testing.T) []string {
	re := regexp.MustCompile(`HandleFunc\("([A-Z]+ /[^"]*)"`)
	var out []string
	for _, glob := range []string{"*.go", "chatapi/*.go"} {
		files, _ := filepath.Glob(glob)
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				out = append(out, m[1])
			}
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d routes in the source: %q", len(out), out)
	}
	return out
}
