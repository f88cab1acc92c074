package e2e

import (
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestCrossSitePagesChangeNothingInChromium: bob is signed in (through the
// real OAuth2 Proxy) and visits two other sites' pages in the same
// Chromium. Each auto-submits a text/plain form (JSON smuggled as the form's
// one field) to every state-changing route that a form can reach, and
// fetches every state-changing route with credentials. The page on
// another port of the same host is same-site, so the browser sends bob's
// SameSite=Lax cookie and the gateway must refuse it (403); the page on
// "localhost" is cross-site, so the cookie stays behind; OAuth2 Proxy lets
// a request without a session through on /api and /v1 (where personal keys
// are checked by the gateway), and the gateway refuses it as cross-origin
// before it asks who is calling (403 too). Either way nothing of bob's changes: sessions,
// messages, spend, and no request reaches the provider. (Without the
// sidecar's explicit SameSite=Lax, Chromium sends a cookie younger than two
// minutes with another site's top-level POST, its "Lax-allowing-unsafe"
// default, and the "another site" forms fail here.)
func TestCrossSitePagesChangeNothingInChromium(t *testing.T) {
	needChromium(t)
	fd := startFrontDoor(t)
	bob := newChromium(t)
	signInBrowser(t, bob, fd.oidc, fd.base, "bob@example.com")

	// Bob's own page can do what the other sites try: one chat (so he has
	// spent something) and a session.
	sessionID := js[string](t, bob, `fetch("/api/sessions", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({title: "mine"})}).then(r => r.json()).then(s => s.id)`)
	if st := js[int](t, bob, `fetch("/api/chat?stream=false", {method: "POST", headers: {"Content-Type": "application/json"},
		body: JSON.stringify({content: "hello from my own page"})}).then(r => r.status)`); st != http.StatusOK {
		t.Fatalf("bob's own page could not chat: %d", st)
	}
	state := func() string {
		return js[string](t, bob, `Promise.all(["/api/sessions", "/api/sessions/`+sessionID+`", "/api/me/usage"].map(
			(p) => fetch(p).then(r => r.text()))).then(a => a.join("\n"))`)
	}
	before := state()
	if !strings.Contains(before, `"mine"`) || !strings.Contains(before, "hello from my own page") {
		t.Fatalf("bob's state before the attack lacks his session or chat:\n%s", before)
	}
	served := fd.sim.Served()

	routes := []struct{ method, path, body string }{
		{"POST", "/api/sessions", `{"title":"planted"}`},
		{"PATCH", "/api/sessions/" + sessionID, `{"title":"renamed by another site"}`},
		{"POST", "/api/sessions/" + sessionID + "/messages?stream=false", `{"content":"planted message"}`},
		{"POST", "/api/chat?stream=false", `{"content":"planted message"}`},
		{"POST", "/api/me/import", `{"id":"planted","model":"sonnet","title":"From 2999","createdAt":"2999-01-01T00:00:00Z","lastActivityAt":"2999-01-01T00:00:00Z","messages":[]}` + "\n"},
		{"PUT", "/api/sessions/" + sessionID + "/share", ""},
		{"DELETE", "/api/sessions/" + sessionID, ""},
		{"DELETE", "/api/me/data", ""},
		{"POST", "/v1/chat/completions", `{"model":"sonnet","messages":[{"role":"user","content":"spend his quota"}]}`},
		{"POST", "/v1/messages", `{"model":"sonnet","max_tokens":5,"messages":[{"role":"user","content":"spend his quota"}]}`},
	}
	evil := httptest.NewServer(evilSite(fd.base, routes))
	t.Cleanup(evil.Close)
	port := strings.TrimPrefix(evil.URL, "http://127.0.0.1:")

	// A tab of its own in bob's browser (same cookies): the other sites'
	// CORS failures are theirs to log, not the chat page's.
	tabCtx, cancel := chromedp.NewContext(bob.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatal(err)
	}
	nl := newNetLog()
	if err := chromedp.Listen(tabCtx, nl.record); err != nil {
		t.Fatal(err)
	}
	other := &tab{ctx: tabCtx}

	for _, site := range []struct {
		name, origin string
		cookieSent   bool
	}{
		{"same site, another port", "http://127.0.0.1:" + port, true},
		{"another site", "http://localhost:" + port, false},
	} {
		t.Run(site.name, func(t *testing.T) {
			for i, rt := range routes {
				if rt.method != "POST" {
					continue // a form can only GET or POST
				}
				t.Run("form/"+rt.method+" "+rt.path, func(t *testing.T) {
					nl.reset()
					do(t, other, chromedp.Navigate(site.origin+"/form?i="+strconv.Itoa(i)))
					waitJS(t, other, `location.href.startsWith(`+jsString(fd.base)+`)`)
					r := nl.wait(t, "POST", fd.base+rt.path, network.ResourceTypeDocument)
					checkRefused(t, r, site.cookieSent)
					if body := js[string](t, other, `document.body.textContent`); !strings.Contains(body, "cross-origin request refused") {
						t.Errorf("the gateway's answer reads %q", body)
					}
				})
			}
			t.Run("fetch", func(t *testing.T) {
				nl.reset()
				do(t, other, chromedp.Navigate(site.origin+"/fetch"))
				waitJS(t, other, `window.done === true`)
				for _, rt := range routes {
					simple := rt.method == "POST" // text/plain POST: no preflight
					if !simple {
						// The browser asks first (OPTIONS, never with a
						// cookie); nobody grants it, so the request itself
						// must not be sent.
						if r, ok := nl.find(rt.method, fd.base+rt.path, network.ResourceTypeFetch); ok {
							checkRefused(t, r, site.cookieSent)
						}
						continue
					}
					checkRefused(t, nl.wait(t, rt.method, fd.base+rt.path, network.ResourceTypeFetch), site.cookieSent)
				}
			})
		})
	}

	if after := state(); after != before {
		t.Errorf("bob's sessions, messages or spend changed:\nbefore %s\nafter  %s", before, after)
	}
	if n := fd.sim.Served() - served; n != 0 {
		t.Errorf("%d of the other sites' requests reached the provider", n)
	}
}

// checkRefused: with bob's cookie or without it, the gateway refuses the
// cross-origin request with 403 (OAuth2 Proxy's --skip-auth-route passes a
// request without a session on /api and /v1 to the gateway, which checks
// the origin before the caller).
func checkRefused(t *testing.T, r netRequest, cookieExpected bool) {
	t.Helper()
	if r.cookie != cookieExpected {
		t.Errorf("%s %s: sent with the session cookie: %v, want %v", r.method, r.url, r.cookie, cookieExpected)
	}
	if want := int64(http.StatusForbidden); r.status != want {
		t.Errorf("%s %s (cookie %v): status %d, want %d", r.method, r.url, r.cookie, r.status, want)
	}
}

// evilSite serves the other site's pages: /form?i=N auto-submits route N
// as a text/plain form; /fetch fetches every route with credentials and
// sets window.done when all have settled.
func evilSite(target string, routes []struct{ method, path, body string }) http.Handler {
	form := template.Must(template.New("form").Parse(`<!doctype html><title>win a prize</title>
<form method="POST" enctype="text/plain" action="{{.Action}}"><input type="hidden" name="{{.Name}}" value="{{.Value}}"></form>
<script>document.forms[0].submit()</script>`))
	fetches := template.Must(template.New("fetch").Parse(`<!doctype html><title>win a prize</title>
<script>
const routes = {{.}};
Promise.allSettled(routes.map((r) => fetch(r.url, {method: r.method, credentials: "include",
	headers: {"Content-Type": "text/plain"}, body: r.body || undefined}))).then(() => { window.done = true; });
</script>`))
	type req struct {
		Method string `json:"method"`
		URL    string `json:"url"`
		Body   string `json:"body"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/form":
			i, err := strconv.Atoi(r.URL.Query().Get("i"))
			if err != nil || i < 0 || i >= len(routes) {
				http.NotFound(w, r)
				return
			}
			// A text/plain form sends name=value: the JSON is split at
			// its first '=' or, lacking one, ends in "=" after a string
			// the JSON decoder never reaches.
			name, value := routes[i].body, ""
			if k := strings.IndexByte(name, '='); k >= 0 {
				name, value = name[:k], name[k+1:]
			}
			_ = form.Execute(w, map[string]string{"Action": target + routes[i].path, "Name": name, "Value": value})
		case "/fetch":
			var rs []req
			for _, rt := range routes {
				rs = append(rs, req{rt.method, target + rt.path, rt.body})
			}
			_ = fetches.Execute(w, rs)
		default:
			http.NotFound(w, r)
		}
	})
}

// netLog is what one tab's network did, from Chromium's DevTools events:
// the ExtraInfo events carry the headers really sent (the cookie) and the
// status even of an answer CORS keeps from the page.
type netLog struct {
	mu   sync.Mutex
	reqs map[network.RequestID]*netRequest
}

type netRequest struct {
	method, url string
	kind        network.ResourceType
	cookie      bool
	status      int64
}

func newNetLog() *netLog { return &netLog{reqs: map[network.RequestID]*netRequest{}} }

func (l *netLog) get(id network.RequestID) *netRequest {
	r := l.reqs[id]
	if r == nil {
		r = &netRequest{}
		l.reqs[id] = r
	}
	return r
}

func (l *netLog) record(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		r := l.get(e.RequestID)
		r.method, r.url, r.kind = e.Request.Method, e.Request.URL, e.Type
	case *network.EventRequestWillBeSentExtraInfo:
		for k, v := range e.Headers {
			if strings.EqualFold(k, "cookie") && strings.Contains(fmt.Sprint(v), "_oauth2_proxy=") {
				l.get(e.RequestID).cookie = true
			}
		}
	case *network.EventResponseReceivedExtraInfo:
		l.get(e.RequestID).status = e.StatusCode
	case *network.EventResponseReceived:
		l.get(e.RequestID).status = e.Response.Status
	}
}

// find returns the last request of that method, URL and kind that got an answer.
func (l *netLog) find(method, u string, kind network.ResourceType) (netRequest, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found *netRequest
	for _, r := range l.reqs {
		if r.method == method && sameURL(r.url, u) && r.kind == kind && r.status != 0 {
			found = r
		}
	}
	if found == nil {
		return netRequest{}, false
	}
	return *found, true
}

func (l *netLog) wait(t *testing.T, method, u string, kind network.ResourceType) netRequest {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r, ok := l.find(method, u, kind); ok {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("Chromium never sent %s %s (%s), or it got no answer", method, u, kind)
	return netRequest{}
}

// reset forgets what was seen, so that an earlier request to the same
// route is not mistaken for the next one.
func (l *netLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = map[network.RequestID]*netRequest{}
}

func sameURL(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.String() == ub.String()
}
