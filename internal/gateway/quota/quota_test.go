package quota

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

func TestWorstCase(t *testing.T) {
	p := metering.Prices{Input: 3_000_000, Output: 15_000_000, CacheRead: 300_000, CacheWrite: 3_750_000}
	for _, tc := range []struct {
		name string
		b    Bound
		want metering.Picodollars
	}{
		// (bytes + 1024) at the cache-write price, the caller's cap at the output price.
		{"caller cap", NewBound(18, 0, 100, 1), (18+1024)*3_750_000 + 100*15_000_000},
		{"model cap", NewBound(2, 0, 0, 1), (2+1024)*3_750_000 + 8192*15_000_000},
		{"n choices", NewBound(34, 0, 10, 3), (34+1024)*3_750_000 + 3*10*15_000_000},
		{"two images", NewBound(60, 2, 10, 1), (60+1024+2*AnthropicImageTokens)*3_750_000 + 10*15_000_000},
		{"absurd n saturates", NewBound(40, 0, 9_000_000_000_000, 9_000_000_000), maxReservation},
	} {
		if got := tc.b.WorstCase(p, 8192, AnthropicImageTokens); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestFormatUSD(t *testing.T) {
	for p, want := range map[metering.Picodollars]string{
		0: "$0.00", 5_000_000_000_000: "$5.00", 2_500_000: "$0.000003", 1_230_000_000: "$0.00123", 100_000_000_000: "$0.10",
	} {
		if got := formatUSD(p); got != want {
			t.Errorf("formatUSD(%d) = %q, want %q", p, got, want)
		}
	}
}

func TestQuotaWindowAcrossDST(t *testing.T) {
	p := NewPolicy(&gatewayconfig.Config{Quotas: gatewayconfig.Quotas{TimeZone: "America/New_York"}})
	// 2026-03-08 is 23 hours long in New York.
	start, end, day := p.Window(time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC))
	if day != "2026-03-08" || end.Sub(start) != 23*time.Hour {
		t.Errorf("window %s %s–%s", day, start, end)
	}
}

// replica is a Keeper with the ledger writer a gateway gives it, on a
// shared store.
type replica struct {
	k *Keeper
	w *metering.Writer
}

func newReplica(t *testing.T, st store.Quotas, now func() time.Time) replica {
	t.Helper()
	k := New(Options{Store: st, Registerer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), Now: now})
	w := metering.NewWriter(metering.StoreSink{Store: st}, metering.WriterOptions{OnCommit: k.Committed})
	t.Cleanup(func() {
		_ = w.Close(context.Background())
		k.Close(context.Background())
	})
	return replica{k, w}
}

// settle ends r at cost the way the completion core does: the
// reservation, then the final ledger entry with its lease.
func (rp replica) settle(t *testing.T, r *Reservation, user string, cost metering.Picodollars, now time.Time) {
	t.Helper()
	r.Settle(cost)
	if err := rp.w.Record(context.Background(), metering.Entry{Time: now, RequestID: newLeaseID(), User: user, Model: "m", Provider: "p", Cost: cost, Status: 200, Lease: r.Lease()}); err != nil {
		t.Fatal(err)
	}
}

// quiesce commits what is queued and returns the idle leases.
func (rp replica) quiesce(t *testing.T) {
	t.Helper()
	if err := rp.w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rp.k.Flush(context.Background())
}

// TestKeeper admits, grows and settles against a hard limit in a
// MemoryQuotas, the store a gateway without a database uses.
func TestKeeper(t *testing.T) {
	now := time.Date(2026, 1, 2, 20, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	rp := newReplica(t, store.NewMemoryQuotas(), clock)
	k := rp.k
	p := NewPolicy(&gatewayconfig.Config{
		Quotas:   gatewayconfig.Quotas{DailyHardUSD: "0.001"}, // 1e9 picodollars
		Failover: gatewayconfig.Failover{RequestTimeout: gatewayconfig.D(time.Minute)},
		Users:    []gatewayconfig.User{{Email: "rich@example.com", DailyHardUSD: "10"}},
	})
	ctx := context.Background()
	ask := Ask{User: "a@example.com", EndUser: "a@example.com", Worst: []metering.Picodollars{600_000_000, 900_000_000}}

	r, err := k.Admit(ctx, p, ask)
	if err != nil || r == nil || r.Lease() == "" {
		t.Fatalf("first: %v", err)
	}
	// The plan's pricier route is held: another request does not fit beside it.
	_, err = k.Admit(ctx, p, ask)
	var ex *Exceeded
	if !errors.As(err, &ex) || ex.Reserved != 900_000_000 || ex.RetryAfter() != "14400" ||
		!strings.Contains(ex.Error(), "$0.0009 more is held by requests in progress") || !strings.Contains(ex.Error(), "resets in 4h0m0s") {
		t.Fatalf("second: %v", err)
	}
	rp.settle(t, r, "a@example.com", 400_000_000, now)
	r.Settle(400_000_000) // once only
	rp.quiesce(t)
	st, err := k.Status(ctx, p, "a@example.com")
	if err != nil || st.SpentPicodollars != 400_000_000 || st.ReservedPicodollars != 0 || st.RemainingPicodollars != 600_000_000 {
		t.Fatalf("status %+v %v", st, err)
	}

	// Cost-aware: the first route is held, a pricier retry must be covered.
	p.costAware = true
	r, err = k.Admit(ctx, p, Ask{User: "a@example.com", Worst: []metering.Picodollars{500_000_000, 700_000_000}})
	if err != nil || r == nil {
		t.Fatalf("cost-aware: %v", err)
	}
	if r.Cover(ctx, 700_000_000) {
		t.Error("covered a retry the quota cannot pay for")
	}
	if !r.Cover(ctx, 600_000_000) || !r.Cover(ctx, 100) {
		t.Error("refused a retry within the quota")
	}
	rp.settle(t, r, "a@example.com", 0, now)

	// A per-user limit overrides the default.
	if r, err := k.Admit(ctx, p, Ask{User: "rich@example.com", Worst: []metering.Picodollars{5_000_000_000_000}}); r == nil || err != nil {
		t.Errorf("override: %v", err)
	}
	// No limits: no charge at all; a nil reservation does nothing.
	free := NewPolicy(&gatewayconfig.Config{})
	if r, err := k.Admit(ctx, free, Ask{User: "a@example.com", Worst: []metering.Picodollars{1 << 60}}); r != nil || err != nil || !r.Cover(ctx, 1<<60) || r.Lease() != "" {
		t.Errorf("no limits: %v %v", r, err)
	}
}

// TestKeeperLeases: requests admitted against a lease touch the store
// only when it runs dry; two replicas on one store never admit past the
// limit together; a lease near the limit shrinks to the request and goes
// back when idle; a replica that dies leaves its lease to be charged in
// full when it expires.
func TestKeeperLeases(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ctx := context.Background()
	const limit = 1_000_000 // picodollars
	p := NewPolicy(&gatewayconfig.Config{Quotas: gatewayconfig.Quotas{DailyHardUSD: "0.000001"}})
	counting := &countingQuotas{Quotas: store.NewMemoryQuotas()}
	a, b := newReplica(t, counting, clock), newReplica(t, counting, clock)
	ask := Ask{User: "u@example.com", Worst: []metering.Picodollars{1_000}}

	// A steady stream from one replica: the lease grows ahead of demand.
	for range 100 {
		r, err := a.k.Admit(ctx, p, ask)
		if err != nil {
			t.Fatal(err)
		}
		a.settle(t, r, "u@example.com", 100, clock())
	}
	if n := counting.grants.Load(); n > 10 {
		t.Errorf("100 admissions asked the store %d times", n)
	}

	// Both replicas at once, up to the limit: never past it.
	var wg sync.WaitGroup
	var admitted atomic.Int64
	for i := range 40 {
		rp := []replica{a, b}[i%2]
		wg.Go(func() {
			// Until refused with nothing in flight (spent); a refusal for
			// what is in flight is retried, as a client retries a 429. The
			// bound only keeps a broken keeper from hanging the test: a
			// fixed 200 attempts each ran out, now and then, on refusals
			// for concurrency before the limit bound.
			for range 100_000 {
				r, err := rp.k.Admit(ctx, p, Ask{User: "u@example.com", Worst: []metering.Picodollars{4_000}})
				var ex *Exceeded
				if errors.As(err, &ex) {
					if ex.Reserved == 0 {
						return // spent
					}
					time.Sleep(50 * time.Microsecond)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				admitted.Add(1)
				rp.settle(t, r, "u@example.com", 3_000, clock())
			}
		})
	}
	wg.Wait()
	a.quiesce(t)
	b.quiesce(t)
	st, err := a.k.Status(ctx, p, "u@example.com")
	if err != nil || st.SpentPicodollars > limit || st.SpentPicodollars+4_000 <= limit {
		t.Fatalf("status %+v %v after %d admitted: past the limit, or it did not bind", st, err, admitted.Load())
	}
	if st.ReservedPicodollars != 0 {
		t.Errorf("leases left after both replicas went idle: %+v", st)
	}

	// A replica killed holding a lease: the lease expires and is charged
	// in full, never less than what it may have spent.
	u2 := Ask{User: "v@example.com", Worst: []metering.Picodollars{10_000}}
	dead := New(Options{Store: counting, Registerer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), Now: clock})
	r, err := dead.Admit(ctx, p, u2)
	if err != nil {
		t.Fatal(err)
	}
	held := r.l.held
	dead.stopOnce.Do(func() { close(dead.stop) }) // SIGKILL: no return, no renewal
	if _, err := a.k.Admit(ctx, p, Ask{User: "v@example.com", Worst: []metering.Picodollars{metering.Picodollars(limit - held + 1)}}); err == nil {
		t.Fatal("admitted past a dead replica's live lease")
	}
	advance(leaseTTL)
	st, _ = a.k.Status(ctx, p, "v@example.com")
	if st.SpentPicodollars != held || st.ReservedPicodollars != 0 {
		t.Fatalf("after the dead lease expired: %+v, want %d charged", st, held)
	}
}

// countingQuotas counts the store's grants.
type countingQuotas struct {
	store.Quotas
	grants atomic.Int64
}

func (c *countingQuotas) GrantLease(ctx context.Context, l store.Lease, lo, hi int64, since, now time.Time, limit int64) (store.Grant, error) {
	c.grants.Add(1)
	return c.Quotas.GrantLease(ctx, l, lo, hi, since, now, limit)
}

// TestKeeperStoreDown: a hard limit that cannot be checked refuses.
func TestKeeperStoreDown(t *testing.T) {
	k := New(Options{Store: failingQuotas{}, Registerer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), Now: time.Now})
	defer k.Close(context.Background())
	p := NewPolicy(&gatewayconfig.Config{Quotas: gatewayconfig.Quotas{DailyHardUSD: "1"}})
	if _, err := k.Admit(context.Background(), p, Ask{User: "a@example.com", Worst: []metering.Picodollars{1}}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v", err)
	}
}

// failingQuotas is a store whose database is down.
type failingQuotas struct{ store.Quotas }

func (failingQuotas) GrantLease(context.Context, store.Lease, int64, int64, time.Time, time.Time, int64) (store.Grant, error) {
	return store.Grant{}, errors.New("connection refused")
}

// TestSoftLimitReachedThroughAnotherReplica: two replicas admit before
// either has settled, so each commits its half of the spend against a
// figure that misses the other's, and neither commit sees the soft limit
// crossed. The limit was reached all the same: the replica that next reads
// the store's figure sends the notification, once.
func TestSoftLimitReachedThroughAnotherReplica(t *testing.T) {
	var mu sync.Mutex
	var texts []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		texts = append(texts, string(b))
		mu.Unlock()
	}))
	t.Cleanup(slack.Close)
	hook := filepath.Join(t.TempDir(), "slack")
	if err := os.WriteFile(hook, []byte(slack.URL), 0o600); err != nil {
		t.Fatal(err)
	}
	var clockMu sync.Mutex
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	ctx := context.Background()
	// Soft $0.00001 (10,000,000 picodollars), hard far above.
	p := NewPolicy(&gatewayconfig.Config{Quotas: gatewayconfig.Quotas{
		DailySoftUSD: "0.00001", DailyHardUSD: "1", SlackWebhookFile: hook}})
	quotas := store.NewMemoryQuotas()
	a, b := newReplica(t, quotas, clock), newReplica(t, quotas, clock)
	ask := Ask{User: "u@example.com", Worst: []metering.Picodollars{6_000_000}}
	ra, err := a.k.Admit(ctx, p, ask)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.k.Admit(ctx, p, ask)
	if err != nil {
		t.Fatal(err)
	}
	a.settle(t, ra, "u@example.com", 6_000_000, clock())
	a.quiesce(t)
	b.settle(t, rb, "u@example.com", 6_000_000, clock()) // 12,000,000 in the store
	b.quiesce(t)
	// Both go idle and return their leases; their next requests take new
	// ones, granted against the store's figure.
	clockMu.Lock()
	now = now.Add(idleReturn)
	clockMu.Unlock()
	a.quiesce(t)
	b.quiesce(t)
	for _, rp := range []replica{a, b, a, b} {
		r, err := rp.k.Admit(ctx, p, ask)
		if err != nil {
			t.Fatal(err)
		}
		rp.settle(t, r, "u@example.com", 1_000_000, clock())
		rp.quiesce(t)
	}
	st, err := a.k.Status(ctx, p, "u@example.com")
	if err != nil || st.SpentPicodollars != 16_000_000 {
		t.Fatalf("status %+v %v, want 16,000,000 spent", st, err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(texts)
		mu.Unlock()
		if n > 0 {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // a second notification would be on its way by now
	mu.Lock()
	defer mu.Unlock()
	if len(texts) != 1 || !strings.Contains(texts[0], "soft") {
		t.Fatalf("Slack heard %d messages %q; want one about the soft limit", len(texts), texts)
	}
}

// TestStatusHoldsNothingWhileLeasesMove: with no request in flight, the
// quota's status shows nothing held, even read while the upkeep returns an
// idle lease (dropped here, then returned to a slow store).
func TestStatusHoldsNothingWhileLeasesMove(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ctx := context.Background()
	p := NewPolicy(&gatewayconfig.Config{Quotas: gatewayconfig.Quotas{DailyHardUSD: "1"}})
	rp := newReplica(t, slowReturns{store.NewMemoryQuotas()}, clock)
	ask := Ask{User: "u@example.com", Worst: []metering.Picodollars{1_000_000}}
	for i := range 20 {
		r, err := rp.k.Admit(ctx, p, ask)
		if err != nil {
			t.Fatal(err)
		}
		rp.settle(t, r, "u@example.com", 1_000, clock())
		if err := rp.w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { rp.k.Flush(ctx) }) // returns the idle lease, slowly
		for range 5 {
			st, err := rp.k.Status(ctx, p, "u@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if st.ReservedPicodollars != 0 {
				t.Fatalf("round %d: nothing in flight, yet the status holds %d picodollars", i, st.ReservedPicodollars)
			}
			time.Sleep(time.Millisecond)
		}
		wg.Wait()
	}
}

// slowReturns is a store whose lease returns take a few milliseconds, as
// a remote database's do.
type slowReturns struct{ store.Quotas }

func (s slowReturns) ReturnLease(ctx context.Context, l store.Lease) error {
	time.Sleep(3 * time.Millisecond)
	return s.Quotas.ReturnLease(ctx, l)
}
