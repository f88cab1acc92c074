package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// OpenSQLite opens (creating if needed) the SQLite store at path.
func OpenSQLite(ctx context.Context, path string, masterKey []byte, opts ...Option) (Store, error) {
	b, err := openSQLiteBackend(ctx, path)
	if err != nil {
		return nil, err
	}
	return newStore(ctx, b, "sqlite", masterKey, opts)
}

// sqliteBackend uses one connection for all writes and a small pool for
// reads. SQLite allows one writer at a time anyway; funnelling writes
// through one connection queues them in Go instead of bouncing them off
// SQLITE_BUSY, while WAL lets readers run alongside.
type sqliteBackend struct {
	w, r *sql.DB
}

func openSQLiteBackend(ctx context.Context, path string) (*sqliteBackend, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite store: %w: empty path", ErrInvalid)
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite store: %w: path %q must not contain ? or #", ErrInvalid, path)
	}
	// The file holds emails and the ledger: readable by the gateway only.
	// SQLite gives the -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	_ = f.Close()

	common := url.Values{}
	for _, p := range []string{
		"busy_timeout(10000)",
		"foreign_keys(1)",
		// NORMAL in WAL mode survives a crash of the process (SIGKILL
		// included) without losing a commit; only a power cut or kernel
		// crash can lose the last commits, never corrupt the file.
		"synchronous(NORMAL)",
	} {
		common.Add("_pragma", p)
	}
	wq := cloneValues(common)
	wq.Add("_pragma", "journal_mode(WAL)")
	// Deleted rows are overwritten with zeros instead of lingering in free
	// pages: erased sessions and key salts must not survive in the file.
	wq.Add("_pragma", "secure_delete(1)")
	// BEGIN IMMEDIATE takes the write lock up front, so a second process
	// opening the file (a migration) waits on busy_timeout instead of
	// failing on a read-to-write upgrade.
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}

	rq := cloneValues(common)
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", path+"?"+rq.Encode())
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	n := max(2, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return &sqliteBackend{w: w, r: r}, nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func (b *sqliteBackend) reader() querier { return stdQuerier{b.r} }
func (b *sqliteBackend) writer() querier { return stdQuerier{b.w} }

func (b *sqliteBackend) tx(ctx context.Context, write bool, fn func(querier) error) error {
	db := b.r
	if write {
		db = b.w
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(stdQuerier{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (b *sqliteBackend) isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// afterErase copies the WAL into the main file and truncates it, so the
// erased rows' old page images do not wait in the WAL for a later
// checkpoint. A reader holding an old snapshot can keep some frames alive
// until it finishes; the next checkpoint then takes them.
func (b *sqliteBackend) afterErase(ctx context.Context) error {
	if _, err := b.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func (b *sqliteBackend) close() error {
	return errors.Join(b.r.Close(), b.w.Close())
}
