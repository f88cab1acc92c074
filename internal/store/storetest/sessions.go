package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

func testSessionLifecycle(t *testing.T, h Harness) {
	ctx := context.Background()
	s := open(t, h)
	created := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet", Title: "Trip to Lisbon"})).must(t)
	if created.ID == "" || created.Owner != alice || created.Model != "sonnet" || created.Title != "Trip to Lisbon" {
		t.Fatalf("created %+v", created)
	}
	if created.CreatedAt.IsZero() || !created.CreatedAt.Equal(created.LastActivityAt) {
		t.Fatalf("created times %+v", created)
	}
	got := r(s.GetSession(ctx, alice, created.ID)).must(t)
	if !reflect.DeepEqual(got, created) {
		t.Fatalf("get = %+v, want %+v", got, created)
	}

	noErr(t, s.RenameSession(ctx, alice, created.ID, "Lisbon, día 2 🚋"))
	got = r(s.GetSession(ctx, alice, created.ID)).must(t)
	if got.Title != "Lisbon, día 2 🚋" {
		t.Fatalf("title after rename = %q", got.Title)
	}
	noErr(t, s.RenameSession(ctx, alice, created.ID, ""))
	if got = r(s.GetSession(ctx, alice, created.ID)).must(t); got.Title != "" {
		t.Fatalf("title after rename to empty = %q", got.Title)
	}

	r(s.AppendMessage(ctx, alice, created.ID, store.NewMessage{Role: store.RoleUser, Content: "hi"})).must(t)
	noErr(t, s.DeleteSession(ctx, alice, created.ID))
	_, err := s.GetSession(ctx, alice, created.ID)
	wantErr(t, err, store.ErrNotFound, "get after delete")
	_, err = s.ListMessages(ctx, alice, created.ID)
	wantErr(t, err, store.ErrNotFound, "list messages after delete")
	wantErr(t, s.DeleteSession(ctx, alice, created.ID), store.ErrNotFound, "delete twice")

	_, err = s.CreateSession(ctx, "", store.NewSession{Model: "m"})
	wantErr(t, err, store.ErrInvalid, "create with empty owner")
}

func testOwnerScoping(t *testing.T, h Harness) {
	ctx := context.Background()
	s := open(t, h)
	sess := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet", Title: "alice's"})).must(t)
	msg := r(s.AppendMessage(ctx, alice, sess.ID, store.NewMessage{Role: store.RoleUser, Content: "secret"})).must(t)
	streaming := r(s.BeginAssistantMessage(ctx, alice, sess.ID)).must(t)
	// Bob has a session of his own, so he has a key: scoping must not rely
	// on his lacking one.
	r(s.CreateSession(ctx, bob, store.NewSession{Model: "sonnet", Title: "bob's"})).must(t)

	for _, who := range []string{bob, "", "ALICE@example.com"} {
		calls := map[string]error{}
		_, calls["get"] = s.GetSession(ctx, who, sess.ID)
		calls["rename"] = s.RenameSession(ctx, who, sess.ID, "pwned")
		calls["touch"] = s.TouchSession(ctx, who, sess.ID)
		_, calls["append"] = s.AppendMessage(ctx, who, sess.ID, store.NewMessage{Role: store.RoleUser, Content: "x"})
		_, calls["list messages"] = s.ListMessages(ctx, who, sess.ID)
		_, calls["begin"] = s.BeginAssistantMessage(ctx, who, sess.ID)
		calls["update"] = s.UpdateAssistantMessage(ctx, who, sess.ID, streaming.ID, "x")
		calls["finish"] = s.FinishAssistantMessage(ctx, who, sess.ID, streaming.ID, store.Finish{Content: "x", Status: store.StatusComplete})
		calls["finish user message"] = s.FinishAssistantMessage(ctx, who, sess.ID, msg.ID, store.Finish{Status: store.StatusComplete})
		calls["delete"] = s.DeleteSession(ctx, who, sess.ID)
		for name, err := range calls {
			wantErr(t, err, store.ErrNotFound, fmt.Sprintf("%s as %q", name, who))
		}
		list, next, err := s.ListSessions(ctx, who, store.Page{})
		noErr(t, err)
		for _, l := range list {
			if l.ID == sess.ID {
				t.Fatalf("%q lists alice's session", who)
			}
		}
		if next != "" {
			t.Fatalf("next cursor %q", next)
		}
		noErr(t, s.Export(ctx, who, func(es store.ExportedSession) error {
			if es.ID == sess.ID {
				t.Fatalf("%q exports alice's session", who)
			}
			return nil
		}))
	}

	// Someone else's session and no session at all read the same: the
	// error text must not tell them apart either.
	_, errOther := s.GetSession(ctx, bob, sess.ID)
	_, errNone := s.GetSession(ctx, bob, "0123456789abcdef0123456789abcdef")
	if strings.ReplaceAll(errOther.Error(), sess.ID, "ID") != strings.ReplaceAll(errNone.Error(), "0123456789abcdef0123456789abcdef", "ID") {
		t.Fatalf("errors differ: %q vs %q", errOther, errNone)
	}

	// Alice's data is untouched.
	got := r(s.GetSession(ctx, alice, sess.ID)).must(t)
	if got.Title != "alice's" {
		t.Fatalf("title changed to %q", got.Title)
	}
	msgs := r(s.ListMessages(ctx, alice, sess.ID)).must(t)
	if len(msgs) != 2 || msgs[0].Content != "secret" || msgs[1].Status != store.StatusStreaming {
		t.Fatalf("messages changed: %+v", msgs)
	}
}

func testIdleRollover(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, h, store.WithClock(clk.Now))
	idle := 120 * time.Minute

	_, err := s.ActiveSession(ctx, alice, idle, clk.Now())
	wantErr(t, err, store.ErrNotFound, "active session before any")

	first := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet"})).must(t)
	clk.Advance(119 * time.Minute)
	got := r(s.ActiveSession(ctx, alice, idle, clk.Now())).must(t)
	if got.ID != first.ID {
		t.Fatalf("active = %s, want %s", got.ID, first.ID)
	}
	// A message restarts the idle clock.
	r(s.AppendMessage(ctx, alice, first.ID, store.NewMessage{Role: store.RoleUser, Content: "still here"})).must(t)
	clk.Advance(119 * time.Minute)
	got = r(s.ActiveSession(ctx, alice, idle, clk.Now())).must(t)
	if got.ID != first.ID || got.Expired(idle, clk.Now()) {
		t.Fatalf("session rolled over after a message: %+v", got)
	}
	// Exactly idleTimeout after the last message it has ended.
	clk.Advance(time.Minute)
	_, err = s.ActiveSession(ctx, alice, idle, clk.Now())
	wantErr(t, err, store.ErrNotFound, "active session at the timeout")
	if old := r(s.GetSession(ctx, alice, first.ID)).must(t); !old.Expired(idle, clk.Now()) {
		t.Fatal("Expired disagrees with ActiveSession")
	}

	second := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet"})).must(t)
	if got = r(s.ActiveSession(ctx, alice, idle, clk.Now())).must(t); got.ID != second.ID {
		t.Fatalf("active = %s, want the new session %s", got.ID, second.ID)
	}
	// Touching the old one makes it the active one again.
	clk.Advance(time.Second)
	noErr(t, s.TouchSession(ctx, alice, first.ID))
	if got = r(s.ActiveSession(ctx, alice, idle, clk.Now())).must(t); got.ID != first.ID {
		t.Fatalf("active = %s after touch, want %s", got.ID, first.ID)
	}
	// Bob's activity is not Alice's.
	_, err = s.ActiveSession(ctx, bob, idle, clk.Now())
	wantErr(t, err, store.ErrNotFound, "bob's active session")
}

func testListPagination(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, h, store.WithClock(clk.Now))
	var ids []string
	for i := range 7 {
		if i > 0 {
			clk.Advance(time.Minute)
		}
		ss := r(s.CreateSession(ctx, alice, store.NewSession{Model: "m", Title: fmt.Sprint("s", i)})).must(t)
		ids = append(ids, ss.ID)
	}
	// A session with the same activity time as s6: ties break on id.
	tie := r(s.CreateSession(ctx, alice, store.NewSession{Model: "m", Title: "tie"})).must(t)
	r(s.CreateSession(ctx, bob, store.NewSession{Model: "m", Title: "bob"})).must(t)
	clk.Advance(time.Minute)
	noErr(t, s.TouchSession(ctx, alice, ids[0])) // the oldest becomes the newest

	pair := []string{ids[6], tie.ID}
	if tie.ID > ids[6] {
		pair = []string{tie.ID, ids[6]}
	}
	want := append(append([]string{ids[0]}, pair...), ids[5], ids[4], ids[3], ids[2], ids[1])
	var got []string
	cursor, pages := "", 0
	for {
		page, next, err := s.ListSessions(ctx, alice, store.Page{Limit: 3, Cursor: cursor})
		noErr(t, err)
		pages++
		if len(page) > 3 {
			t.Fatalf("page of %d", len(page))
		}
		for _, p := range page {
			got = append(got, p.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if pages != 3 || !reflect.DeepEqual(got, want) {
		t.Fatalf("pages=%d\n got %v\nwant %v", pages, got, want)
	}
	all, next, err := s.ListSessions(ctx, alice, store.Page{})
	noErr(t, err)
	if len(all) != 8 || next != "" || all[0].Title != "s0" {
		t.Fatalf("default page: %d sessions, next %q", len(all), next)
	}
	_, _, err = s.ListSessions(ctx, alice, store.Page{Cursor: "not a cursor!"})
	wantErr(t, err, store.ErrInvalid, "bad cursor")
}
