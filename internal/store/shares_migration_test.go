package store

import (
	"context"
	"testing"
	"time"
)

// TestSharesMigrationCarriesOverTheAuditLog: a database from before the
// shares table said who shares what only in the audit log (the latest grant
// or revocation of a session winning). Migrating carries the sessions
// shared then over, on both dialects.
func TestSharesMigrationCarriesOverTheAuditLog(t *testing.T) {
	eachBackend(t, func(t *testing.T, b rawBackend) {
		ctx := context.Background()
		s := b.open(t)
		const alice = "alice@example.com"
		t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		at := t0
		event := func(action, id string) {
			at = at.Add(time.Minute)
			ok(t, s.RecordAudit(ctx, AuditEvent{Time: at, Actor: alice, Action: action, Subject: alice, SessionID: id}))
		}
		session := func() string {
			ss, err := s.CreateSession(ctx, alice, NewSession{Model: "m"})
			ok(t, err)
			return ss.ID
		}
		granted, revoked, regranted, deleted := session(), session(), session(), session()
		event("share.grant", granted)
		event("share.grant", revoked)
		event("share.revoke", revoked)
		event("share.grant", regranted)
		event("share.revoke", regranted)
		event("share.grant", regranted)
		regrantedAt := at
		event("share.grant", deleted)
		ok(t, s.DeleteSession(ctx, alice, deleted))
		// Reads of a share used to push its grant out of the window the
		// gateway looked at; the migration reads the whole log.
		for range 30 {
			ok(t, s.RecordAudit(ctx, AuditEvent{Time: at, Actor: "bob@example.com", Action: "shared.read", Subject: alice, SessionID: granted}))
		}
		// Turn the database back into one from before the shares table and
		// run that migration again (later ones do not depend on it).
		dialect := "postgres"
		if b.sqlitePath != "" {
			dialect = "sqlite"
		}
		ms, err := loadMigrations(dialect)
		ok(t, err)
		if ms[2].name != "0003_shares.sql" {
			t.Fatalf("migration 3 is %s", ms[2].name)
		}
		_, err = s.db.writer().exec(ctx, "DROP TABLE shares")
		ok(t, err)
		ok(t, s.db.tx(ctx, true, func(q querier) error { _, err := q.exec(ctx, ms[2].sql); return err }))
		ok(t, s.Close())

		s = b.open(t)
		shared, err := s.SharedSessions(ctx)
		ok(t, err)
		got := map[string]time.Time{}
		for _, ss := range shared {
			got[ss.ID] = ss.SharedAt
		}
		if len(got) != 2 || !got[granted].Equal(t0.Add(time.Minute)) || !got[regranted].Equal(regrantedAt) {
			t.Fatalf("after the migration: %v; want %s and %s", got, granted, regranted)
		}
	})
}
