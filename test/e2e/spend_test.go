package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// The five ways a family member could make the gateway bill less than the
// providers bill, each tried against the real binary (see issue 10). Set
// E2E_GATEWAY to run them against another build of cmd/gateway.

// spendGateway is a gateway process with the Embedded store, alice an
// admin and bob a user, in front of an Anthropic simulator (model sonnet)
// and an OpenAI-compatible one (model nova, at most 777 output tokens).
type spendGateway struct {
	base       string
	proc       *process
	anth, oai  *providersim.Server
	dir        string
	configPath string
}

func startSpendGateway(t *testing.T, sim providersim.Options, mutate func(*gatewayconfig.Config)) *spendGateway {
	t.Helper()
	bin := buildGateway(t)
	g := &spendGateway{dir: t.TempDir()}
	sim.APIKey = "sk-ant"
	var anthURL, oaiURL string
	g.anth, anthURL = providersim.Start(t, sim)
	sim.APIKey = "sk-oai"
	g.oai, oaiURL = providersim.Start(t, sim)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(filepath.Join(g.dir, "master-key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	g.configPath = writeConfig(t, g.dir, anthURL, oaiURL, func(c *gatewayconfig.Config) {
		c.Keys.MasterKeyFile = filepath.Join(g.dir, "master-key")
		c.Sessions.Store.Path = filepath.Join(g.dir, "store.db")
		c.Users = []gatewayconfig.User{{Email: email, Role: gatewayconfig.RoleAdmin}, {Email: bob, Role: gatewayconfig.RoleUser}}
		c.Providers[1].Models[0].MaxOutputTokens = 777
		c.Quotas = gatewayconfig.Quotas{DailyHardUSD: "100", TimeZone: "UTC"}
		c.Failover.RequestTimeout = gatewayconfig.D(10 * time.Second)
		if mutate != nil {
			mutate(c)
		}
	})
	g.proc = start(t, bin, g.configPath)
	g.base = "http://" + g.proc.addr
	return g
}

// post sends body to path as who, with extra headers, and reads it all.
func (g *spendGateway) post(t *testing.T, path, who, body string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", g.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-Email", who)
	req.Header.Set("Content-Type", "application/json")
	if path == "/v1/messages" {
		req.Header.Set("Anthropic-Version", "2023-06-01")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// usage is /api/me/usage: today's ledger and the quota's standing.
type usage struct {
	Days []struct {
		Requests        int64
		CostPicodollars int64
	}
	Quota struct{ SpentUSD, ReservedUSD string }
}

func (u usage) requests() (n, cost int64) {
	for _, d := range u.Days {
		n += d.Requests
		cost += d.CostPicodollars
	}
	return n, cost
}

func (g *spendGateway) usage(t *testing.T, who string) usage {
	t.Helper()
	req, _ := http.NewRequest("GET", g.base+"/api/me/usage", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-Email", who)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u usage
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/me/usage: %d %v", resp.StatusCode, err)
	}
	return u
}

// settled waits until who's ledger counts n requests and nothing is held.
func (g *spendGateway) settled(t *testing.T, who string, n int64) usage {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		u := g.usage(t, who)
		if got, _ := u.requests(); got == n && u.Quota.ReservedUSD == "0.000000000000" {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ledger never showed %d requests with nothing held: %+v", n, u)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func picodollars(t *testing.T, usd string) int64 {
	t.Helper()
	var whole, frac int64
	if _, err := fmt.Sscanf(usd, "%d.%d", &whole, &frac); err != nil || len(usd) != len(fmt.Sprint(whole))+13 {
		t.Fatalf("%q is not an amount in picodollars", usd)
	}
	return whole*1_000_000_000_000 + frac
}

// TestHangUpIsBilled (hole 1): a client that reads an OpenAI-compatible
// stream to its first content event and hangs up is billed what the
// provider bills for the whole answer, though the usage comes only in the
// last chunk; a chat turn stopped by the page settles into the quota
// exactly what its ledger row says.
func TestHangUpIsBilled(t *testing.T) {
	g := startSpendGateway(t, providersim.Options{Chunks: 12, EventDelay: 25 * time.Millisecond}, nil)
	body := `{"model":"nova","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"tell me a story"}]}`
	if code, out := g.post(t, "/v1/chat/completions", email, body); code != 200 || !strings.Contains(out, "[DONE]") {
		t.Fatalf("whole stream: %d %s", code, out)
	}
	_, whole := g.settled(t, email, 1).requests()
	if whole == 0 {
		t.Fatal("the whole stream cost nothing")
	}

	req, _ := http.NewRequest("POST", g.base+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-Email", email)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(resp.Body)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("no content event: %v", err)
		}
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"content":"`) && !strings.Contains(line, `"content":""`) {
			break
		}
	}
	resp.Body.Close() // hang up after the first content event

	u := g.settled(t, email, 2)
	if _, cost := u.requests(); cost != 2*whole {
		t.Errorf("after a hang-up the ledger holds %d picodollars; want twice the whole stream's %d", cost, whole)
	}
	if spent := picodollars(t, u.Quota.SpentUSD); spent != 2*whole {
		t.Errorf("the quota settled %d picodollars; want the ledger's %d", spent, 2*whole)
	}

	// The page's stop button: the turn is cut after two deltas.
	cut := chatTurn(t, g.base+"/api/chat", "a long answer please", 2)
	if cut.done != nil {
		t.Fatal("the turn was not cut")
	}
	u = g.settled(t, email, 3)
	_, ledger := u.requests()
	if spent := picodollars(t, u.Quota.SpentUSD); spent != ledger || ledger <= 2*whole {
		t.Errorf("after a stopped turn the quota settled %d picodollars and the ledger holds %d: they must agree", spent, ledger)
	}
}

// TestCapIsWhatIsSent (hole 2): a case variant or a duplicate of the cap
// is refused in the caller's dialect before any provider is called; a null
// cap is no cap, so the model's limit is applied and sent; and on every
// front × provider pair the provider receives the cap the quota admitted.
func TestCapIsWhatIsSent(t *testing.T) {
	g := startSpendGateway(t, providersim.Options{}, nil)
	for _, tc := range []struct{ path, body, dialect string }{
		{"/v1/chat/completions", `{"model":"nova","max_tokens":1,"MAX_TOKENS":64000,"messages":[{"role":"user","content":"hi"}]}`, "openai"},
		{"/v1/chat/completions", `{"model":"nova","max_tokens":1,"max_tokens":64000,"messages":[{"role":"user","content":"hi"}]}`, "openai"},
		{"/v1/messages", `{"model":"sonnet","max_tokens":1,"Max_Tokens":64000,"messages":[{"role":"user","content":"hi"}]}`, "anthropic"},
		{"/v1/messages", `{"model":"nova","max_tokens":1,"messages":[{"role":"user","content":"hi"}],"max_tokens":64000}`, "anthropic"},
	} {
		code, out := g.post(t, tc.path, email, tc.body)
		var oe struct {
			Error struct{ Message, Type string }
		}
		var ae struct {
			Type  string
			Error struct{ Message, Type string }
		}
		okDialect := tc.dialect == "openai" && json.Unmarshal([]byte(out), &oe) == nil && oe.Error.Type == "invalid_request_error" && strings.Contains(strings.ToLower(oe.Error.Message), "max_tokens") ||
			tc.dialect == "anthropic" && json.Unmarshal([]byte(out), &ae) == nil && ae.Type == "error" && ae.Error.Type == "invalid_request_error" && strings.Contains(strings.ToLower(ae.Error.Message), "max_tokens")
		if code != 400 || !okDialect {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, code, out)
		}
	}
	if n := g.anth.Served() + g.oai.Served(); n != 0 {
		t.Fatalf("a provider was called %d times for refused bodies", n)
	}

	// Every pair, with a cap and with a null one.
	for _, tc := range []struct {
		path, model string
		sim         *providersim.Server
		cap         string
		want        int64
	}{
		{"/v1/chat/completions", "nova", g.oai, "17", 17},
		{"/v1/chat/completions", "sonnet", g.anth, "17", 17},
		{"/v1/messages", "nova", g.oai, "17", 17},
		{"/v1/messages", "sonnet", g.anth, "17", 17},
		{"/v1/chat/completions", "nova", g.oai, "null", 777},
		{"/v1/messages", "nova", g.oai, "null", 777},
	} {
		body := fmt.Sprintf(`{"model":%q,"max_tokens":%s,"messages":[{"role":"user","content":"hi"}]}`, tc.model, tc.cap)
		if code, out := g.post(t, tc.path, email, body); code != 200 {
			t.Fatalf("%s %s: %d %s", tc.path, body, code, out)
		}
		last, _ := tc.sim.LastRequest()
		if got, err := readCap(last.Body); err != nil || got != tc.want {
			t.Errorf("%s %s: the provider received a cap of %d (%v), want %d: %s", tc.path, body, got, err, tc.want, last.Body)
		}
	}
}

// readCap is the one output cap in a provider's request body, read as a
// provider reads it: case-insensitively, every spelling counted.
func readCap(body []byte) (int64, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return 0, err
	}
	var caps []string
	var n int64
	for k, v := range m {
		if lk := strings.ToLower(k); lk == "max_tokens" || lk == "max_completion_tokens" {
			caps = append(caps, k)
			if err := json.Unmarshal(v, &n); err != nil {
				return 0, fmt.Errorf("%s is %s", k, v)
			}
		}
	}
	if len(caps) != 1 {
		return 0, fmt.Errorf("caps %v", caps)
	}
	return n, nil
}

// TestOnlyPricedFieldsPass (hole 3): members whose cost the gateway cannot
// bill for are refused with a 400 naming them, before any provider is
// called.
func TestOnlyPricedFieldsPass(t *testing.T) {
	g := startSpendGateway(t, providersim.Options{}, nil)
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	for _, tc := range []struct{ path, body, names string }{
		{"/v1/messages", `{"model":"sonnet","max_tokens":10,` + msgs + `,"tools":[{"type":"web_search_20250305","name":"web_search"}]}`, "web_search_20250305"},
		{"/v1/messages", `{"model":"sonnet","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral","ttl":"1h"}}]}]}`, "ttl"},
		{"/v1/messages", `{"model":"sonnet","max_tokens":10,` + msgs + `,"service_tier":"auto"}`, "service_tier"},
		{"/v1/chat/completions", `{"model":"nova",` + msgs + `,"service_tier":"priority"}`, "service_tier"},
		{"/v1/chat/completions", `{"model":"nova",` + msgs + `,"modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"}}`, "audio"},
		{"/v1/chat/completions", `{"model":"nova",` + msgs + `,"web_search_options":{}}`, "web_search_options"},
		{"/v1/chat/completions", `{"model":"nova",` + msgs + `,"n":2.0}`, "n has a value"},
		{"/v1/chat/completions", `{"model":"sonnet",` + msgs + `,"n":2}`, "not supported by Anthropic providers"},
	} {
		if code, out := g.post(t, tc.path, email, tc.body); code != 400 || !strings.Contains(out, tc.names) {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, code, out)
		}
	}
	if n := g.anth.Served() + g.oai.Served(); n != 0 {
		t.Fatalf("a provider was called %d times", n)
	}
}

// TestHardLimitZeroRefuses (hole 4): dailyHardUSD "0" stops a person
// spending anything, on both fronts and in the chat; no provider is called.
func TestHardLimitZeroRefuses(t *testing.T) {
	g := startSpendGateway(t, providersim.Options{}, func(c *gatewayconfig.Config) { c.Users[1].DailyHardUSD = "0" })
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"nova","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`},
		{"/v1/messages", `{"model":"sonnet","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`},
		{"/api/chat", `{"content":"hi"}`},
	} {
		if code, out := g.post(t, tc.path, bob, tc.body); code != 429 {
			t.Errorf("%s with a hard limit of 0: %d %s", tc.path, code, out)
		}
	}
	if n := g.anth.Served() + g.oai.Served(); n != 0 {
		t.Fatalf("a provider was called %d times", n)
	}
}

// TestLedgerCountsEveryRequest (hole 5): three requests sent with one
// X-Request-Id are three ledger rows, in the person's and the admin's
// usage pages, and the quota's spend equals the ledger's.
func TestLedgerCountsEveryRequest(t *testing.T) {
	g := startSpendGateway(t, providersim.Options{}, nil)
	body := `{"model":"nova","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	for range 3 {
		if code, out := g.post(t, "/v1/chat/completions", email, body, "X-Request-Id", "the-same-id"); code != 200 {
			t.Fatalf("%d %s", code, out)
		}
	}
	u := g.settled(t, email, 3)
	_, cost := u.requests()
	if spent := picodollars(t, u.Quota.SpentUSD); spent != cost {
		t.Errorf("quota %d, ledger %d", spent, cost)
	}
	req, _ := http.NewRequest("GET", g.base+"/api/admin/usage", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-Email", email)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var admin struct {
		Users []struct {
			User     string
			Requests int64
		}
	}
	if err := json.Unmarshal(raw, &admin); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/api/admin/usage: %d %s", resp.StatusCode, raw)
	}
	found := false
	for _, u := range admin.Users {
		if u.User == email {
			found = true
			if u.Requests != 3 {
				t.Errorf("the admin page counts %d requests, want 3", u.Requests)
			}
		}
	}
	if !found {
		t.Errorf("the admin page does not list %s: %s", email, raw)
	}
	if !bytes.Contains(raw, []byte(email)) {
		t.Errorf("admin usage: %s", raw)
	}
}
