package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/internal/store/pgtest"
	"github.com/chatgateway/chatgateway-operator/internal/store/storetest"
)

// The benchmarks measure what persistence adds to one chat turn, so the
// PostgreSQL they use is durable (fsync and synchronous commit on, like
// production), unlike the tests' throwaway server.
var bench struct {
	once sync.Once
	srv  *pgtest.Server
	err  error
}

func benchPostgres(b *testing.B) store.Store {
	b.Helper()
	if os.Getenv(pgtest.SkipEnv) == "1" {
		b.Skipf("%s=1", pgtest.SkipEnv)
	}
	bench.once.Do(func() { bench.srv, bench.err = pgtest.Start(context.Background(), pgtest.Options{Durable: true}) })
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	ctx := context.Background()
	name, dsn, err := bench.srv.CreateDatabase(ctx)
	if err != nil {
		b.Fatal(err)
	}
	s, err := store.OpenPostgres(ctx, dsn, storetest.MasterKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = s.Close()
		_ = bench.srv.DropDatabase(ctx, name)
	})
	return s
}

func stopBenchServer() {
	if bench.srv != nil {
		_ = bench.srv.Stop()
	}
}

func benchSQLite(b *testing.B) store.Store {
	b.Helper()
	s, err := store.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "bench.db"), storetest.MasterKey)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

var (
	prompt = strings.Repeat("How do I keep basil alive indoors? ", 12)    // ~400 bytes
	reply  = strings.Repeat("Give it six hours of light and water. ", 54) // ~2 KiB
)

// BenchmarkAppendTurn stores one non-streamed turn: the user's message, the
// assistant's reply and the ledger row.
func BenchmarkAppendTurn(b *testing.B) {
	turn := func(ctx context.Context, s store.Store, owner, sid string, i int) error {
		if _, err := s.AppendMessage(ctx, owner, sid, store.NewMessage{Role: store.RoleUser, Content: prompt, InputTokens: 100}); err != nil {
			return err
		}
		if _, err := s.AppendMessage(ctx, owner, sid, store.NewMessage{Role: store.RoleAssistant, Content: reply, OutputTokens: 500}); err != nil {
			return err
		}
		return s.RecordSpend(ctx, benchSpend(owner, i))
	}
	b.Run("sqlite", func(b *testing.B) { benchTurns(b, benchSQLite(b), turn) })
	b.Run("postgres", func(b *testing.B) { benchTurns(b, benchPostgres(b), turn) })
}

// BenchmarkStreamedTurn stores one streamed turn as the gateway does: the
// user's message, the reply begun, checkpointed once, finished, and the
// ledger row.
func BenchmarkStreamedTurn(b *testing.B) {
	turn := func(ctx context.Context, s store.Store, owner, sid string, i int) error {
		if _, err := s.AppendMessage(ctx, owner, sid, store.NewMessage{Role: store.RoleUser, Content: prompt, InputTokens: 100}); err != nil {
			return err
		}
		m, err := s.BeginAssistantMessage(ctx, owner, sid)
		if err != nil {
			return err
		}
		if err := s.UpdateAssistantMessage(ctx, owner, sid, m.ID, reply[:len(reply)/2]); err != nil {
			return err
		}
		if err := s.FinishAssistantMessage(ctx, owner, sid, m.ID, store.Finish{Content: reply, OutputTokens: 500, Status: store.StatusComplete}); err != nil {
			return err
		}
		return s.RecordSpend(ctx, benchSpend(owner, i))
	}
	b.Run("sqlite", func(b *testing.B) { benchTurns(b, benchSQLite(b), turn) })
	b.Run("postgres", func(b *testing.B) { benchTurns(b, benchPostgres(b), turn) })
}

func benchSpend(owner string, i int) store.SpendEntry {
	return store.SpendEntry{
		RequestID: fmt.Sprintf("req-%d-%d", time.Now().UnixNano(), i), User: owner, Model: "sonnet",
		RequestedModel: "sonnet", Provider: "anthropic", InputTokens: 100, OutputTokens: 500,
		CostPicodollars: 7_800_000_000, Status: "200",
	}
}

// benchTurns runs turn b.N times and reports the median and 99th
// percentile besides the mean: the latency one user feels is the median,
// and fsync makes the tail long.
func benchTurns(b *testing.B, s store.Store, turn func(context.Context, store.Store, string, string, int) error) {
	ctx := context.Background()
	const owner = "bench@example.com"
	sess, err := s.CreateSession(ctx, owner, store.NewSession{Model: "sonnet", Title: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := turn(ctx, s, owner, sess.ID, i); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns/turn")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns/turn")
}

// BenchmarkCommitSpend commits the ledger writer's batches: one row settled
// against a lease per batch (a lone request), 32 (a gateway under load, or
// a linger's worth of requests one at a time) and 256 (a linger's worth
// at thousands of requests a second).
func BenchmarkCommitSpend(b *testing.B) {
	for _, n := range []int{1, 32, 256} {
		b.Run(fmt.Sprintf("sqlite/batch=%d", n), func(b *testing.B) { benchCommitSpend(b, benchSQLite(b), n) })
		b.Run(fmt.Sprintf("postgres/batch=%d", n), func(b *testing.B) { benchCommitSpend(b, benchPostgres(b), n) })
	}
}

func benchCommitSpend(b *testing.B, s store.Store, n int) {
	ctx := context.Background()
	const owner = "bench@example.com"
	now := time.Now()
	l := store.Lease{ID: "lease-bench", User: owner, Holder: "bench", At: now, ExpiresAt: now.Add(time.Hour), Create: true}
	if g, err := s.GrantLease(ctx, l, 1<<50, 1<<50, now.Add(-time.Hour), now, 1<<60); err != nil || !g.OK {
		b.Fatalf("lease: %v %+v", err, g)
	}
	writes := make([]store.SpendWrite, n)
	b.ReportAllocs()
	i := 0
	cpu0 := cpuTime()
	for b.Loop() {
		for j := range writes {
			e := benchSpend(owner, i)
			e.CostPicodollars = 1000
			writes[j] = store.SpendWrite{Entry: e, Lease: l.ID}
			i++
		}
		if err := s.CommitSpend(ctx, writes); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
	// The process's CPU time per row (user and system, GC included): what
	// the batch costs the gateway's core, which the wall time above hides
	// on a machine shared with other work.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*n), "cpu-ns/row")
}

// cpuTime is the process's CPU time so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
