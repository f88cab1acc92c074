package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

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
	// stmts holds the write transactions' statements prepared once on the
	// writer connection (query text → *sql.Stmt): SQLite parses and plans
	// a statement on every prepare, which cost more than running the
	// ledger's inserts. The queries are the package's constants, so the
	// cache stays small; maxStmts bounds it all the same.
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

const maxStmts = 128

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
		fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()),
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
	if err := pingUntilFree(ctx, w); err != nil {
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

// sqliteBusyTimeout is how long a statement waits for another connection's
// (or process's) lock before it fails with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// pingUntilFree opens the writer's first connection. Switching a new file
// into WAL mode needs the file to itself, and SQLite answers SQLITE_BUSY
// there without its busy handler while another process (a replica
// starting at the same moment) does the same: that is retried for as long
// as busy_timeout would wait.
func pingUntilFree(ctx context.Context, w *sql.DB) error {
	deadline := time.Now().Add(sqliteBusyTimeout)
	for {
		err := w.PingContext(ctx)
		var e *sqlite.Error
		if err == nil || !errors.As(err, &e) || e.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
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
	var q querier = stdQuerier{tx}
	var missed []string
	if write {
		q = sqliteTxQuerier{tx: tx, b: b, missed: &missed}
	}
	err = fn(q)
	if err != nil {
		_ = tx.Rollback()
	} else if err = tx.Commit(); err != nil {
		err = fmt.Errorf("commit: %w", err)
	}
	if len(missed) > 0 {
		b.prepare(ctx, missed)
	}
	return err
}

// cached is query's statement prepared on the writer connection, if any.
func (b *sqliteBackend) cached(query string) *sql.Stmt {
	b.stmtMu.Lock()
	defer b.stmtMu.Unlock()
	return b.stmts[query]
}

// prepare caches the statements a write transaction ran unprepared. It
// runs after the transaction, when the writer's one connection is free
// (preparing on it inside would wait for it forever). Only single DML
// statements qualify: a migration's scripts run as they are.
func (b *sqliteBackend) prepare(ctx context.Context, queries []string) {
	for _, query := range queries {
		head := strings.ToUpper(strings.TrimSpace(query))
		if strings.Contains(query, ";") || !(strings.HasPrefix(head, "INSERT") || strings.HasPrefix(head, "UPDATE") ||
			strings.HasPrefix(head, "DELETE") || strings.HasPrefix(head, "SELECT") || strings.HasPrefix(head, "WITH")) {
			continue
		}
		b.stmtMu.Lock()
		_, have := b.stmts[query]
		full := len(b.stmts) >= maxStmts
		b.stmtMu.Unlock()
		if have || full {
			continue
		}
		st, err := b.w.PrepareContext(ctx, query)
		if err != nil {
			continue // it runs unprepared, where its error shows
		}
		b.stmtMu.Lock()
		if _, have := b.stmts[query]; have || len(b.stmts) >= maxStmts {
			_ = st.Close()
		} else {
			if b.stmts == nil {
				b.stmts = map[string]*sql.Stmt{}
			}
			b.stmts[query] = st
		}
		b.stmtMu.Unlock()
	}
}

// sqliteTxQuerier runs a write transaction's statements from the
// writer's prepared statements where it has them (the writer has one
// connection, so the transaction's is the one they were prepared on) and
// notes the others, to prepare once the transaction ends.
type sqliteTxQuerier struct {
	tx     *sql.Tx
	b      *sqliteBackend
	missed *[]string
}

func (q sqliteTxQuerier) stmt(ctx context.Context, query string) *sql.Stmt {
	if st := q.b.cached(query); st != nil {
		return q.tx.StmtContext(ctx, st)
	}
	if !slices.Contains(*q.missed, query) {
		*q.missed = append(*q.missed, query)
	}
	return nil
}

func (q sqliteTxQuerier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	st := q.stmt(ctx, query)
	if st == nil {
		return stdQuerier{q.tx}.exec(ctx, query, args...)
	}
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqliteTxQuerier) query(ctx context.Context, query string, args ...any) (rows, error) {
	st := q.stmt(ctx, query)
	if st == nil {
		return stdQuerier{q.tx}.query(ctx, query, args...)
	}
	r, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return stdRows{r}, nil
}

func (q sqliteTxQuerier) queryRow(ctx context.Context, query string, args ...any) row {
	st := q.stmt(ctx, query)
	if st == nil {
		return stdQuerier{q.tx}.queryRow(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
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
	b.stmtMu.Lock()
	for _, st := range b.stmts {
		_ = st.Close()
	}
	b.stmts = nil
	b.stmtMu.Unlock()
	return errors.Join(b.r.Close(), b.w.Close())
}
