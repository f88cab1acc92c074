package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// Test fixtures: two simulators, one per provider type, each demanding its
// own key, behind a gateway with three aliases.
const (
	currentToken  = "gw-current-token-0123456789"
	previousToken = "gw-previous-token-0123456789"
	anthKey       = "sk-ant-sim-key"
	oaiKey        = "sk-oai-sim-key"
	alice         = "alice@example.com"
	bob           = "bob@example.com"

	sonnetID = "claude-sonnet-4-5-20250929"
	haikuID  = "claude-haiku-4-5-20251001"
	gptID    = "gpt-4o-mini"
)

// clock is a settable time source for the token grace period.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type env struct {
	t       testing.TB
	dir     string
	anth    *providersim.Server
	anthURL string
	oai     *providersim.Server
	oaiURL  string
	gw      *gateway.Gateway
	url     string
	// metricsURL is the metrics listener (GET /metrics).
	metricsURL string
	ledger     *metering.MemoryLedger
	clock      *clock
	cfg        *gatewayconfig.Config
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// baseConfig serves:
//
//	sonnet: anthropic only, falls back to gpt
//	gpt:    openai only
//	both:   anthropic, then openai (same alias on two providers)
func baseConfig(dir, anthURL, oaiURL string) *gatewayconfig.Config {
	return &gatewayconfig.Config{
		APIVersion:   gatewayconfig.APIVersion,
		Kind:         gatewayconfig.Kind,
		Gateway:      gatewayconfig.GatewayRef{Namespace: "test", Name: "gw"},
		Listen:       "127.0.0.1:0",
		DefaultModel: "sonnet",
		Providers: []gatewayconfig.Provider{
			{
				Name: "anthropic", Type: gatewayconfig.ProviderAnthropic, BaseURL: anthURL,
				APIKeyFile: filepath.Join(dir, "keys", "anthropic"),
				Timeouts:   gatewayconfig.Timeouts{Connect: gatewayconfig.D(2 * time.Second), FirstByte: gatewayconfig.D(5 * time.Second)},
				Models: []gatewayconfig.Model{
					{Name: "sonnet", ID: sonnetID, Pricing: gatewayconfig.Pricing{InputPerMTok: "3.00", OutputPerMTok: "15.00", CacheReadPerMTok: "0.30", CacheWritePerMTok: "3.75"}},
					{Name: "both", ID: haikuID, Pricing: gatewayconfig.Pricing{InputPerMTok: "1", OutputPerMTok: "5", CacheReadPerMTok: "0.1", CacheWritePerMTok: "1.25"}},
				},
			},
			{
				Name: "openai", Type: gatewayconfig.ProviderOpenAICompatible, BaseURL: oaiURL,
				APIKeyFile: filepath.Join(dir, "keys", "openai"),
				Timeouts:   gatewayconfig.Timeouts{Connect: gatewayconfig.D(2 * time.Second), FirstByte: gatewayconfig.D(5 * time.Second)},
				Models: []gatewayconfig.Model{
					{Name: "gpt", ID: gptID, Pricing: gatewayconfig.Pricing{InputPerMTok: "0.15", OutputPerMTok: "0.60", CacheReadPerMTok: "0.075"}},
					{Name: "both", ID: gptID, Pricing: gatewayconfig.Pricing{InputPerMTok: "0.15", OutputPerMTok: "0.60"}},
				},
			},
		},
		Fallbacks: []gatewayconfig.Fallback{{Model: "sonnet", To: []string{"gpt"}}},
		Failover: gatewayconfig.Failover{
			RetryOn:          []string{"Timeout", "ServerError", "RateLimited", "Overloaded", "ConnectionError"},
			Cooldown:         gatewayconfig.D(time.Minute),
			FailureThreshold: 3,
			RequestTimeout:   gatewayconfig.D(20 * time.Second),
		},
		Auth: gatewayconfig.Auth{
			EmailHeader:                "X-Forwarded-Email",
			TokenFile:                  filepath.Join(dir, "token", "token"),
			PreviousTokenFile:          filepath.Join(dir, "token", "previous"),
			PreviousTokenExpiresAtFile: filepath.Join(dir, "token", "previous-expires-at"),
		},
		Identity: gatewayconfig.Identity{Upstream: gatewayconfig.IdentityEmail, MetricsEndUser: gatewayconfig.IdentityEmail},
		Keys:     gatewayconfig.Keys{MasterKeyFile: filepath.Join(dir, "keys", "master")},
		Users: []gatewayconfig.User{
			{Email: alice, Role: gatewayconfig.RoleAdmin},
			{Email: bob, Role: gatewayconfig.RoleUser},
		},
		Sessions: gatewayconfig.Sessions{Store: gatewayconfig.Store{Type: gatewayconfig.StoreEmbedded, Path: filepath.Join(dir, "store.db")}},
	}
}

type envOption func(*gatewayconfig.Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newEnvWith(t, providersim.Options{}, testLogger(t), opts...)
}

// newEnvWith starts simulators with sim (their keys added) and a gateway
// logging to log.
func newEnvWith(t testing.TB, sim providersim.Options, log *slog.Logger, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), ledger: &metering.MemoryLedger{}, clock: &clock{t: epoch}}
	sim.APIKey = anthKey
	e.anth, e.anthURL = providersim.Start(t, sim)
	sim.APIKey = oaiKey
	e.oai, e.oaiURL = providersim.Start(t, sim)
	e.cfg = baseConfig(e.dir, e.anthURL, e.oaiURL)
	for _, o := range opts {
		o(e.cfg)
	}
	writeFile(t, filepath.Join(e.dir, "keys", "anthropic"), anthKey+"\n")
	writeFile(t, filepath.Join(e.dir, "keys", "openai"), oaiKey)
	writeFile(t, filepath.Join(e.dir, "keys", "master"), strings.Repeat("k", 32))
	writeFile(t, filepath.Join(e.dir, "token", "token"), currentToken+"\n")
	writeFile(t, filepath.Join(e.dir, "token", "previous"), previousToken)
	writeFile(t, filepath.Join(e.dir, "token", "previous-expires-at"), epoch.Add(10*time.Minute).Format(time.RFC3339))
	e.writeConfig(e.cfg)

	gw, err := gateway.New(gateway.Options{ConfigPath: e.configPath(), Ledger: e.ledger, Now: e.clock.Now, Logger: log})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	e.gw = gw
	e.url, e.metricsURL = serve(t, gw)
	return e
}

// serve starts the gateway's two listeners: the API and the metrics.
func serve(t testing.TB, gw *gateway.Gateway) (url, metricsURL string) {
	t.Helper()
	// Closed after the servers (cleanups run last first): the spend
	// queued is committed and the leases returned.
	t.Cleanup(func() { _ = gw.Close(context.Background()) })
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	msrv := httptest.NewServer(gw.MetricsHandler())
	t.Cleanup(msrv.Close)
	return srv.URL, msrv.URL
}

func (e *env) configPath() string { return filepath.Join(e.dir, "gateway.yaml") }

func (e *env) writeConfig(c *gatewayconfig.Config) {
	e.t.Helper()
	b, err := gatewayconfig.Marshal(c)
	if err != nil {
		e.t.Fatal(err)
	}
	writeFile(e.t, e.configPath(), string(b))
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// do sends a raw request to the gateway.
func (e *env) do(method, path string, header http.Header, body string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// authHeader is a request that passed OAuth2 Proxy as who.
func authHeader(who string) http.Header {
	return http.Header{
		"Authorization":     {"Bearer " + currentToken},
		"X-Forwarded-Email": {who},
		"Content-Type":      {"application/json"},
	}
}

// metric scrapes /metrics and returns the lines starting with prefix, once
// no request is in flight: a client can have its whole response before the
// gateway has metered it.
func (e *env) metric(prefix string) []string {
	e.t.Helper()
	e.settle()
	return e.scrape(prefix)
}

func (e *env) scrape(prefix string) []string {
	e.t.Helper()
	body := e.metricsPage()
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// metricsPage is what the metrics listener serves.
func (e *env) metricsPage() string {
	e.t.Helper()
	resp, err := http.Get(e.metricsURL + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /metrics on the metrics listener: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// settle waits until the gateway has metered every request, then has
// it commit the spend queued and return its idle quota leases.
func (e *env) settle() {
	e.t.Helper()
	waitFor(e.t, "requests to be metered", func() bool {
		m := e.scrape("chatgateway_requests_in_flight ")
		return len(m) == 1 && m[0] == "chatgateway_requests_in_flight 0"
	})
	if e.gw == nil {
		return
	}
	if err := e.gw.Flush(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// testLogger writes the gateway's logs to the test log, so a failing test
// shows them and a passing one stays quiet.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewJSONHandler(&testWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t  testing.TB
	mu sync.Mutex
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
