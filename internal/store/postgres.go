package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// OpenPostgres connects to the PostgreSQL database at dsn.
func OpenPostgres(ctx context.Context, dsn string, masterKey []byte, opts ...Option) (Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The DSN may hold a password: say what is wrong, not what it was.
		return nil, fmt.Errorf("postgres store: %w: cannot parse the connection string", ErrInvalid)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: connect: %w", err)
	}
	return newStore(ctx, &pgBackend{pool: pool}, "postgres", masterKey, opts)
}

type pgBackend struct{ pool *pgxpool.Pool }

// pgQuerier adapts a pool or a transaction; both have these methods.
type pgQuerier struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (p pgQuerier) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := p.q.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (p pgQuerier) query(ctx context.Context, query string, args ...any) (rows, error) {
	return p.q.Query(ctx, query, args...)
}

func (p pgQuerier) queryRow(ctx context.Context, query string, args ...any) row {
	return p.q.QueryRow(ctx, query, args...)
}

func (b *pgBackend) reader() querier { return pgQuerier{b.pool} }
func (b *pgBackend) writer() querier { return pgQuerier{b.pool} }

func (b *pgBackend) tx(ctx context.Context, write bool, fn func(querier) error) error {
	// Writes run at READ COMMITTED: they serialise on the rows they update
	// (the session row allocates message numbers), which is all they need.
	// Reads that span statements (Export) want one snapshot.
	opts := pgx.TxOptions{}
	if !write {
		opts = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	}
	return pgx.BeginTxFunc(ctx, b.pool, opts, func(tx pgx.Tx) error {
		return fn(pgQuerier{tx})
	})
}

func (b *pgBackend) isUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

// afterErase does nothing: PostgreSQL reclaims dead rows with (auto)vacuum,
// and that does not zero them either. See the package documentation.
func (b *pgBackend) afterErase(context.Context) error { return nil }

func (b *pgBackend) close() error {
	b.pool.Close()
	return nil
}
