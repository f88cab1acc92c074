package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// BenchmarkExport is GET /api/me/export of a 10 MB archive (500 sessions
// of 10 messages of 2 kB) from the embedded store. Beside time and
// allocations it reports the heap's peak above its level before the
// export (peak-heap-MB, sampled every half millisecond, with GOGC at 5): a streamed export
// holds about one session at a time, one built in memory the whole archive
// and more.
//
//	go test ./internal/gateway -run '^$' -bench BenchmarkExport -benchtime 10x
func BenchmarkExport(b *testing.B) {
	e := newStoreEnv(b, gatewayconfig.StoreEmbedded, providersim.Options{}, nil)
	ctx := context.Background()
	text := strings.Repeat("lorem ipsum ", 2048/12)
	at := time.Now().UTC().Add(-time.Hour)
	var archive int64
	for i := range 500 {
		s := store.ExportedSession{Session: store.Session{ID: fmt.Sprintf("bench-%04d", i), Model: "sonnet", Title: "bench", CreatedAt: at, LastActivityAt: at}}
		for j := range 10 {
			role := store.RoleUser
			if j%2 == 1 {
				role = store.RoleAssistant
			}
			s.Messages = append(s.Messages, store.Message{ID: fmt.Sprintf("m-%04d-%02d", i, j), Role: role, Content: text, CreatedAt: at, UpdatedAt: at})
			archive += int64(len(text))
		}
		if err := e.st.Import(ctx, bob, s); err != nil {
			b.Fatal(err)
		}
	}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() int64 {
		metrics.Read(sample)
		return int64(sample[0].Value.Uint64())
	}
	// Collect often, so that the peak is what the export holds rather
	// than garbage awaiting the next cycle.
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	var peak int64
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		base := heap()
		var top atomic.Int64
		done := make(chan struct{})
		go func() {
			t := time.NewTicker(500 * time.Microsecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					if h := heap() - base; h > top.Load() {
						top.Store(h)
					}
				}
			}
		}()
		req, _ := http.NewRequest("GET", e.url+"/api/me/export", nil)
		req.Header = authHeader(bob)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		close(done)
		if err != nil || resp.StatusCode != http.StatusOK || n < archive {
			b.Fatalf("export: %d, %d bytes of an archive of %d, %v", resp.StatusCode, n, archive, err)
		}
		peak = max(peak, top.Load())
	}
	b.ReportMetric(float64(archive)/(1<<20), "archive-MB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}
