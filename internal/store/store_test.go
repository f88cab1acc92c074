package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/internal/store/pgtest"
	"github.com/chatgateway/chatgateway-operator/internal/store/storetest"
)

func TestMain(m *testing.M) {
	code := pgtest.RunMain(m)
	stopBenchServer()
	os.Exit(code)
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, storetest.Harness{NewDB: func(t *testing.T) storetest.DB {
		return sqliteDB{path: filepath.Join(t.TempDir(), "store.db")}
	}})
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, storetest.Harness{NewDB: func(t *testing.T) storetest.DB {
		name, dsn := pgtest.NewNamedDatabase(t)
		return pgDB{name: name, dsn: dsn}
	}})
}

type sqliteDB struct{ path string }

func (d sqliteDB) Open(t *testing.T, key []byte, opts ...store.Option) (store.Store, error) {
	s, err := store.OpenSQLite(context.Background(), d.path, key, opts...)
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

// Dump is the database file and whatever journal files exist beside it.
func (d sqliteDB) Dump(t *testing.T, visit func(string, []byte)) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		b, err := os.ReadFile(d.path + suffix)
		if errors.Is(err, fs.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		visit(filepath.Base(d.path+suffix), b)
	}
}

type pgDB struct{ name, dsn string }

func (d pgDB) Open(t *testing.T, key []byte, opts ...store.Option) (store.Store, error) {
	s, err := store.OpenPostgres(context.Background(), d.dsn, key, opts...)
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

// Dump is every row of every table rendered as text (what pg_dump or a
// curious DBA sees), then the database's data files on disk after a
// checkpoint (what a stolen volume or backup holds).
func (d pgDB) Dump(t *testing.T, visit func(string, []byte)) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT schemaname, tablename FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgx.Identifier, error) {
		var schema, table string
		err := r.Scan(&schema, &table)
		return pgx.Identifier{schema, table}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) == 0 {
		t.Fatal("no tables to dump")
	}
	for _, tbl := range tables {
		rows, err := conn.Query(ctx, "SELECT t::text FROM "+tbl.Sanitize()+" t")
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		visit("table "+tbl.Sanitize(), []byte(strings.Join(lines, "\n")))
	}

	srv, err := pgtest.Shared()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	dir, err := srv.DatabaseDir(ctx, d.name)
	if err != nil {
		t.Fatal(err)
	}
	var files int
	var data []byte
	err = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		files++
		data = append(data, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	visit(fmt.Sprintf("data files (%d, %d bytes)", files, len(data)), data)
}

func TestOpenFromConfig(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master-key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("k", store.MasterKeySize)), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := store.ReadMasterKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(dir, "store.db")
	s, err := store.Open(ctx, gatewayconfig.Store{Type: gatewayconfig.StoreEmbedded, Path: path}, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("database file mode %v, want 0600", perm)
	}

	t.Run("postgres", func(t *testing.T) {
		dsnFile := filepath.Join(t.TempDir(), "dsn")
		if err := os.WriteFile(dsnFile, []byte(pgtest.NewDatabase(t)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(ctx, gatewayconfig.Store{Type: gatewayconfig.StorePostgres, DSNFile: dsnFile}, key)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
	})

	for name, tc := range map[string]struct {
		cfg gatewayconfig.Store
		key []byte
	}{
		"short key":    {gatewayconfig.Store{Type: gatewayconfig.StoreEmbedded, Path: filepath.Join(dir, "b.db")}, key[:16]},
		"unknown type": {gatewayconfig.Store{Type: "Redis"}, key},
		"no path":      {gatewayconfig.Store{Type: gatewayconfig.StoreEmbedded}, key},
		"no dsn file":  {gatewayconfig.Store{Type: gatewayconfig.StorePostgres, DSNFile: filepath.Join(dir, "missing")}, key},
	} {
		if s, err := store.Open(ctx, tc.cfg, tc.key); err == nil {
			_ = s.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
	if _, err := store.ReadMasterKey(filepath.Join(dir, "store.db")); err == nil {
		t.Error("ReadMasterKey accepted a file of the wrong size")
	}
}

func TestPostgresBadDSNDoesNotLeakIt(t *testing.T) {
	_, err := store.OpenPostgres(context.Background(), "postgres://u:hunter2@host:notaport/db", storetest.MasterKey)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v", err)
	}
}
