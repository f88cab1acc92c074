package gateway_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/internal/store/pgtest"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// BenchmarkChatTurn measures what persistence adds to a chat turn: the
// same streamed request through the stateless API and as a stateful turn
// (history read, user message appended, reply begun, saved and finished,
// ledger row written and revised), on SQLite and on a PostgreSQL server
// with fsync on. It reports p50 and p90 per turn; compare stateful with
// stateless of the same store.
//
//	go test -run '^$' -bench BenchmarkChatTurn -benchtime 300x ./internal/gateway/
func BenchmarkChatTurn(b *testing.B) {
	for _, kind := range storeKinds {
		b.Run(kind, func(b *testing.B) {
			var opts []envOption
			if kind == gatewayconfig.StorePostgres {
				opts = append(opts, durablePostgres(b))
			}
			log := slog.New(slog.NewJSONHandler(io.Discard, nil))
			e := newStoreEnv(b, gatewayconfig.StoreEmbedded, providersim.Options{ReplyWords: 64, Chunks: 32}, log, opts...)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
			stateless := []byte(`{"model":"sonnet","max_tokens":4096,"stream":true,"messages":[{"role":"user","content":"Tell me a short story about a gateway."}]}`)
			turn := []byte(`{"content":"Tell me a short story about a gateway."}`)

			b.Run("stateless", func(b *testing.B) {
				measure(b, func() (string, []byte) { return e.url + "/v1/messages", stateless }, client)
			})
			b.Run("stateful", func(b *testing.B) {
				measure(b, func() (string, []byte) {
					// A fresh session per turn keeps the history (and so the
					// request) the same size as the stateless one.
					s, err := e.st.CreateSession(context.Background(), alice, store.NewSession{Model: "sonnet", Title: "bench"})
					if err != nil {
						b.Fatal(err)
					}
					return e.url + "/api/sessions/" + s.ID + "/messages", turn
				}, client)
			})
		})
	}
}

// measure sends one request per iteration and reports the percentiles of
// the time from sending it to the end of its stream.
func measure(b *testing.B, next func() (string, []byte), client *http.Client) {
	var lat []time.Duration
	for b.Loop() {
		url, body := next()
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header = authHeader(alice)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != 200 {
			msg, _ := io.ReadAll(resp.Body)
			b.Fatalf("%d %s", resp.StatusCode, msg)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.9), "p90-ms")
}

// durablePostgres points the env at a database on a server of its own
// with fsync and synchronous commit on, as in production.
func durablePostgres(b *testing.B) envOption {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgtest.Start(ctx, pgtest.Options{Durable: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Stop() })
	_, dsn, err := srv.CreateDatabase(ctx)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	dsnFile := filepath.Join(dir, "dsn")
	writeFile(b, dsnFile, dsn)
	return func(c *gatewayconfig.Config) {
		c.Sessions.Store = gatewayconfig.Store{Type: gatewayconfig.StorePostgres, DSNFile: dsnFile}
	}
}
