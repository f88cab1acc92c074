package quota

import (
	"context"
	"errors"
	"log/slog"
	"strings"
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

// TestKeeper admits, grows and settles charges against a hard limit in a
// MemoryQuotas, the store a gateway without a database uses.
func TestKeeper(t *testing.T) {
	now := time.Date(2026, 1, 2, 20, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	k := New(Options{Store: store.NewMemoryQuotas(), Registerer: reg, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	p := NewPolicy(&gatewayconfig.Config{
		Quotas:   gatewayconfig.Quotas{DailyHardUSD: "0.001"}, // 1e9 picodollars
		Failover: gatewayconfig.Failover{RequestTimeout: gatewayconfig.D(time.Minute)},
		Users:    []gatewayconfig.User{{Email: "rich@example.com", DailyHardUSD: "10"}},
	})
	ctx := context.Background()
	ask := Ask{User: "a@example.com", EndUser: "a@example.com", Worst: []metering.Picodollars{600_000_000, 900_000_000}}

	r, err := k.Admit(ctx, p, ask)
	if err != nil || r == nil {
		t.Fatalf("first: %v", err)
	}
	// The plan's pricier route is held: another request does not fit beside it.
	_, err = k.Admit(ctx, p, ask)
	var ex *Exceeded
	if !errors.As(err, &ex) || ex.Reserved != 900_000_000 || ex.RetryAfter() != "14400" ||
		!strings.Contains(ex.Error(), "$0.0009 more is held by requests in progress") || !strings.Contains(ex.Error(), "resets in 4h0m0s") {
		t.Fatalf("second: %v", err)
	}
	r.Settle(ctx, 400_000_000)
	r.Settle(ctx, 400_000_000) // once only
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
	r.Settle(ctx, 0)

	// A per-user limit overrides the default.
	if r, err := k.Admit(ctx, p, Ask{User: "rich@example.com", Worst: []metering.Picodollars{5_000_000_000_000}}); r == nil || err != nil {
		t.Errorf("override: %v", err)
	}
	// No limits: no charge at all; a nil reservation does nothing.
	free := NewPolicy(&gatewayconfig.Config{})
	if r, err := k.Admit(ctx, free, Ask{User: "a@example.com", Worst: []metering.Picodollars{1 << 60}}); r != nil || err != nil || !r.Cover(ctx, 1<<60) {
		t.Errorf("no limits: %v %v", r, err)
	}
}

// TestKeeperStoreDown: a hard limit that cannot be checked refuses.
func TestKeeperStoreDown(t *testing.T) {
	k := New(Options{Store: failingQuotas{}, Registerer: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler), Now: time.Now})
	p := NewPolicy(&gatewayconfig.Config{Quotas: gatewayconfig.Quotas{DailyHardUSD: "1"}})
	if _, err := k.Admit(context.Background(), p, Ask{User: "a@example.com", Worst: []metering.Picodollars{1}}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v", err)
	}
}

// failingQuotas is a charges store whose database is down.
type failingQuotas struct{ store.Quotas }

func (failingQuotas) Reserve(context.Context, store.Reservation, time.Time, time.Time, int64) (store.QuotaUsage, bool, error) {
	return store.QuotaUsage{}, false, errors.New("connection refused")
}
