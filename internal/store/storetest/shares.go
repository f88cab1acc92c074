package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

func testShares(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, h, store.WithClock(clk.Now))
	a1 := r(s.CreateSession(ctx, alice, store.NewSession{Model: "m", Title: "alice's first"})).must(t)
	a2 := r(s.CreateSession(ctx, alice, store.NewSession{Model: "m", Title: "alice's second"})).must(t)
	b1 := r(s.CreateSession(ctx, bob, store.NewSession{Model: "m", Title: "bob's"})).must(t)
	share := func(owner, id string, on bool) error {
		action := "share.revoke"
		if on {
			action = "share.grant"
		}
		return s.SetShared(ctx, owner, id, on, store.AuditEvent{Time: clk.Now(), Actor: owner, Action: action, Subject: owner, SessionID: id})
	}
	listed := func() []string {
		t.Helper()
		var ids []string
		for _, ss := range r(s.SharedSessions(ctx)).must(t) {
			ids = append(ids, ss.Title)
		}
		return ids
	}
	t0 := clk.Now()
	noErr(t, share(alice, a1.ID, true))
	clk.Advance(time.Minute)
	noErr(t, share(bob, b1.ID, true))
	clk.Advance(time.Minute)
	noErr(t, share(alice, a2.ID, true))
	noErr(t, share(alice, a1.ID, true)) // again: still shared since t0
	if got := listed(); len(got) != 3 || got[0] != "alice's second" || got[1] != "bob's" || got[2] != "alice's first" {
		t.Fatalf("shared, newest first: %q", got)
	}
	if ss := r(s.SharedSession(ctx, alice, a1.ID)).must(t); !ss.SharedAt.Equal(t0) || ss.Title != "alice's first" || ss.Owner != alice {
		t.Fatalf("shared session %+v", ss)
	}

	// Another person's session cannot be shared, and that records nothing.
	before := len(r(s.AuditFor(ctx, alice, 0)).must(t))
	wantErr(t, share(bob, a1.ID, false), store.ErrNotFound, "revoking someone else's share")
	wantErr(t, share(bob, "no-such-id", true), store.ErrNotFound, "sharing a session that does not exist")
	wantErr(t, s.SetShared(ctx, alice, a1.ID, true, store.AuditEvent{Actor: alice}), store.ErrInvalid, "sharing without an audit event")
	if after := len(r(s.AuditFor(ctx, alice, 0)).must(t)); after != before {
		t.Fatalf("a refused share wrote %d audit events", after-before)
	}
	wantErr(t, r(s.SharedSession(ctx, bob, a1.ID)).err, store.ErrNotFound, "a share looked up under another owner")

	// Revoking hides it; every grant and revocation is in the audit log.
	clk.Advance(time.Minute)
	noErr(t, share(alice, a1.ID, false))
	wantErr(t, r(s.SharedSession(ctx, alice, a1.ID)).err, store.ErrNotFound, "a revoked share")
	if got := listed(); len(got) != 2 {
		t.Fatalf("after revoking: %q", got)
	}
	var grants, revokes int
	for _, e := range r(s.AuditFor(ctx, alice, 0)).must(t) {
		switch e.Action {
		case "share.grant":
			grants++
		case "share.revoke":
			revokes++
		}
	}
	if grants != 3 || revokes != 1 {
		t.Fatalf("audit: %d grants, %d revocations", grants, revokes)
	}

	// However many times a share is read, it stays shared: reads are
	// audit events, not share state.
	for range 50 {
		noErr(t, s.RecordAudit(ctx, store.AuditEvent{Actor: bob, Action: "shared.read", Subject: alice, SessionID: a2.ID}))
	}
	r(s.SharedSession(ctx, alice, a2.ID)).must(t)

	// A share goes with its session, and with its owner's data.
	noErr(t, s.DeleteSession(ctx, alice, a2.ID))
	noErr(t, s.DeleteUserData(ctx, bob))
	if got := listed(); len(got) != 0 {
		t.Fatalf("after deleting the sessions: %q", got)
	}
}
