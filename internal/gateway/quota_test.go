package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgateway/chatgateway-operator/internal/gateway"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/quota"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/internal/store/pgtest"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// withQuota sets the default daily limits (decimal USD, "" for none).
func withQuota(soft, hard string) envOption {
	return func(c *gatewayconfig.Config) {
		c.Quotas.DailySoftUSD, c.Quotas.DailyHardUSD = soft, hard
	}
}

// replica is one more gateway on e's config, with its own quota store
// handle (and ledger when st is set), as a second process would have.
type replica struct {
	gw              *gateway.Gateway
	url, metricsURL string
}

func addReplica(t testing.TB, e *env, st store.Store, qs store.Quotas) replica {
	t.Helper()
	gw, err := gateway.New(gateway.Options{ConfigPath: e.configPath(), Now: e.clock.Now, Logger: testLogger(t), Store: st, Quotas: qs})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	url, metricsURL := serve(t, gw)
	return replica{gw: gw, url: url, metricsURL: metricsURL}
}

func openStore(t testing.TB, cfg gatewayconfig.Store) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), cfg, []byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// send posts body to one of the two fronts of the gateway at base and
// reads the whole response (every event of a stream).
func send(t testing.TB, base, path, who, body string) (*http.Response, string) {
	t.Helper()
	resp, err := post(base, path, who, body)
	if err != nil {
		t.Error(err)
		return &http.Response{StatusCode: 0, Header: http.Header{}}, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// post sends body to one of the fronts of the gateway at base as who.
func post(base, path, who, body string) (*http.Response, error) {
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header = authHeader(who)
	if path == "/v1/messages" {
		req.Header.Set("Anthropic-Version", "2023-06-01")
	}
	return http.DefaultClient.Do(req)
}

func chatBody(model, text string, maxTokens int, stream bool) string {
	return fmt.Sprintf(`{"model":%q,"stream":%t,"max_tokens":%d,"messages":[{"role":"user","content":%q}]}`, model, stream, maxTokens, text)
}

// TestQuotaConcurrentStreamsNeverOverrun: 50 clients streaming at once
// through both fronts, each retrying after a 429 until it has had four
// replies or the quota is spent, against a hard limit that binds.
// The settled spend, sampled throughout and at the end, never exceeds it;
// the largest overrun seen is logged (it must be zero). With PostgreSQL
// the clients alternate between two gateways sharing the database.
func TestQuotaConcurrentStreamsNeverOverrun(t *testing.T) {
	for _, kind := range []string{"memory", "sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			const hardUSD = "0.02"
			const limit = 20_000_000_000 // picodollars
			// The reservation for the request below: (body bytes + 1024) at
			// sonnet's cache-write price, 16 output tokens at its output price.
			worstSonnet := int64(len(chatBody("sonnet", "tell me something nice today please", 16, true))+1024)*3_750_000 + 16*15_000_000
			e := newEnvWith(t, providersim.Options{EventDelay: 2 * time.Millisecond, ReplyWords: 12}, testLogger(t), withQuota("", hardUSD))
			reps := []replica{{gw: e.gw, url: e.url}}
			var ledgerSpend func() int64
			switch kind {
			case "memory":
				ledgerSpend = func() int64 { return int64(e.ledger.Spend(alice)) }
			case "sqlite":
				st := openStore(t, gatewayconfig.Store{Type: gatewayconfig.StoreEmbedded, Path: filepath.Join(e.dir, "quota.db")})
				reps = []replica{addReplica(t, e, st, nil)}
				ledgerSpend = func() int64 { n, _ := st.SpendSince(context.Background(), alice, time.Time{}); return n }
			case "postgres":
				dsn := pgtest.NewDatabase(t)
				a, b := openStore(t, pgStore(t, e, dsn)), openStore(t, pgStore(t, e, dsn))
				reps = []replica{addReplica(t, e, a, nil), addReplica(t, e, b, nil)}
				ledgerSpend = func() int64 { n, _ := a.SpendSince(context.Background(), alice, time.Time{}); return n }
			}

			var maxOver atomic.Int64
			sample := func() {
				st, err := reps[0].gw.QuotaStatus(context.Background(), alice)
				if err != nil {
					t.Error(err)
					return
				}
				if over := st.SpentPicodollars - limit; over > maxOver.Load() {
					maxOver.Store(over)
				}
			}
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					select {
					case <-stop:
						return
					case <-time.After(3 * time.Millisecond):
						sample()
					}
				}
			}()

			var ok, refused atomic.Int64
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rep := reps[i%len(reps)]
					for j, served := 0, 0; served < 4 && j < 500; j++ {
						path, body := "/v1/chat/completions", chatBody("sonnet", "tell me something nice today please", 16, true)
						if (i+j)%2 == 0 {
							path = "/v1/messages"
						}
						resp, out := send(t, rep.url, path, alice, body)
						switch resp.StatusCode {
						case http.StatusOK:
							if !strings.Contains(out, "Simulated") {
								t.Errorf("stream without the reply: %q", out)
							}
							ok.Add(1)
							served++
						case http.StatusTooManyRequests:
							refused.Add(1)
							if !strings.Contains(out, "held by requests in progress") {
								return // spent: nothing in flight, and still no room
							}
							time.Sleep(time.Duration(1+i%5) * time.Millisecond)
						default:
							t.Errorf("status %d: %s", resp.StatusCode, out)
							return
						}
					}
				}()
			}
			wg.Wait()
			for _, rep := range reps {
				if err := rep.gw.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			close(stop)
			<-sampled
			sample()
			st, _ := reps[0].gw.QuotaStatus(context.Background(), alice)
			waitFor(t, "the ledger to hold every served request", func() bool { return ledgerSpend() == st.SpentPicodollars })
			t.Logf("%s: %d streams served, %d refused; spent %d of %d picodollars; largest overrun seen: %d",
				kind, ok.Load(), refused.Load(), st.SpentPicodollars, limit, max(0, maxOver.Load()))
			if maxOver.Load() > 0 || st.SpentPicodollars > limit || ledgerSpend() > limit {
				t.Fatalf("spend went over the hard limit by %d picodollars", maxOver.Load())
			}
			// The limit binds on spend: the clients wanted 200 replies, and
			// what is left is less than one more request's worst case.
			if ok.Load() >= 200 || st.SpentPicodollars+worstSonnet <= limit {
				t.Fatalf("the limit did not bind: %d served, %d refused, spent %d", ok.Load(), refused.Load(), st.SpentPicodollars)
			}
			if st.ReservedPicodollars != 0 {
				t.Errorf("reservations left after every request ended: %d", st.ReservedPicodollars)
			}
		})
	}
}

// pgStore points e's config at the PostgreSQL database dsn.
func pgStore(t testing.TB, e *env, dsn string) gatewayconfig.Store {
	f := filepath.Join(e.dir, "store", "dsn")
	writeFile(t, f, dsn)
	return gatewayconfig.Store{Type: gatewayconfig.StorePostgres, DSNFile: f}
}

// TestQuotaRejectionInBothDialects: over the hard limit, each front
// answers 429 in its own error format, with the limit, the spend and
// Retry-After until the window resets; no provider is called.
func TestQuotaRejectionInBothDialects(t *testing.T) {
	e := newEnv(t, withQuota("", "0.000001"))
	// The clock is 03:04:05 UTC: the window resets in 20h55m55s.
	const wantRetry = "75355"

	resp, body := send(t, e.url, "/v1/chat/completions", alice, chatBody("gpt", "hi", 10, true))
	var oe struct {
		Error struct{ Message, Type, Code string }
	}
	if err := json.Unmarshal([]byte(body), &oe); err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != wantRetry {
		t.Fatalf("OpenAI front: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if oe.Error.Type != "rate_limit_error" || oe.Error.Code != "daily_quota_exceeded" ||
		!strings.Contains(oe.Error.Message, "spent $0.00 of your $0.000001 daily limit") || !strings.Contains(oe.Error.Message, "resets in 20h55m55s") {
		t.Errorf("OpenAI error %+v", oe.Error)
	}

	resp, body = send(t, e.url, "/v1/messages", alice, chatBody("sonnet", "hi", 10, false))
	var ae struct {
		Type  string
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal([]byte(body), &ae); err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != wantRetry {
		t.Fatalf("Anthropic front: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if ae.Type != "error" || ae.Error.Type != "rate_limit_error" || !strings.Contains(ae.Error.Message, "of your $0.000001 daily limit") {
		t.Errorf("Anthropic error %+v", ae)
	}
	if e.anth.Served()+e.oai.Served() != 0 {
		t.Error("a provider was called for a refused request")
	}
	if m := e.metric(`chatgateway_quota_rejections_total{end_user="alice@example.com"} 2`); len(m) != 1 {
		t.Errorf("rejections: %q", e.metric("chatgateway_quota_rejections_total"))
	}
	if m := e.metric(`chatgateway_requests_total{end_user="alice@example.com",model="gpt",provider="",requested_model="gpt",status="429"} 1`); len(m) != 1 {
		t.Errorf("requests: %q", e.metric("chatgateway_requests_total"))
	}
	// bob has a per-user override above the default.
	e.cfg.Users[1].DailyHardUSD = "1"
	e.writeConfig(e.cfg)
	if _, err := e.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if resp, body := send(t, e.url, "/v1/chat/completions", bob, chatBody("gpt", "hi", 10, false)); resp.StatusCode != 200 {
		t.Fatalf("bob's override: %d %s", resp.StatusCode, body)
	}
}

// worstGPT is the reservation the gateway makes for body on the gpt model
// (input bound: body bytes + 1024 tokens at $0.15/MTok; output max_tokens
// at $0.60/MTok), rounded up to a whole micro-dollar for a config limit.
func worstGPTLimit(body string, maxTokens int) string {
	pico := int64(len(body)+1024)*150_000 + int64(maxTokens)*600_000
	micro := (pico + 999_999) / 1_000_000
	return fmt.Sprintf("%d.%06d", micro/1_000_000, micro%1_000_000)
}

// TestQuotaTimeZoneBoundary: the window is the calendar day in
// quotas.timeZone. Spend late in the New York evening counts against that
// day until local midnight (05:00 UTC in winter), and not after.
func TestQuotaTimeZoneBoundary(t *testing.T) {
	body := chatBody("gpt", "hello there", 10, false)
	e := newEnv(t, withQuota("", worstGPTLimit(body, 10)), func(c *gatewayconfig.Config) { c.Quotas.TimeZone = "America/New_York" })
	ny, _ := time.LoadLocation("America/New_York")

	e.clock.Set(time.Date(2026, 1, 5, 23, 30, 0, 0, ny)) // 04:30 UTC on the 6th
	if resp, b := send(t, e.url, "/v1/chat/completions", alice, body); resp.StatusCode != 200 {
		t.Fatalf("first request: %d %s", resp.StatusCode, b)
	}
	e.settle() // a client can have the whole response before its charge is settled
	e.clock.Set(time.Date(2026, 1, 5, 23, 45, 0, 0, ny))
	resp, b := send(t, e.url, "/v1/chat/completions", alice, body)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "900" {
		t.Fatalf("same local day: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	st, _ := e.gw.QuotaStatus(context.Background(), alice)
	if st.Day != "2026-01-05" || st.SpentPicodollars == 0 || !st.ResetsAt.Equal(time.Date(2026, 1, 6, 5, 0, 0, 0, time.UTC)) {
		t.Errorf("status %+v", st)
	}
	e.clock.Set(time.Date(2026, 1, 6, 0, 0, 1, 0, ny))
	if resp, b := send(t, e.url, "/v1/chat/completions", alice, body); resp.StatusCode != 200 {
		t.Fatalf("after local midnight: %d %s", resp.StatusCode, b)
	}
	if st, _ := e.gw.QuotaStatus(context.Background(), alice); st.Day != "2026-01-06" || st.RemainingPicodollars < 0 {
		t.Errorf("next day status %+v", st)
	}
}

// TestQuotaLeaseOfADeadReplica: a replica that died (SIGKILL) leaves its
// quota lease in the shared store. Until the lease expires it holds the
// person back ("held by requests in progress"); then it is charged in full,
// because requests whose ledger rows died with the replica may have spent
// it: the person keeps what the limit has left beyond it.
func TestQuotaLeaseOfADeadReplica(t *testing.T) {
	body := chatBody("gpt", "hello there", 10, false)
	limit := worstGPTLimit(body, 10)
	e := newEnv(t, withQuota("", limit))
	st := openStore(t, gatewayconfig.Store{Type: gatewayconfig.StoreEmbedded, Path: filepath.Join(e.dir, "quota.db")})
	rep := addReplica(t, e, nil, st)

	now := e.clock.Now()
	start := now.Truncate(24 * time.Hour)
	// The dead replica's lease: a thirtieth of one request's worst case,
	// more than the limit's rounding leaves.
	const held = 5_000_000
	dead := store.Lease{ID: "dead-replica-lease", User: alice, Holder: "dead", At: now, ExpiresAt: now.Add(30 * time.Second), Create: true}
	if g, err := st.GrantLease(context.Background(), dead, held, held, start, now, 1<<62); err != nil || !g.OK {
		t.Fatal(g, err)
	}
	if resp, b := send(t, rep.url, "/v1/chat/completions", alice, body); resp.StatusCode != 429 || !strings.Contains(b, "held by requests in progress") {
		t.Fatalf("with the dead lease live: %d %s", resp.StatusCode, b)
	}
	e.clock.Set(now.Add(30 * time.Second))
	st1, err := rep.gw.QuotaStatus(context.Background(), alice)
	if err != nil || st1.SpentPicodollars != held || st1.ReservedPicodollars != 0 {
		t.Fatalf("after expiry: %+v %v; want the lease charged in full", st1, err)
	}
	// What is left is less than one request's worst case: refused, as spent.
	if resp, b := send(t, rep.url, "/v1/chat/completions", alice, body); resp.StatusCode != 429 || strings.Contains(b, "held by") {
		t.Fatalf("after the charge: %d %s", resp.StatusCode, b)
	}
	// A smaller request fits what is left.
	small := chatBody("gpt", "hi", 1, false)
	if resp, b := send(t, rep.url, "/v1/chat/completions", alice, small); resp.StatusCode != 200 {
		t.Fatalf("a request within what is left: %d %s", resp.StatusCode, b)
	}
}

// slack is a fake incoming webhook counting POSTs per threshold.
type slack struct {
	mu    sync.Mutex
	posts map[string]int
	texts []string
	// hold, when set, blocks each POST until closed.
	hold   chan struct{}
	status int
	url    string
}

func newSlack(t *testing.T, status int, hold chan struct{}) *slack {
	s := &slack{posts: map[string]int{}, hold: hold, status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Text string }
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook body: %v", err)
		}
		s.mu.Lock()
		th := "soft"
		if strings.Contains(m.Text, "hard limit") {
			th = "hard"
		}
		s.posts[th]++
		s.texts = append(s.texts, m.Text)
		s.mu.Unlock()
		if s.hold != nil {
			<-s.hold
		}
		w.WriteHeader(s.status)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *slack) count(th string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts[th]
}

func withSlack(t *testing.T, dir string, s *slack) envOption {
	f := filepath.Join(dir, "notify", "slack-webhook-url")
	writeFile(t, f, s.url+"\n")
	return func(c *gatewayconfig.Config) { c.Quotas.SlackWebhookFile = f }
}

// TestQuotaNotificationsOncePerWindowAcrossReplicas: two gateways on one
// PostgreSQL database, concurrent requests from one user crossing the soft
// limit and then reaching the hard one: Slack gets one message for each
// threshold, whichever replica saw the crossing, and none has content.
func TestQuotaNotificationsOncePerWindowAcrossReplicas(t *testing.T) {
	sl := newSlack(t, 200, nil)
	dir := t.TempDir()
	e := newEnv(t, withQuota("0.00002", "0.0005"), withSlack(t, dir, sl))
	dsn := pgtest.NewDatabase(t)
	reps := []replica{addReplica(t, e, openStore(t, pgStore(t, e, dsn)), nil), addReplica(t, e, openStore(t, pgStore(t, e, dsn)), nil)}

	var exhausted atomic.Int64
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				resp, b := send(t, reps[i%2].url, "/v1/chat/completions", alice, chatBody("gpt", "a secret question", 16, true))
				if resp.StatusCode == 429 && !strings.Contains(b, "held by requests in progress") {
					exhausted.Add(1)
					return
				}
			}
		}()
	}
	wg.Wait()
	if exhausted.Load() == 0 {
		t.Fatal("the hard limit was never reached")
	}
	waitFor(t, "both notifications", func() bool { return sl.count("soft") >= 1 && sl.count("hard") >= 1 })
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show up
	if sl.count("soft") != 1 || sl.count("hard") != 1 {
		t.Fatalf("posts %v, want one per threshold", sl.posts)
	}
	for _, txt := range sl.texts {
		if strings.Contains(txt, "secret") || !strings.Contains(txt, alice) {
			t.Errorf("message %q", txt)
		}
	}
	// The other day gets its own notifications.
	e.clock.Set(epoch.Add(24 * time.Hour))
	for range 6 { // 4.95 µ$ each: the sixth crosses the 20 µ$ soft limit
		if resp, b := send(t, reps[0].url, "/v1/chat/completions", alice, chatBody("gpt", "again", 16, false)); resp.StatusCode != 200 {
			t.Fatalf("next day: %d %s", resp.StatusCode, b)
		}
	}
	waitFor(t, "the next day's soft notification", func() bool { return sl.count("soft") == 2 })
}

// TestQuotaWebhookDownDoesNotSlowRequests: a webhook that hangs, or that
// fails every time, never holds up a request: the request that crossed
// the soft limit completes while the webhook is still stuck, and failures
// are retried a bounded number of times and counted.
func TestQuotaWebhookDownDoesNotSlowRequests(t *testing.T) {
	t.Run("hangs", func(t *testing.T) {
		hold := make(chan struct{})
		sl := newSlack(t, 200, hold)
		e := newEnv(t, withQuota("0.000001", ""), withSlack(t, t.TempDir(), sl))
		defer close(hold)
		if resp, b := send(t, e.url, "/v1/chat/completions", alice, chatBody("gpt", "hi", 10, true)); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		// The request is done; the webhook has been called and is still held.
		waitFor(t, "the webhook to be called", func() bool { return sl.count("soft") == 1 })
		for range 3 {
			if resp, _ := send(t, e.url, "/v1/chat/completions", alice, chatBody("gpt", "hi", 10, false)); resp.StatusCode != 200 {
				t.Fatal(resp.StatusCode)
			}
		}
	})
	t.Run("fails", func(t *testing.T) {
		sl := newSlack(t, 500, nil)
		e := newEnv(t, withQuota("0.000001", ""), withSlack(t, t.TempDir(), sl))
		gateway.SetNotifyRetry(e.gw, 4, 5*time.Millisecond)
		if resp, _ := send(t, e.url, "/v1/chat/completions", alice, chatBody("gpt", "hi", 10, false)); resp.StatusCode != 200 {
			t.Fatal(resp.StatusCode)
		}
		waitFor(t, "the failure to be counted", func() bool {
			return len(e.scrape(`chatgateway_quota_notifications_total{result="failed",threshold="soft"} 1`)) == 1
		})
		if n := sl.count("soft"); n != 4 {
			t.Errorf("%d attempts, want 4", n)
		}
	})
}

// TestQuotaUsedRatioGauge: the gauge the operator's alerts query.
func TestQuotaUsedRatioGauge(t *testing.T) {
	e := newEnv(t, withQuota("0.001", "0.002"))
	if resp, _ := send(t, e.url, "/v1/chat/completions", alice, chatBody("gpt", "one two three four", 10, false)); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	e.settle()
	st, _ := e.gw.QuotaStatus(context.Background(), alice)
	soft := e.metric(`chatgateway_quota_used_ratio{end_user="alice@example.com",limit="soft"}`)
	hard := e.metric(`chatgateway_quota_used_ratio{end_user="alice@example.com",limit="hard"}`)
	wantSoft := fmt.Sprint(float64(st.SpentPicodollars) / 1e9)
	if len(soft) != 1 || !strings.HasSuffix(soft[0], " "+wantSoft) || len(hard) != 1 {
		t.Errorf("gauges %q %q, want soft %s", soft, hard, wantSoft)
	}
	if st.SoftLimitPicodollars != 1_000_000_000 || st.HardLimitPicodollars != 2_000_000_000 ||
		st.RemainingPicodollars != st.HardLimitPicodollars-st.SpentPicodollars {
		t.Errorf("status %+v", st)
	}
}

// TestQuotaUsedRatioGaugeAcrossReplicas: with two replicas on one store,
// each replica's gauge is the person's spend as the ledger has it,
// whichever replica served their requests; not what one replica knew at
// its last lease grant plus what it settled itself.
func TestQuotaUsedRatioGaugeAcrossReplicas(t *testing.T) {
	e := newEnv(t, withQuota("0.001", "0.002"))
	dsn := pgtest.NewDatabase(t)
	ledger := openStore(t, pgStore(t, e, dsn))
	reps := []replica{addReplica(t, e, openStore(t, pgStore(t, e, dsn)), nil), addReplica(t, e, openStore(t, pgStore(t, e, dsn)), nil)}
	for i := range 6 {
		if resp, b := send(t, reps[i%2].url, "/v1/chat/completions", alice, chatBody("gpt", "one two three four", 10, i%3 == 0)); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	}
	ctx := context.Background()
	for _, r := range reps {
		if err := r.gw.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	days, err := ledger.UsageByDay(ctx, alice, epoch.Add(-24*time.Hour), time.Now().Add(24*time.Hour), time.UTC)
	var requests, cost int64
	for _, d := range days {
		requests, cost = requests+d.Requests, cost+d.CostPicodollars
	}
	if err != nil || requests != 6 {
		t.Fatalf("ledger %+v, %v", days, err)
	}
	want := fmt.Sprintf(`chatgateway_quota_used_ratio{end_user="alice@example.com",limit="soft"} %v`, float64(cost)/1e9)
	for i, r := range reps {
		resp, err := http.Get(r.metricsURL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got []string
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, "chatgateway_quota_used_ratio{") {
				got = append(got, l)
			}
		}
		if !slices.Contains(got, want) {
			t.Errorf("replica %d: %q, want %s", i, got, want)
		}
	}
}

// TestCostAwareFallback: gpt falls back to the pricier sonnet. By default
// admission reserves the plan's most expensive route, so a user who can
// afford gpt but not sonnet's worst case is refused up front; with
// costAwareFallback the request runs on gpt and, when gpt fails, ends with
// gpt's failure instead of falling back to what the quota cannot cover.
func TestCostAwareFallback(t *testing.T) {
	body := chatBody("gpt", "hello there [[fault:provider=openai,500]]", 10, false)
	limit := worstGPTLimit(body, 10)
	opts := func(costAware bool) []envOption {
		return []envOption{withQuota("", limit), func(c *gatewayconfig.Config) {
			c.Fallbacks = []gatewayconfig.Fallback{{Model: "gpt", To: []string{"sonnet"}}}
			c.Quotas.CostAwareFallback = costAware
		}}
	}
	t.Run("default", func(t *testing.T) {
		e := newEnv(t, opts(false)...)
		if resp, b := send(t, e.url, "/v1/chat/completions", alice, body); resp.StatusCode != 429 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("cost-aware", func(t *testing.T) {
		e := newEnv(t, opts(true)...)
		resp, b := send(t, e.url, "/v1/chat/completions", alice, body)
		if resp.StatusCode != 500 && resp.StatusCode != 502 {
			t.Fatalf("want gpt's failure, got %d %s", resp.StatusCode, b)
		}
		if e.oai.Served() != 1 || e.anth.Served() != 0 {
			t.Errorf("served: openai %d, anthropic %d; want no fallback", e.oai.Served(), e.anth.Served())
		}
		// With room for sonnet's worst case, the fallback happens.
		e.cfg.Quotas.DailyHardUSD = "1"
		e.writeConfig(e.cfg)
		if _, err := e.gw.Reload(); err != nil {
			t.Fatal(err)
		}
		if resp, b := send(t, e.url, "/v1/chat/completions", alice, body); resp.StatusCode != 200 || e.anth.Served() != 1 {
			t.Fatalf("fallback with room: %d %s", resp.StatusCode, b)
		}
	})
}

// BenchmarkAdmission is the quota and ledger work a request adds, as the
// completion core does it: admission against the caller's lease, the
// settlement, and the final ledger entry queued for the group-committed
// writer (whose commits, a transaction per batch, run beside). The store
// is asked only when the lease runs dry: grants/op says how often.
//
//	go test ./internal/gateway -run '^$' -bench Admission -benchtime 20000x
func BenchmarkAdmission(b *testing.B) {
	stores := map[string]func(b *testing.B) store.Quotas{
		"memory": func(*testing.B) store.Quotas { return store.NewMemoryQuotas() },
		"sqlite": func(b *testing.B) store.Quotas {
			return openStore(b, gatewayconfig.Store{Type: gatewayconfig.StoreEmbedded, Path: filepath.Join(b.TempDir(), "q.db")})
		},
		"postgres": func(b *testing.B) store.Quotas {
			f := filepath.Join(b.TempDir(), "dsn")
			writeFile(b, f, pgtest.NewDatabase(b))
			return openStore(b, gatewayconfig.Store{Type: gatewayconfig.StorePostgres, DSNFile: f})
		},
	}
	for _, name := range []string{"memory", "sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			q := &grantCounter{Quotas: stores[name](b)}
			log := slog.New(slog.DiscardHandler)
			k := quota.New(quota.Options{Store: q, Registerer: prometheus.NewRegistry(), Log: log, Now: time.Now})
			w := metering.NewWriter(metering.StoreSink{Store: q}, metering.WriterOptions{OnCommit: k.Committed, Log: log})
			p := quota.NewPolicy(&gatewayconfig.Config{Quotas: gatewayconfig.Quotas{DailyHardUSD: "100000"}})
			ctx := context.Background()
			ask := quota.Ask{User: alice, Worst: []metering.Picodollars{1_000_000_000}}
			i := 0
			for b.Loop() {
				i++
				r, err := k.Admit(ctx, p, ask)
				if err != nil {
					b.Fatal(err)
				}
				r.Settle(100_000_000)
				if err := w.Record(ctx, metering.Entry{Time: time.Now(), RequestID: fmt.Sprint("bench-", i), User: alice, Model: "m", Provider: "p", Cost: 100_000_000, Status: 200, Lease: r.Lease()}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			_ = w.Close(ctx)
			k.Close(ctx)
			b.ReportMetric(float64(q.grants.Load())/float64(i), "grants/op")
		})
	}
}

// grantCounter counts the store's lease grants.
type grantCounter struct {
	store.Quotas
	grants atomic.Int64
}

func (g *grantCounter) GrantLease(ctx context.Context, l store.Lease, lo, hi int64, since, now time.Time, limit int64) (store.Grant, error) {
	g.grants.Add(1)
	return g.Quotas.GrantLease(ctx, l, lo, hi, since, now, limit)
}

// TestQuotaCapsUncappedOutput: the reservation assumes a bounded output,
// so under a quota an OpenAI request without max_tokens reaches an
// OpenAI-compatible provider with the model's maxOutputTokens; without a
// quota the body passes as it was.
func TestQuotaCapsUncappedOutput(t *testing.T) {
	body := `{"model":"gpt","messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct {
		hard string
		want *int64
	}{{"1", ptr(int64(8192))}, {"", nil}} {
		e := newEnv(t, withQuota("", tc.hard))
		if resp, b := send(t, e.url, "/v1/chat/completions", alice, body); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		var up struct {
			MaxTokens *int64 `json:"max_tokens"`
		}
		lastBody(t, e.oai, &up)
		if (up.MaxTokens == nil) != (tc.want == nil) || up.MaxTokens != nil && *up.MaxTokens != *tc.want {
			t.Errorf("hard %q: upstream max_tokens %v", tc.hard, up.MaxTokens)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestQuotaStatefulChat: a stateful chat turn is admitted like any model
// request: over the limit it is refused with 429 and Retry-After, and
// within it the turn's cost is settled against the quota.
func TestQuotaStatefulChat(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, withQuota("", "0.000001"))
	resp, b := send(t, e.url, "/api/chat", bob, `{"content":"hello"}`)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(b, "daily limit") {
		t.Fatalf("over the limit: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}

	e = newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, withQuota("", "1"))
	if resp, b := send(t, e.url, "/api/chat", bob, `{"content":"hello"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("within the limit: %d %s", resp.StatusCode, b)
	}
	e.settle()
	st, err := e.gw.QuotaStatus(context.Background(), bob)
	if err != nil || st.SpentPicodollars == 0 || st.ReservedPicodollars != 0 {
		t.Fatalf("after the turn: %+v, %v", st, err)
	}
}

// TestQuotaHardZeroRefusesEverything: a per-person dailyHardUSD of "0" is
// an admin's off switch, not "no limit": every model request and chat turn
// is refused before a provider is called, while a person without an
// override inherits the default, and no default means no limit.
func TestQuotaHardZeroRefusesEverything(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, func(c *gatewayconfig.Config) {
		c.Users[1].DailyHardUSD = "0" // bob
	})
	for _, path := range []string{"/v1/chat/completions", "/v1/messages", "/api/chat"} {
		body := chatBody("sonnet", "hi", 10, false)
		if path == "/api/chat" {
			body = `{"content":"hi"}`
		}
		resp, b := send(t, e.url, path, bob, body)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(b, "$0.00") {
			t.Errorf("%s with a limit of 0: %d %s", path, resp.StatusCode, b)
		}
	}
	if n := e.anth.Served() + e.oai.Served(); n != 0 {
		t.Errorf("a provider was called %d times for a person whose limit is 0", n)
	}
	st, err := e.gw.QuotaStatus(context.Background(), bob)
	if err != nil || st.RemainingPicodollars != 0 {
		t.Errorf("bob's status %+v %v: want a limit with nothing remaining", st, err)
	}
	// alice has no override and there is no default: no limit.
	if resp, b := send(t, e.url, "/v1/chat/completions", alice, chatBody("sonnet", "hi", 10, false)); resp.StatusCode != 200 {
		t.Fatalf("alice without a limit: %d %s", resp.StatusCode, b)
	}

	// With a default of "0" everyone without an override is refused, and
	// an override lifts it for that person.
	e2 := newEnv(t, withQuota("", "0"), func(c *gatewayconfig.Config) { c.Users[1].DailyHardUSD = "1" })
	if resp, _ := send(t, e2.url, "/v1/chat/completions", alice, chatBody("gpt", "hi", 10, false)); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("alice under a default of 0: %d", resp.StatusCode)
	}
	if resp, b := send(t, e2.url, "/v1/chat/completions", bob, chatBody("gpt", "hi", 10, false)); resp.StatusCode != 200 {
		t.Errorf("bob's override of 1: %d %s", resp.StatusCode, b)
	}
}
