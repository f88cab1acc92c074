package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// The shared server: started on first use by NewDatabase, stopped by RunMain.
var shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

// Shared returns the test binary's shared server, starting it on first use.
// A failed start is remembered, so every test reports the same cause quickly.
func Shared() (*Server, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.srv, shared.err = Start(ctx, Options{})
	}
	return shared.srv, shared.err
}

// RunMain runs the tests and then stops the shared server if one was
// started. Use it from TestMain: os.Exit(pgtest.RunMain(m)).
func RunMain(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		shared.srv = nil
	}
	return code
}

// NewDatabase creates a fresh database on the shared server, dropped when
// the test ends, and returns its DSN. It skips the test if STORE_SKIP_POSTGRES=1
// and fails it, saying why, if no server can be started.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	_, dsn := NewNamedDatabase(tb)
	return dsn
}

// NewNamedDatabase is NewDatabase that also returns the database's name.
func NewNamedDatabase(tb testing.TB) (name, dsn string) {
	tb.Helper()
	if os.Getenv(SkipEnv) == "1" {
		tb.Skipf("%s=1: skipping PostgreSQL", SkipEnv)
	}
	srv, err := Shared()
	if err != nil {
		tb.Fatalf("cannot start a PostgreSQL server for this test (set %s=1 to skip): %v", SkipEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, dsn, err = srv.CreateDatabase(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.DropDatabase(ctx, name); err != nil {
			tb.Error(err)
		}
	})
	return name, dsn
}
