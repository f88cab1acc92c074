package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/internal/store/pgtest"
)

// forEachQuotaStore runs fn against the SQLite and the PostgreSQL store,
// and MemoryQuotas (every open of which is the same process's one store).
func forEachQuotaStore(t *testing.T, fn func(t *testing.T, open func() store.Quotas)) {
	key := make([]byte, 32)
	t.Run("memory", func(t *testing.T) {
		m := store.NewMemoryQuotas()
		fn(t, func() store.Quotas { return m })
	})
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "store.db")
		fn(t, func() store.Quotas {
			return openQuotas(t, func() (store.Store, error) { return store.OpenSQLite(context.Background(), path, key) })
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		fn(t, func() store.Quotas {
			return openQuotas(t, func() (store.Store, error) { return store.OpenPostgres(context.Background(), dsn, key) })
		})
	})
}

func openQuotas(t *testing.T, open func() (store.Store, error)) store.Quotas {
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestQuotaStore(t *testing.T) {
	forEachQuotaStore(t, func(t *testing.T, open func() store.Quotas) {
		ctx := context.Background()
		q := open()
		day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		now := day.Add(10 * time.Hour)
		lease := func(id string, ttl time.Duration, create bool) store.Lease {
			return store.Lease{ID: id, User: "a@x.io", Holder: "test", At: now, ExpiresAt: now.Add(ttl), Create: create}
		}
		grant := func(l store.Lease, min, max int64, at time.Time) store.Grant {
			t.Helper()
			g, err := q.GrantLease(ctx, l, min, max, day, at, 100)
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		settle := func(id, l string, cost int64) {
			t.Helper()
			e := store.SpendEntry{RequestID: id, User: "a@x.io", Model: "m", Provider: "p", CostPicodollars: cost, Status: "200", Time: now}
			if err := q.CommitSpend(ctx, []store.SpendWrite{{Entry: e, Lease: l}}); err != nil {
				t.Fatal(err)
			}
		}
		usage := func(at time.Time) store.QuotaUsage {
			t.Helper()
			u, err := q.QuotaUsage(ctx, "a@x.io", day, at)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}

		// The largest amount in [min, max] that fits is granted.
		if g := grant(lease("l1", time.Hour, true), 10, 60, now); !g.OK || g.Added != 60 || g.Amount != 60 {
			t.Fatalf("l1: %+v", g)
		}
		if g := grant(lease("l2", time.Hour, true), 10, 60, now); !g.OK || g.Added != 40 || g.Usage.ReservedPicodollars != 60 {
			t.Fatalf("l2 takes what is left: %+v", g)
		}
		if g := grant(lease("l3", time.Hour, true), 1, 1, now); g.OK {
			t.Fatalf("a third lease past the limit: %+v", g)
		}
		// A settled cost moves from the lease into spend; the sum holds.
		settle("r1", "l1", 25)
		if u := usage(now); u != (store.QuotaUsage{SpentPicodollars: 25, ReservedPicodollars: 75}) {
			t.Fatalf("after settling 25 of l1: %+v", u)
		}
		// Growing a live lease counts what it holds once; a renewal with
		// nothing to add still moves its expiry.
		if g := grant(lease("l1", time.Hour, false), 0, 0, now); !g.OK || g.Amount != 35 {
			t.Fatalf("renew l1: %+v", g)
		}
		// Returning frees what a lease holds; its later costs add nothing.
		if err := q.ReturnLease(ctx, lease("l2", 0, false)); err != nil {
			t.Fatal(err)
		}
		if g := grant(lease("l1", time.Hour, false), 40, 40, now); !g.OK || g.Amount != 75 {
			t.Fatalf("l1 grows into l2's room: %+v", g)
		}
		settle("r2", "l2", 5)
		if _, err := q.GrantLease(ctx, lease("l2", time.Hour, false), 0, 0, day, now, 100); !errors.Is(err, store.ErrLeaseGone) {
			t.Fatalf("renewing a returned lease: %v", err)
		}
		// A lease not renewed is charged in full when it expires: l1 held
		// 75, so spend is 25 + 75 and nothing is left.
		grant(lease("l1", time.Minute, false), 0, 0, now)
		later := now.Add(2 * time.Minute)
		if u := usage(later); u != (store.QuotaUsage{SpentPicodollars: 100}) {
			t.Fatalf("after l1 expired: %+v", u)
		}
		if g := grant(lease("l4", time.Hour, true), 1, 1, later); g.OK {
			t.Fatalf("granted past an expired lease's full charge: %+v", g)
		}
		if _, err := q.GrantLease(ctx, lease("l1", time.Hour, false), 0, 0, day, later, 100); !errors.Is(err, store.ErrLeaseGone) {
			t.Fatalf("renewing an expired lease: %v", err)
		}
		settle("r3", "l1", 10) // a cost of the dead holder: already in the charge
		if u := usage(later); u.SpentPicodollars != 100 {
			t.Fatalf("an expired lease's cost counted twice: %+v", u)
		}
		// The next day starts from zero; another user is separate; without
		// a hard limit a lease only tracks spend.
		if u, err := q.QuotaUsage(ctx, "a@x.io", day.Add(24*time.Hour), later); err != nil || u.SpentPicodollars != 0 {
			t.Fatalf("next day %+v, %v", u, err)
		}
		if u, err := q.QuotaUsage(ctx, "b@x.io", day, later); err != nil || u != (store.QuotaUsage{}) {
			t.Fatalf("other user %+v, %v", u, err)
		}
		if g, err := q.GrantLease(ctx, store.Lease{ID: "b1", User: "b@x.io", At: now, ExpiresAt: later, Create: true}, 5, 1<<60, day, now, math.MaxInt64); err != nil || !g.OK || g.Added != 1<<60 {
			t.Fatalf("no hard limit: %+v %v", g, err)
		}
		// One notification per (user, window, threshold), across connections.
		q2 := open()
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				qq := q
				if i%2 == 1 {
					qq = q2
				}
				ok, err := qq.MarkNotified(ctx, "a@x.io", "2026-03-01", "soft", now)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d callers told to notify, want 1", wins)
		}
		if ok, _ := q.MarkNotified(ctx, "a@x.io", "2026-03-02", "soft", now); !ok {
			t.Error("next window not notified")
		}
	})
}

// TestQuotaStoreConcurrentLeases: many connections leasing and settling
// for one user at once never hold and spend more than the limit, and
// every settled cost is counted once.
func TestQuotaStoreConcurrentLeases(t *testing.T) {
	forEachQuotaStore(t, func(t *testing.T, open func() store.Quotas) {
		ctx := context.Background()
		stores := []store.Quotas{open(), open()}
		now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		since := now.Add(-time.Hour)
		var wg sync.WaitGroup
		var settled atomic.Int64
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q := stores[i%2]
				l := store.Lease{ID: fmt.Sprint("c", i), User: "a@x.io", At: now, ExpiresAt: now.Add(time.Hour), Create: true}
				g, err := q.GrantLease(ctx, l, 7, 14, since, now, 100)
				if err != nil || !g.OK {
					if err != nil {
						t.Error(err)
					}
					return
				}
				cost := g.Amount - 2
				e := store.SpendEntry{RequestID: fmt.Sprint("r", i), User: "a@x.io", CostPicodollars: cost, Time: now}
				if err := q.CommitSpend(ctx, []store.SpendWrite{{Entry: e, Lease: l.ID}}); err != nil {
					t.Error(err)
				}
				settled.Add(cost)
				if err := q.ReturnLease(ctx, l); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		u, err := stores[0].QuotaUsage(ctx, "a@x.io", since, now)
		if err != nil || u.SpentPicodollars > 100 || u.ReservedPicodollars != 0 || u.SpentPicodollars != settled.Load() {
			t.Fatalf("usage %+v (settled %d), %v", u, settled.Load(), err)
		}
		t.Logf("spent %d of 100", u.SpentPicodollars)
	})
}

func TestQuotaFitsCannotOverflow(t *testing.T) {
	const maxInt = 1<<63 - 1
	for _, tc := range []struct {
		u                  store.QuotaUsage
		own, amount, limit int64
		want               bool
	}{
		{store.QuotaUsage{SpentPicodollars: 60, ReservedPicodollars: 30}, 0, 10, 100, true},
		{store.QuotaUsage{SpentPicodollars: 60, ReservedPicodollars: 30}, 0, 11, 100, false},
		{store.QuotaUsage{SpentPicodollars: 60, ReservedPicodollars: 30}, 30, 40, 100, true},
		// Would wrap around to a negative sum.
		{store.QuotaUsage{SpentPicodollars: 1}, 0, maxInt, 5_000_000_000_000, false},
		{store.QuotaUsage{SpentPicodollars: 1}, 0, maxInt, maxInt, false},
	} {
		if got := store.QuotaFits(tc.u, tc.own, tc.amount, tc.limit); got != tc.want {
			t.Errorf("QuotaFits(%+v, %d, %d, %d) = %v", tc.u, tc.own, tc.amount, tc.limit, got)
		}
	}
}
