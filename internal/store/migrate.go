package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Each dialect has its own numbered files, NNNN_name.sql, applied in order.
// A file, once released, never changes: a schema change is a new file.
//
//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migrations: bad file name %s", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations: %s: versions must run 1, 2, 3 … without gaps", m.name)
		}
	}
	return out, nil
}

// migrationLockID is an arbitrary constant: the PostgreSQL advisory lock
// that serialises replicas migrating the same database at once.
const migrationLockID = 0x63686174676177 // "chatgaw"

// migrate applies the missing migrations in one transaction. Opening an
// up-to-date database applies nothing, and two processes opening at once
// take turns: SQLite's write lock (BEGIN IMMEDIATE) or PostgreSQL's advisory
// lock makes the second wait and then find the work done.
func migrate(ctx context.Context, b backend, dialect string, now time.Time) error {
	ms, err := loadMigrations(dialect)
	if err != nil {
		return err
	}
	return b.tx(ctx, true, func(q querier) error {
		if dialect == "postgres" {
			if _, err := q.exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLockID)); err != nil {
				return fmt.Errorf("migrations: lock: %w", err)
			}
		}
		if _, err := q.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			applied_at BIGINT  NOT NULL
		)`); err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		var current int
		if err := q.queryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return fmt.Errorf("migrations: %w", err)
		}
		// An older binary must not write to a schema it does not know (a
		// rollback after a newer one migrated): refuse rather than guess.
		if current > len(ms) {
			return fmt.Errorf("migrations: database schema is at version %d, this binary knows only up to %d", current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := q.exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migrations: %s: %w", m.name, err)
			}
			if _, err := q.exec(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
				m.version, now.UnixMicro()); err != nil {
				return fmt.Errorf("migrations: %s: %w", m.name, err)
			}
		}
		return nil
	})
}
