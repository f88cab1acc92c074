package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/store/pgtest"
)

// These tests reach under the interface, with raw SQL, to play the part of
// someone who holds the database.

var testMasterKey = bytes.Repeat([]byte{7}, MasterKeySize)

type rawBackend struct {
	open       func(t *testing.T) *sqlStore
	sqlitePath string // empty for PostgreSQL
}

func eachBackend(t *testing.T, fn func(t *testing.T, b rawBackend)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "store.db")
		fn(t, rawBackend{sqlitePath: path, open: func(t *testing.T) *sqlStore {
			s, err := OpenSQLite(context.Background(), path, testMasterKey)
			return keep(t, s, err)
		}})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.NewDatabase(t)
		fn(t, rawBackend{open: func(t *testing.T) *sqlStore {
			s, err := OpenPostgres(context.Background(), dsn, testMasterKey)
			return keep(t, s, err)
		}})
	})
}

func keep(t *testing.T, s Store, err error) *sqlStore {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*sqlStore)
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, s *sqlStore, query string, args ...any) int64 {
	t.Helper()
	var n int64
	ok(t, s.db.reader().queryRow(context.Background(), query, args...).Scan(&n))
	return n
}

const (
	alice = "alice@example.com"
	bob   = "bob@example.com"
)

type rawSession struct {
	id, owner, model    string
	title               []byte
	created, lastActive int64
}

type rawMessage struct {
	id, sessionID, role, status string
	seq, in, out                int64
	content                     []byte
	created, updated            int64
}

func TestCryptoShredding(t *testing.T) {
	eachBackend(t, func(t *testing.T, b rawBackend) {
		ctx := context.Background()
		s := b.open(t)
		sess, err := s.CreateSession(ctx, alice, NewSession{Model: "m", Title: "alice's diary"})
		ok(t, err)
		for _, c := range []string{"dear diary", "today I erased myself"} {
			_, err := s.AppendMessage(ctx, alice, sess.ID, NewMessage{Role: RoleUser, Content: c})
			ok(t, err)
		}
		bobSess, err := s.CreateSession(ctx, bob, NewSession{Model: "m", Title: "bob's"})
		ok(t, err)

		// What a backup taken now would hold for Alice.
		var oldSalt []byte
		ok(t, s.db.reader().queryRow(ctx, "SELECT salt FROM user_keys WHERE owner = $1", alice).Scan(&oldSalt))
		var rs rawSession
		ok(t, s.db.reader().queryRow(ctx, "SELECT id, owner, model, title, created_at, last_activity_at FROM sessions WHERE id = $1", sess.ID).
			Scan(&rs.id, &rs.owner, &rs.model, &rs.title, &rs.created, &rs.lastActive))
		rows, err := s.db.reader().query(ctx, `SELECT id, session_id, seq, role, content, input_tokens, output_tokens, status, created_at, updated_at
			FROM messages WHERE session_id = $1 ORDER BY seq`, sess.ID)
		ok(t, err)
		var msgs []rawMessage
		for rows.Next() {
			var m rawMessage
			ok(t, rows.Scan(&m.id, &m.sessionID, &m.seq, &m.role, &m.content, &m.in, &m.out, &m.status, &m.created, &m.updated))
			msgs = append(msgs, m)
		}
		rows.Close()
		ok(t, rows.Err())

		ok(t, s.DeleteUserData(ctx, alice))
		if n := count(t, s, "SELECT COUNT(*) FROM user_keys WHERE owner = $1", alice); n != 0 {
			t.Fatalf("%d key rows left", n)
		}
		if n := count(t, s, "SELECT COUNT(*) FROM sessions WHERE owner = $1", alice); n != 0 {
			t.Fatalf("%d sessions left", n)
		}
		if n := count(t, s, "SELECT COUNT(*) FROM messages WHERE session_id = $1", sess.ID); n != 0 {
			t.Fatalf("%d messages left", n)
		}
		if _, err := s.GetSession(ctx, bob, bobSess.ID); err != nil {
			t.Fatalf("bob's session after erasing alice: %v", err)
		}
		if _, ok := s.keys.cache[alice]; ok {
			t.Fatal("erased user's key still cached")
		}

		if b.sqlitePath != "" {
			// Secure delete and the checkpoint leave nothing of the salt or
			// the ciphertext in the files, not even in free pages or the
			// WAL: not in a copy taken while the gateway runs, nor after.
			needles := [][]byte{oldSalt, rs.title}
			for _, m := range msgs {
				needles = append(needles, m.content)
			}
			scan := func(when string) {
				for _, suffix := range []string{"", "-wal", "-shm"} {
					data, err := os.ReadFile(b.sqlitePath + suffix)
					if errors.Is(err, os.ErrNotExist) {
						continue
					}
					ok(t, err)
					for i, n := range needles {
						if bytes.Contains(data, n) {
							t.Errorf("%s: erased bytes (needle %d) remain in %s", when, i, filepath.Base(b.sqlitePath+suffix))
						}
					}
				}
			}
			scan("store open")
			ok(t, s.Close())
			scan("store closed")
			s = b.open(t)
		}

		// Alice comes back and gets a new key. Then the old rows are
		// restored as from a backup (which, taken after the erase, has no
		// old key row): same master key, yet they cannot be read.
		_, err = s.CreateSession(ctx, alice, NewSession{Model: "m", Title: "new life"})
		ok(t, err)
		var newSalt []byte
		ok(t, s.db.reader().queryRow(ctx, "SELECT salt FROM user_keys WHERE owner = $1", alice).Scan(&newSalt))
		if bytes.Equal(newSalt, oldSalt) {
			t.Fatal("salt reused after erase")
		}
		w := s.db.writer()
		_, err = w.exec(ctx, "INSERT INTO sessions (id, owner, model, title, created_at, last_activity_at, last_seq) VALUES ($1, $2, $3, $4, $5, $6, $7)",
			rs.id, rs.owner, rs.model, rs.title, rs.created, rs.lastActive, int64(len(msgs)))
		ok(t, err)
		for _, m := range msgs {
			_, err := w.exec(ctx, `INSERT INTO messages (id, session_id, seq, role, content, input_tokens, output_tokens, status, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				m.id, m.sessionID, m.seq, m.role, m.content, m.in, m.out, m.status, m.created, m.updated)
			ok(t, err)
		}
		if _, err := s.GetSession(ctx, alice, sess.ID); !errors.Is(err, ErrUndecryptable) {
			t.Fatalf("restored title: %v, want ErrUndecryptable", err)
		}
		if _, err := s.ListMessages(ctx, alice, sess.ID); !errors.Is(err, ErrUndecryptable) {
			t.Fatalf("restored messages: %v, want ErrUndecryptable", err)
		}
	})
}

func TestCiphertextBoundToRow(t *testing.T) {
	eachBackend(t, func(t *testing.T, b rawBackend) {
		ctx := context.Background()
		s := b.open(t)
		a, err := s.CreateSession(ctx, alice, NewSession{Model: "m", Title: "alice"})
		ok(t, err)
		a1, err := s.AppendMessage(ctx, alice, a.ID, NewMessage{Role: RoleUser, Content: "one"})
		ok(t, err)
		a2, err := s.AppendMessage(ctx, alice, a.ID, NewMessage{Role: RoleUser, Content: "two"})
		ok(t, err)
		a3, err := s.CreateSession(ctx, alice, NewSession{Model: "m", Title: "alice too"})
		ok(t, err)
		bs, err := s.CreateSession(ctx, bob, NewSession{Model: "m", Title: "bob"})
		ok(t, err)
		b1, err := s.AppendMessage(ctx, bob, bs.ID, NewMessage{Role: RoleUser, Content: "bob's secret"})
		ok(t, err)

		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := s.db.writer().exec(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		var original []byte
		ok(t, s.db.reader().queryRow(ctx, "SELECT content FROM messages WHERE id = $1", a1.ID).Scan(&original))
		restore := func() { exec("UPDATE messages SET content = $1 WHERE id = $2", original, a1.ID) }

		for name, from := range map[string]string{"another user's message": b1.ID, "another message of the session": a2.ID} {
			exec("UPDATE messages SET content = (SELECT content FROM messages WHERE id = $1) WHERE id = $2", from, a1.ID)
			if _, err := s.ListMessages(ctx, alice, a.ID); !errors.Is(err, ErrUndecryptable) {
				t.Errorf("content copied from %s: %v, want ErrUndecryptable", name, err)
			}
			restore()
		}
		if _, err := s.ListMessages(ctx, alice, a.ID); err != nil {
			t.Fatalf("after restore: %v", err)
		}

		// A message moved to another session of the same owner.
		exec("UPDATE messages SET session_id = $1, seq = 99 WHERE id = $2", a3.ID, a2.ID)
		if _, err := s.ListMessages(ctx, alice, a3.ID); !errors.Is(err, ErrUndecryptable) {
			t.Errorf("moved message: %v, want ErrUndecryptable", err)
		}

		// A title copied across sessions, and a whole session handed to
		// another owner.
		exec("UPDATE sessions SET title = (SELECT title FROM sessions WHERE id = $1) WHERE id = $2", a.ID, a3.ID)
		if _, err := s.GetSession(ctx, alice, a3.ID); !errors.Is(err, ErrUndecryptable) {
			t.Errorf("copied title: %v, want ErrUndecryptable", err)
		}
		exec("UPDATE sessions SET owner = $1 WHERE id = $2", alice, bs.ID)
		if _, err := s.GetSession(ctx, alice, bs.ID); !errors.Is(err, ErrUndecryptable) {
			t.Errorf("reassigned session: %v, want ErrUndecryptable", err)
		}
		if _, err := s.ListMessages(ctx, alice, bs.ID); !errors.Is(err, ErrUndecryptable) {
			t.Errorf("reassigned session's messages: %v, want ErrUndecryptable", err)
		}
	})
}
