package metering_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// TestWriter runs the group-committed ledger against a real SQLite store:
// a row billed while streaming is replaced by the request's final one,
// whose cost is settled against its quota lease in the same commit; many
// requests ending at once share a few transactions; Close commits what
// is queued.
func TestWriter(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "store.db"), make([]byte, store.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	since := at.Add(-time.Hour)
	if g, err := st.GrantLease(ctx, store.Lease{ID: "L", User: "a@example.com", At: at, ExpiresAt: at.Add(time.Hour), Create: true}, 1_000_000, 1_000_000, since, at, 1<<40); err != nil || !g.OK {
		t.Fatalf("grant %+v %v", g, err)
	}
	sink := &countingSink{Sink: metering.StoreSink{Store: st}}
	var committed atomic.Int64
	w := metering.NewWriter(sink, metering.WriterOptions{Linger: 20 * time.Millisecond, OnCommit: func(b []metering.Entry, err error) {
		if err != nil {
			t.Error(err)
		}
		committed.Add(int64(len(b)))
	}})
	entry := func(id string, out int64, cost metering.Picodollars) metering.Entry {
		return metering.Entry{Time: at, RequestID: id, ClientRequestID: "client-id", User: "a@example.com", Model: "m", Provider: "p",
			Usage: metering.Usage{Input: 10, Output: out}, Cost: cost, Status: 200, Lease: "L"}
	}
	spend := func() (int64, int64) {
		t.Helper()
		days, err := st.UsageByDay(ctx, "a@example.com", at.Add(-time.Hour), at.Add(time.Hour), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		var n, cost int64
		for _, d := range days {
			n += d.Requests
			cost += d.CostPicodollars
		}
		return n, cost
	}

	provisional := entry("turn", 1, 10)
	provisional.Provisional, provisional.Lease = true, ""
	for _, e := range []metering.Entry{provisional, entry("turn", 7, 70)} {
		if err := w.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		if err := w.Record(ctx, entry(fmt.Sprint("r", i), 5, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n, cost := spend(); n != 201 || cost != 70+200*100 {
		t.Fatalf("%d rows, %d picodollars; want 201 rows and the final bills", n, cost)
	}
	if u, err := st.QuotaUsage(ctx, "a@example.com", since, at); err != nil || u.SpentPicodollars != 20_070 || u.ReservedPicodollars != 1_000_000-20_070 {
		t.Fatalf("quota %+v %v: the settled costs moved out of the lease", u, err)
	}
	if committed.Load() != 202 || sink.commits.Load() > 20 {
		t.Errorf("%d entries in %d commits: want every entry, in a few commits", committed.Load(), sink.commits.Load())
	}
	t.Logf("202 entries in %d commits", sink.commits.Load())
}

type countingSink struct {
	metering.Sink
	commits atomic.Int64
}

func (s *countingSink) Commit(ctx context.Context, b []metering.Entry) error {
	s.commits.Add(1)
	return s.Sink.Commit(ctx, b)
}

func TestMemoryLedger(t *testing.T) {
	var l metering.MemoryLedger
	for _, e := range []metering.Entry{
		{RequestID: "1", User: "a", Cost: 3}, {RequestID: "2", User: "b", Cost: 5},
		{RequestID: "3", User: "a", Cost: 1, Provisional: true}, {RequestID: "3", User: "a", Cost: 2, Provisional: true},
		{RequestID: "3", User: "a", Cost: 4},
	} {
		_ = l.Record(context.Background(), e)
	}
	if got := l.Spend("a"); got != 7 || len(l.Entries()) != 3 {
		t.Errorf("spend %d, %d entries; want the provisional rows replaced by the final one", got, len(l.Entries()))
	}
}

// TestWriterFlushCutsTheLinger: a Flush commits what was queued before it
// at once, not after the linger (an hour here), and returns while other
// requests keep queueing rows behind it; what they queue is committed by
// the next Flush.
func TestWriterFlushCutsTheLinger(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ledger metering.MemoryLedger
	w := metering.NewWriter(metering.MemorySink{Ledger: &ledger}, metering.WriterOptions{Linger: time.Hour, MaxBatch: 16})
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	record := func(id string) {
		if err := w.Record(ctx, metering.Entry{RequestID: id, User: "a", Cost: 1}); err != nil {
			t.Error(err)
		}
	}
	for i := range 40 { // a lingering batch and more queued behind it
		record(fmt.Sprint("before-", i))
	}
	// Others keep recording while the flushes run.
	stop := make(chan struct{})
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				record(fmt.Sprint("during-", i))
			}
		}
	}()
	for range 3 {
		if err := w.Flush(ctx); err != nil {
			t.Fatalf("flush under a steady stream of rows: %v", err)
		}
	}
	close(stop)
	<-busy
	for i := range 40 {
		if !slices.ContainsFunc(ledger.Entries(), func(e metering.Entry) bool { return e.RequestID == fmt.Sprint("before-", i) }) {
			t.Fatalf("before-%d not committed by the flush", i)
		}
	}
	record("last")
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ledger.Entries(), func(e metering.Entry) bool { return e.RequestID == "last" }) {
		t.Fatal("a row recorded before the second flush is not committed by it")
	}
}
