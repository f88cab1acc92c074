package store

import (
	"context"
	"database/sql"
	"errors"
)

// The two dialects share every query: both accept $1-style parameters,
// RETURNING, ON CONFLICT and row values, and timestamps are integers in
// both. What differs (drivers, transactions, error codes, housekeeping)
// hides behind backend.

// querier runs statements, on a pool or inside a transaction.
type querier interface {
	exec(ctx context.Context, query string, args ...any) (rowsAffected int64, err error)
	query(ctx context.Context, query string, args ...any) (rows, error)
	queryRow(ctx context.Context, query string, args ...any) row
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// row.Scan returns an error matching sql.ErrNoRows when there is no row,
// whichever the driver (pgx.ErrNoRows wraps it).
type row interface {
	Scan(dest ...any) error
}

type backend interface {
	// reader runs single read statements.
	reader() querier
	// writer runs single write statements, each its own transaction.
	writer() querier
	// tx runs fn in a transaction: read-write, or a read-only snapshot.
	tx(ctx context.Context, write bool, fn func(querier) error) error
	// isUniqueViolation reports a unique or primary key violation.
	isUniqueViolation(err error) bool
	// afterErase scrubs what the database keeps of deleted rows beyond
	// the tables, where the dialect allows.
	afterErase(ctx context.Context) error
	close() error
}

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }

// sqlQuerier adapts database/sql.
type sqlQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type stdQuerier struct{ q sqlQuerier }

func (s stdQuerier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s stdQuerier) query(ctx context.Context, query string, args ...any) (rows, error) {
	r, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return stdRows{r}, nil
}

func (s stdQuerier) queryRow(ctx context.Context, query string, args ...any) row {
	return s.q.QueryRowContext(ctx, query, args...)
}

type stdRows struct{ *sql.Rows }

// Close drops the error: Err, checked after the loop, reports what matters.
func (r stdRows) Close() { _ = r.Rows.Close() }
