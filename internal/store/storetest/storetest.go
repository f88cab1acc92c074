// Package storetest is the conformance suite every store.Store
// implementation must pass. Each implementation's tests call Run with a
// Harness that makes fresh databases of its kind.
package storetest

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// Harness makes databases for the suite.
type Harness struct {
	// NewDB returns a fresh, empty database, removed when t ends.
	NewDB func(t *testing.T) DB
}

// DB is one database that stores can be opened on, one after another or
// several at once.
type DB interface {
	// Open opens a store on the database (running migrations) and closes
	// it when t ends; the suite may close it earlier.
	Open(t *testing.T, masterKey []byte, opts ...store.Option) (store.Store, error)
	// Dump calls visit with everything someone holding the database could
	// read: the files of an embedded database; a text dump of every table
	// and the data files of a server. The suite calls it after closing
	// every store it opened on the database.
	Dump(t *testing.T, visit func(name string, data []byte))
}

// MasterKey is the key the suite opens stores with.
var MasterKey = bytes.Repeat([]byte{0x5c}, store.MasterKeySize)

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"SessionLifecycle", testSessionLifecycle},
		{"OwnerScoping", testOwnerScoping},
		{"IdleRollover", testIdleRollover},
		{"ListPagination", testListPagination},
		{"Messages", testMessages},
		{"Streaming", testStreaming},
		{"RecoverIncomplete", testRecoverIncomplete},
		{"Attachments", testAttachments},
		{"ReplaceUserMessage", testReplaceUserMessage},
		{"LedgerByDayInTimeZone", testLedgerByDay},
		{"LedgerTotals", testLedgerTotals},
		{"LedgerBatch", testLedgerBatch},
		{"LedgerBigBatch", testLedgerBigBatch},
		{"Audit", testAudit},
		{"Shares", testShares},
		{"APIKeys", testAPIKeys},
		{"ExportImportRoundTrip", testExportImport},
		{"DeleteUserData", testDeleteUserData},
		{"Retention", testRetention},
		{"MigrationsIdempotent", testMigrations},
		{"WrongMasterKey", testWrongMasterKey},
		{"Canary", testCanary},
		{"Concurrency", testConcurrency},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, h)
		})
	}
}

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, h Harness, opts ...store.Option) store.Store {
	t.Helper()
	return r(h.NewDB(t).Open(t, MasterKey, opts...)).must(t)
}

// result carries a call's value and error to must, so a test reads
// r(s.GetSession(…)).must(t).
type result[T any] struct {
	v   T
	err error
}

func r[T any](v T, err error) result[T] { return result[T]{v, err} }

func (x result[T]) must(t *testing.T) T {
	t.Helper()
	if x.err != nil {
		t.Fatal(x.err)
	}
	return x.v
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}
