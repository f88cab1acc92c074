package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
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
		res := func(id string, amount int64, ttl time.Duration) store.Reservation {
			return store.Reservation{ID: id, User: "a@x.io", AmountPicodollars: amount, At: now, ExpiresAt: now.Add(ttl)}
		}
		must := func(u store.QuotaUsage, ok bool, err error) (store.QuotaUsage, bool) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return u, ok
		}
		if _, ok := must(q.Reserve(ctx, res("r1", 60, time.Hour), day, now, 100)); !ok {
			t.Fatal("60 of 100 refused")
		}
		if u, ok := must(q.Reserve(ctx, res("r2", 50, time.Hour), day, now, 100)); ok || u.ReservedPicodollars != 60 {
			t.Fatalf("60+50 of 100 admitted, or usage %+v", u)
		}
		// Growing one's own reservation counts it once.
		if _, ok := must(q.Reserve(ctx, res("r1", 100, time.Hour), day, now, 100)); !ok {
			t.Fatal("r1 could not grow to the limit")
		}
		if err := q.Settle(ctx, store.Reservation{ID: "r1", User: "a@x.io", AmountPicodollars: 30, At: now}); err != nil {
			t.Fatal(err)
		}
		if u, err := q.QuotaUsage(ctx, "a@x.io", day, now); err != nil || u != (store.QuotaUsage{SpentPicodollars: 30}) {
			t.Fatalf("usage after settle %+v, %v", u, err)
		}
		// A crashed request's reservation holds until it expires.
		if _, ok := must(q.Reserve(ctx, res("crashed", 70, time.Minute), day, now, 100)); !ok {
			t.Fatal("70 refused")
		}
		if _, ok := must(q.Reserve(ctx, res("r3", 10, time.Hour), day, now, 100)); ok {
			t.Fatal("admitted past a live reservation")
		}
		later := now.Add(2 * time.Minute)
		if u, ok := must(q.Reserve(ctx, res("r3", 10, time.Hour), day, later, 100)); !ok || u.ReservedPicodollars != 0 {
			t.Fatalf("expired reservation still counted: %+v", u)
		}
		// The next day starts from zero; another user is separate.
		if u, err := q.QuotaUsage(ctx, "a@x.io", day.Add(24*time.Hour), later); err != nil || u.SpentPicodollars != 0 {
			t.Fatalf("next day %+v, %v", u, err)
		}
		if u, err := q.QuotaUsage(ctx, "b@x.io", day, later); err != nil || u != (store.QuotaUsage{}) {
			t.Fatalf("other user %+v, %v", u, err)
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

// TestQuotaStoreConcurrentReserve: many connections reserving for one
// user at once never commit more than the limit.
func TestQuotaStoreConcurrentReserve(t *testing.T) {
	forEachQuotaStore(t, func(t *testing.T, open func() store.Quotas) {
		ctx := context.Background()
		stores := []store.Quotas{open(), open()}
		now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q := stores[i%2]
				r := store.Reservation{ID: fmt.Sprint("c", i), User: "a@x.io", AmountPicodollars: 7, At: now, ExpiresAt: now.Add(time.Hour)}
				if _, ok, err := q.Reserve(ctx, r, now.Add(-time.Hour), now, 100); err != nil {
					t.Error(err)
				} else if ok {
					r.AmountPicodollars = 5
					if err := q.Settle(ctx, r); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		u, err := stores[0].QuotaUsage(ctx, "a@x.io", now.Add(-time.Hour), now)
		if err != nil || u.SpentPicodollars > 100 || u.ReservedPicodollars != 0 {
			t.Fatalf("usage %+v, %v", u, err)
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
