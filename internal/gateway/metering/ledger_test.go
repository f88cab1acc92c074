package metering_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// TestStoreLedger runs the writer against a real SQLite store: a repeated
// request id bills once, and a row billed while streaming is replaced by
// the request's final record.
func TestStoreLedger(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "store.db"), make([]byte, store.MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	l := metering.NewStoreLedger(st)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	entry := func(id string, out int64, cost metering.Picodollars) metering.Entry {
		return metering.Entry{Time: at, RequestID: id, User: "a@example.com", Model: "m", Provider: "p",
			Usage: metering.Usage{Input: 10, Output: out}, Cost: cost, Status: 200}
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

	if err := l.Record(ctx, entry("r1", 5, 100)); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, entry("r1", 500, 9999)); err != nil {
		t.Fatal(err)
	}
	if n, cost := spend(); n != 1 || cost != 100 {
		t.Fatalf("a repeated request id: %d rows, %d picodollars; want the first bill only", n, cost)
	}

	provisional := func(out int64, cost metering.Picodollars) metering.Entry {
		e := entry("turn", out, cost)
		e.Provisional = true
		return e
	}
	if err := l.Record(ctx, provisional(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(ctx, provisional(3, 30)); err != nil {
		t.Fatal(err)
	}
	if n, cost := spend(); n != 2 || cost != 130 {
		t.Fatalf("while streaming: %d rows, %d picodollars; want the last revision", n, cost)
	}
	if err := l.Record(ctx, entry("turn", 7, 70)); err != nil {
		t.Fatal(err)
	}
	if n, cost := spend(); n != 2 || cost != 170 {
		t.Fatalf("after the final record: %d rows, %d picodollars", n, cost)
	}
	// The final record ended the revisions: a replay of the id bills nothing.
	if err := l.Record(ctx, entry("turn", 700, 7000)); err != nil {
		t.Fatal(err)
	}
	if _, cost := spend(); cost != 170 {
		t.Fatalf("a replayed turn id changed the bill: %d", cost)
	}
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
