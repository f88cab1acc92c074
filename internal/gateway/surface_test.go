package gateway_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// stateChanging are the routes that change something, each with a body a
// page on another site would try to send (JSON in a text/plain form).
func stateChanging(sessionID string) []struct{ method, path, body string } {
	return []struct{ method, path, body string }{
		{"POST", "/api/sessions", `{"title":"planted"}`},
		{"PATCH", "/api/sessions/" + sessionID, `{"title":"renamed by another site"}`},
		{"POST", "/api/sessions/" + sessionID + "/messages?stream=false", `{"content":"planted message"}`},
		{"POST", "/api/chat?stream=false", `{"content":"planted message"}`},
		{"POST", "/api/me/import", `{"id":"planted","model":"sonnet","title":"From 2999","createdAt":"2999-01-01T00:00:00Z","lastActivityAt":"2999-01-01T00:00:00Z","messages":[]}` + "\n"},
		{"DELETE", "/api/sessions/" + sessionID, ""},
		{"DELETE", "/api/me/data", ""},
		{"POST", "/v1/chat/completions", `{"model":"gpt","messages":[{"role":"user","content":"spend their quota"}]}`},
		{"POST", "/v1/messages", `{"model":"gpt","max_tokens":5,"messages":[{"role":"user","content":"spend their quota"}]}`},
	}
}

// TestCrossSiteRequestsChangeNothing: a page on another site makes the
// browser of a signed-in person (whose requests OAuth2 Proxy passes on with
// the token and their email) send every state-changing request: as a form
// would (text/plain, the browser's Sec-Fetch-Site and Origin), and as
// fetch would. Each is refused with 403 in the route's dialect and nothing
// changes; the same requests from the page itself work.
func TestCrossSiteRequestsChangeNothing(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil)
	var s store.Session
	e.apiJSON("POST", "/api/sessions", bob, map[string]string{"title": "mine"}, http.StatusCreated, &s)
	host := strings.TrimPrefix(e.url, "http://")
	for _, browser := range []struct {
		name    string
		headers map[string]string
	}{
		{"form, modern browser", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Origin": "https://evil.example", "Content-Type": "text/plain"}},
		{"fetch, modern browser", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Origin": "https://evil.example", "Content-Type": "application/json"}},
		{"a sibling subdomain", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://evil.chat.example", "Content-Type": "text/plain"}},
		{"form, browser without Sec-Fetch-Site", map[string]string{"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"}},
		{"opaque origin (sandboxed frame)", map[string]string{"Origin": "null", "Content-Type": "text/plain"}},
	} {
		for _, rt := range stateChanging(s.ID) {
			t.Run(browser.name+"/"+rt.method+" "+rt.path, func(t *testing.T) {
				h := authHeader(bob)
				for k, v := range browser.headers {
					h.Set(k, v)
				}
				e.oai.Reset()
				resp, body := e.do(rt.method, rt.path, h, rt.body)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "cross-origin request refused") {
					t.Fatalf("status %d, want 403: %s", resp.StatusCode, body)
				}
				if strings.HasPrefix(rt.path, "/v1/") {
					assertErrorDialect(t, strings.TrimSuffix(rt.path, "?stream=false"), body, "cross-origin")
				} else if !strings.Contains(body, `"type":"permission"`) {
					t.Errorf("not the /api error shape: %s", body)
				}
				if e.oai.Served() != 0 {
					t.Error("the refused request reached the provider")
				}
			})
		}
	}
	// Nothing changed: bob's one session, untitled again, no message.
	var list struct{ Sessions []store.Session }
	e.apiJSON("GET", "/api/sessions", bob, nil, 200, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].Title != "mine" {
		t.Fatalf("after the cross-site requests bob has %+v", list.Sessions)
	}
	if msgs, err := e.st.ListMessages(t.Context(), bob, s.ID); err != nil || len(msgs) != 0 {
		t.Fatalf("messages planted: %d, %v", len(msgs), err)
	}

	// The page's own requests, as Chromium sends them, and a program's.
	for _, same := range []map[string]string{
		{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + host},
		{"Origin": "http://" + host},
		{"Sec-Fetch-Site": "none"}, // typed in the address bar: not a request another site made
		{},                         // a program: no browser headers at all
	} {
		h := authHeader(bob)
		for k, v := range same {
			h.Set(k, v)
		}
		resp, body := e.do("PATCH", "/api/sessions/"+s.ID, h, `{"title":"renamed by me"}`)
		if resp.StatusCode != 200 {
			t.Errorf("same-origin rename with %v: %d %s", same, resp.StatusCode, body)
		}
	}
}

// TestJSONRoutesWantJSON: a body must say it is JSON (JSON Lines for an
// import), which no HTML form can.
func TestJSONRoutesWantJSON(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil)
	var s store.Session
	e.apiJSON("POST", "/api/sessions", alice, nil, http.StatusCreated, &s)
	post := func(path, ctype, body string) (int, string) {
		h := authHeader(alice)
		if ctype == "" {
			h.Del("Content-Type")
		} else {
			h.Set("Content-Type", ctype)
		}
		resp, out := e.do("POST", path, h, body)
		return resp.StatusCode, out
	}
	chat := `{"content":"hi"}`
	line := `{"id":"imported-1","model":"sonnet","title":"old","messages":[]}` + "\n"
	for _, c := range []struct {
		path, ctype, body string
		want              int
	}{
		{"/api/chat?stream=false", "text/plain", chat, 415},
		{"/api/chat?stream=false", "application/x-www-form-urlencoded", chat, 415},
		{"/api/chat?stream=false", "multipart/form-data; boundary=x", chat, 415},
		{"/api/chat?stream=false", "", chat, 415},
		{"/api/chat?stream=false", "application/json; charset=latin1", chat, 415},
		{"/api/chat?stream=false", "text/json", chat, 415},
		{"/v1/chat/completions", "text/plain", `{"model":"gpt","messages":[{"role":"user","content":"hi"}]}`, 415},
		{"/v1/messages", "text/plain", `{"model":"gpt","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 415},
		{"/api/me/import", "text/plain", line, 415},
		{"/api/chat?stream=false", "Application/JSON; charset=UTF-8", chat, 200},
		{"/api/sessions/" + s.ID + "/messages?stream=false", "application/json", chat, 200},
		{"/v1/chat/completions", "application/json", `{"model":"gpt","messages":[{"role":"user","content":"hi"}]}`, 200},
		{"/api/me/import", "application/x-ndjson", line, 200},
		{"/api/me/import", "application/jsonl", strings.ReplaceAll(line, "imported-1", "imported-2"), 200},
	} {
		code, body := post(c.path, c.ctype, c.body)
		if code != c.want {
			t.Errorf("POST %s as %q: %d, want %d: %s", c.path, c.ctype, code, c.want, body)
		}
		if c.want == 415 && !strings.Contains(body, "Content-Type: application/") {
			t.Errorf("POST %s as %q: the refusal does not say what to send: %s", c.path, c.ctype, body)
		}
	}
	// A DELETE or PUT without a body needs no type.
	h := authHeader(alice)
	h.Del("Content-Type")
	if resp, body := e.do("DELETE", "/api/sessions/"+s.ID, h, ""); resp.StatusCode != 204 {
		t.Errorf("DELETE without a body or a type: %d %s", resp.StatusCode, body)
	}
}

// TestImportLimits: an import is bounded in size and in what the person
// stores; either stops it with a 413 in JSON that says how far it got.
// Imported times never lie in the future.
func TestImportLimits(t *testing.T) {
	const perUser = 4096
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, func(c *gatewayconfig.Config) {
		c.Import.MaxBodyBytes = 8192
		c.Import.MaxStoredBytesPerUser = perUser
	})
	session := func(id string, textBytes int) string {
		b, _ := json.Marshal(store.ExportedSession{Session: store.Session{ID: id, Model: "sonnet", Title: "t",
			CreatedAt: time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC), LastActivityAt: time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)},
			Messages: []store.Message{{ID: id + "-m", Role: store.RoleUser, Content: strings.Repeat("x", textBytes)}}})
		return string(b) + "\n"
	}
	var res struct {
		Imported int
		Error    struct{ Type, Message string }
	}
	// 1500 + 1500 bytes fit in 4096; the third would not.
	code, body := e.api("POST", "/api/me/import", alice, session("a", 1500)+session("b", 1500)+session("c", 1500))
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != http.StatusRequestEntityTooLarge || res.Imported != 2 ||
		res.Error.Type != "too_large" || !strings.Contains(res.Error.Message, "line 3") || !strings.Contains(res.Error.Message, "4 KiB each person may keep") {
		t.Fatalf("over the per-person limit: %d %s", code, body)
	}
	if n, _ := e.st.StoredBytes(t.Context(), alice); n > perUser {
		t.Errorf("alice stores %d bytes, over the %d limit", n, perUser)
	}
	// The body limit, whatever the person stores: bob has room, the body is too big.
	code, body = e.api("POST", "/api/me/import", bob, session("d", 1000)+session("e", 9000))
	res.Imported, res.Error.Type = -1, ""
	if err := json.Unmarshal([]byte(body), &res); err != nil || code != http.StatusRequestEntityTooLarge || res.Imported != 1 ||
		res.Error.Type != "too_large" || !strings.Contains(res.Error.Message, "larger than 8 KiB") {
		t.Fatalf("over the body limit: %d %s", code, body)
	}
	// Dated 2999 in the archive, imported now.
	got, err := e.st.GetSession(t.Context(), alice, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt.After(e.clock.Now()) || got.LastActivityAt.After(e.clock.Now()) {
		t.Errorf("an imported session is dated %v, after now", got.LastActivityAt)
	}
}

// TestSlowBodyIsCut: a client that sends its headers and then trickles
// the body is cut off at requestBodyTimeout (an import at
// import.bodyTimeout); a streamed answer that runs longer than that is not.
func TestSlowBodyIsCut(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{Chunks: 10, EventDelay: 60 * time.Millisecond}, nil, func(c *gatewayconfig.Config) {
		c.RequestBodyTimeout = gatewayconfig.D(300 * time.Millisecond)
		c.Import.BodyTimeout = gatewayconfig.D(700 * time.Millisecond)
	})
	u, _ := url.Parse(e.url)
	for _, path := range []string{"/v1/chat/completions", "/api/chat?stream=false", "/api/me/import"} {
		t.Run(path, func(t *testing.T) {
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nX-Forwarded-Email: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"content\":",
				path, u.Host, currentToken, alice)
			start := time.Now()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			// Trickle a byte every 100 ms for as long as the server listens.
			go func() {
				for range 100 {
					time.Sleep(100 * time.Millisecond)
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			took := time.Since(start)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode < 400 {
					t.Errorf("a trickled body was served: %d %s", resp.StatusCode, b)
				}
			}
			// The trickle would go on for 10 s; the bound is well under 1 s.
			if took > 3*time.Second {
				t.Errorf("the trickled body held the request for %v", took)
			}
			t.Logf("cut after %v (answer: %v)", took.Round(time.Millisecond), err == nil)
		})
	}

	// A stream of 11 events 60 ms apart outlasts the body timeout.
	_, _, evs := e.turn("/api/chat", alice, "a slow reply please")
	if d, _ := done(t, evs); d.Status != string(store.StatusComplete) {
		t.Errorf("a reply longer than the body timeout ended %q", d.Status)
	}
}
