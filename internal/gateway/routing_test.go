package gateway_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// TestRoutingRuleOrder: for model "auto" the first rule whose every
// condition holds wins (role, regexp on the last user message, estimated
// input tokens), else the default model. The response comes from the
// chosen model and metrics label it as model, with requested_model="auto".
func TestRoutingRuleOrder(t *testing.T) {
	e := newEnv(t, func(c *gatewayconfig.Config) {
		c.Routing.Rules = []gatewayconfig.RoutingRule{
			{Name: "admin-code", Roles: []string{gatewayconfig.RoleAdmin}, MessageMatches: `(?i)\bcode\b`, Model: "sonnet"},
			{Name: "short", MaxInputTokens: 10, Model: "gpt"},
			{Name: "long-admin", MinInputTokens: 11, Roles: []string{gatewayconfig.RoleAdmin}, Model: "both"},
		}
		c.DefaultModel = "sonnet"
	})
	long := strings.Repeat("word ", 20) // 100 bytes: 25 estimated tokens
	cases := []struct {
		name, who, front, text, wantModelID, wantAlias string
	}{
		{"first rule beats a later match", alice, "openai", "write code for me", sonnetID, "sonnet"},
		{"role filters the first rule", bob, "openai", "write code for me", gptID, "gpt"},
		{"regexp sees only the last user message", alice, "anthropic", "hello", gptID, "gpt"},
		{"min tokens and role", alice, "openai", long, haikuID, "both"},
		{"no rule: default", bob, "anthropic", long, sonnetID, "sonnet"},
	}
	for _, tc := range cases {
		path := "/v1/chat/completions"
		body := `{"model":"auto","max_tokens":20,"messages":[{"role":"user","content":"earlier code question"},{"role":"assistant","content":"ok"},{"role":"user","content":` + jsonQuote(tc.text) + `}]}`
		if tc.front == "anthropic" {
			path = "/v1/messages"
		}
		resp, out := send(t, e.url, path, tc.who, body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(out, "Simulated reply from "+tc.wantModelID+" ") {
			t.Errorf("%s: %d %s, want a reply from %s", tc.name, resp.StatusCode, out, tc.wantModelID)
		}
	}
	want := map[string]string{
		`chatgateway_requests_total{end_user="alice@example.com",model="sonnet",provider="anthropic",requested_model="auto",status="200"} 1`: "",
		`chatgateway_requests_total{end_user="bob@example.com",model="gpt",provider="openai",requested_model="auto",status="200"} 1`:         "",
		`chatgateway_requests_total{end_user="alice@example.com",model="both",provider="anthropic",requested_model="auto",status="200"} 1`:   "",
	}
	for m := range want {
		if len(e.metric(m)) != 1 {
			t.Errorf("missing %s in %q", m, e.metric("chatgateway_requests_total"))
		}
	}
	// An unknown name is refused and labelled "", never with what was typed.
	send(t, e.url, "/v1/chat/completions", alice, `{"model":"my secret model","messages":[{"role":"user","content":"hi"}]}`)
	if m := e.metric(`chatgateway_requests_total{end_user="alice@example.com",model="my secret model"`); len(m) != 0 {
		t.Errorf("free text in a label: %q", m)
	}
	if m := e.metric(`chatgateway_requests_total{end_user="alice@example.com",model="",provider="",requested_model="",status="404"} 1`); len(m) != 1 {
		t.Errorf("unknown model: %q", e.metric("chatgateway_requests_total"))
	}

	// "auto" is listed, and can be fetched, when rules exist.
	_, list := e.do("GET", "/v1/models", authHeader(alice), "")
	var l struct{ Data []struct{ ID string } }
	_ = json.Unmarshal([]byte(list), &l)
	var ids []string
	for _, d := range l.Data {
		ids = append(ids, d.ID)
	}
	if strings.Join(ids, ",") != "auto,both,gpt,sonnet" {
		t.Errorf("models %v", ids)
	}
	if resp, _ := e.do("GET", "/v1/models/auto", authHeader(alice), ""); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/models/auto: %d", resp.StatusCode)
	}
}

// TestNoAutoWithoutRules: without rules "auto" is not listed (and is
// served as the default model).
func TestNoAutoWithoutRules(t *testing.T) {
	e := newEnv(t)
	if _, list := e.do("GET", "/v1/models", authHeader(alice), ""); strings.Contains(list, `"auto"`) {
		t.Errorf("auto listed without rules: %s", list)
	}
	if resp, out := send(t, e.url, "/v1/chat/completions", alice, `{"model":"auto","messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 || !strings.Contains(out, sonnetID) {
		t.Errorf("auto without rules: %d %s", resp.StatusCode, out)
	}
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
