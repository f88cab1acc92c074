package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/chatapi"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// fixedKeys is a key table in memory, for measuring the check alone.
type fixedKeys struct {
	store.APIKeys
	rows []store.APIKeyHash
}

func (f *fixedKeys) APIKeyHashes(context.Context) ([]store.APIKeyHash, error) { return f.rows, nil }

// BenchmarkKeyLookup is what a personal key adds to a request: one SHA-256
// and a map read, among 500 keys (and, amortised, the re-read of the
// table the first request after it turned stale makes when no refresh
// loop runs).
func BenchmarkKeyLookup(b *testing.B) {
	f := &fixedKeys{}
	var key string
	for i := range 500 {
		key = fmt.Sprintf("cgw_%043d", i)
		h := chatapi.HashAPIKey(key)
		f.rows = append(f.rows, store.APIKeyHash{ID: fmt.Sprint(i), Owner: "alice@example.com", Hash: h[:]})
	}
	c := newKeyCache(f, time.Now, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if err := c.refresh(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, st := c.lookup(ctx, key); st != keyValid {
			b.Fatal(st)
		}
	}
}
