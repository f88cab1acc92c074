package gateway_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

func TestAuthMatrix(t *testing.T) {
	e := newEnv(t, func(c *gatewayconfig.Config) {
		c.Users = append(c.Users, gatewayconfig.User{Email: "kate@example.com", Role: gatewayconfig.RoleUser})
	})
	const oaiBody = `{"model":"gpt","messages":[{"role":"user","content":"hi"}]}`
	const anthBody = `{"model":"gpt","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	h := func(kv ...string) http.Header {
		out := http.Header{"Content-Type": {"application/json"}}
		for i := 0; i < len(kv); i += 2 {
			// Assigned directly, not with Set: the test controls the exact
			// header names on the wire, underscores included.
			out[kv[i]] = append(out[kv[i]], kv[i+1])
		}
		return out
	}
	bearer := "Bearer " + currentToken
	cases := []struct {
		name       string
		path       string
		header     http.Header
		at         time.Duration // clock offset from epoch
		wantStatus int
		wantMsg    string
		wantUser   string // identity the provider saw
	}{
		{name: "no token", header: h("X-Forwarded-Email", alice), wantStatus: 401, wantMsg: "missing credentials"},
		{name: "wrong token", header: h("Authorization", "Bearer nope", "X-Forwarded-Email", alice), wantStatus: 401, wantMsg: "invalid credentials"},
		{name: "token of other scheme", header: h("Authorization", "Basic "+currentToken, "X-Forwarded-Email", alice), wantStatus: 401, wantMsg: "missing credentials"},
		{name: "spoofed email without token", header: h("X-Forwarded-Email", alice, "X-Gateway-Token", ""), wantStatus: 401},
		{name: "current token", header: h("Authorization", bearer, "X-Forwarded-Email", alice), wantStatus: 200, wantUser: alice},
		{name: "bearer scheme in lower case", header: h("Authorization", "bearer "+currentToken, "X-Forwarded-Email", alice), wantStatus: 200, wantUser: alice},
		{name: "X-Gateway-Token", header: h("X-Gateway-Token", currentToken, "X-Forwarded-Email", alice), wantStatus: 200, wantUser: alice},
		{name: "previous token in grace", header: h("Authorization", "Bearer "+previousToken, "X-Forwarded-Email", alice), at: 9 * time.Minute, wantStatus: 200, wantUser: alice},
		{name: "previous token after grace", header: h("Authorization", "Bearer "+previousToken, "X-Forwarded-Email", alice), at: 10 * time.Minute, wantStatus: 401, wantMsg: "rotated"},
		{name: "x-api-key on the OpenAI front", header: h("X-Api-Key", currentToken, "X-Forwarded-Email", alice), wantStatus: 401},
		{name: "x-api-key on the Anthropic front", path: "/v1/messages", header: h("X-Api-Key", currentToken, "X-Forwarded-Email", alice), wantStatus: 200, wantUser: alice},
		{name: "token without email", header: h("Authorization", bearer), wantStatus: 401, wantMsg: "OAuth2 Proxy"},
		{name: "email not allowed", header: h("Authorization", bearer, "X-Forwarded-Email", "mallory@example.com"), wantStatus: 403, wantMsg: "allowlist"},
		{name: "mixed-case email", header: h("Authorization", bearer, "X-Forwarded-Email", "  Bob@Example.COM "), wantStatus: 200, wantUser: bob},
		// Unicode case folding and trimming would make these kate and
		// alice; the gateway compares in plain ASCII only.
		{name: "Kelvin sign for k", header: h("Authorization", bearer, "X-Forwarded-Email", "\u212aate@example.com"), wantStatus: 403, wantMsg: "U+212A, which is not ASCII"},
		{name: "trailing no-break space", header: h("Authorization", bearer, "X-Forwarded-Email", "alice@example.com\u00a0"), wantStatus: 403, wantMsg: "U+00A0"},
		{name: "bytes that are not UTF-8", header: h("Authorization", bearer, "X-Forwarded-Email", "alice@example.com\xff"), wantStatus: 403, wantMsg: "not ASCII"},
		{name: "the ASCII kate", header: h("Authorization", bearer, "X-Forwarded-Email", "KATE@example.com"), wantStatus: 200, wantUser: "kate@example.com"},
		{name: "underscore variant alone", header: h("Authorization", bearer, "X_Forwarded_Email", alice), wantStatus: 401, wantMsg: "no X-Forwarded-Email"},
		{name: "underscore variant beside the real header", header: h("Authorization", bearer, "X_Forwarded_Email", alice, "X-Forwarded-Email", bob), wantStatus: 200, wantUser: bob},
		{name: "duplicate email headers", header: h("Authorization", bearer, "X-Forwarded-Email", bob, "X-Forwarded-Email", alice), wantStatus: 400, wantMsg: "more than one"},
		{name: "gateway token beside a foreign bearer token", path: "/v1/messages", header: h("Authorization", "Bearer oidc-id-token", "X-Api-Key", currentToken, "X-Forwarded-Email", alice), wantStatus: 200, wantUser: alice},
		{name: "duplicate token headers", header: h("X-Gateway-Token", currentToken, "X-Gateway-Token", "other", "X-Forwarded-Email", alice), wantStatus: 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.clock.Set(epoch.Add(c.at))
			path, body := "/v1/chat/completions", oaiBody
			if c.path != "" {
				path, body = c.path, anthBody
			}
			e.oai.Reset()
			resp, got := e.do("POST", path, c.header, body)
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.wantStatus, got)
			}
			if c.wantStatus != 200 {
				assertErrorDialect(t, path, got, c.wantMsg)
				if e.oai.Served() != 0 {
					t.Error("a refused request reached the provider")
				}
				return
			}
			r, ok := e.oai.LastRequest()
			if !ok {
				t.Fatal("no upstream request")
			}
			var sent struct {
				User string `json:"user"`
			}
			_ = json.Unmarshal(r.Body, &sent)
			if sent.User != c.wantUser {
				t.Errorf("provider saw user %q, want %q", sent.User, c.wantUser)
			}
		})
	}

	t.Run("unauthenticated ops endpoints", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if resp, body := e.do("GET", p, http.Header{}, ""); resp.StatusCode != 200 {
				t.Errorf("%s: %d %s", p, resp.StatusCode, body)
			}
		}
		if !strings.Contains(e.metricsPage(), "chatgateway_requests_total") {
			t.Error("the metrics listener does not serve the request metrics")
		}
	})
	t.Run("metrics are not on the API port, whoever asks", func(t *testing.T) {
		for _, h := range []http.Header{{}, authHeader(alice)} {
			resp, body := e.do("GET", "/metrics", h, "")
			if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "chatgateway_") {
				t.Errorf("GET /metrics on the API port: %d %.200s", resp.StatusCode, body)
			}
		}
		mresp, err := http.Get(e.metricsURL + "/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		mresp.Body.Close()
		if mresp.StatusCode != http.StatusNotFound {
			t.Errorf("the metrics listener serves the API: GET /v1/models answers %d", mresp.StatusCode)
		}
	})
	t.Run("models need a token", func(t *testing.T) {
		if resp, _ := e.do("GET", "/v1/models", http.Header{}, ""); resp.StatusCode != 401 {
			t.Errorf("GET /v1/models without a token: %d", resp.StatusCode)
		}
	})
}

// assertErrorDialect checks the error body is the route's dialect and says why.
func assertErrorDialect(t *testing.T, path, body, wantMsg string) {
	t.Helper()
	var msg string
	if path == "/v1/messages" {
		var v struct {
			Type  string `json:"type"`
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil || v.Type != "error" || v.Error.Type == "" {
			t.Fatalf("not an Anthropic error: %s", body)
		}
		msg = v.Error.Message
	} else {
		var v struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Code    *string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil || v.Error.Type == "" {
			t.Fatalf("not an OpenAI error: %s", body)
		}
		msg = v.Error.Message
	}
	if !strings.Contains(msg, wantMsg) {
		t.Errorf("message %q does not contain %q", msg, wantMsg)
	}
}
