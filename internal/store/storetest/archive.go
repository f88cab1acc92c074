package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// populate gives owner a few sessions with varied messages.
func populate(t *testing.T, s store.Store, clk *clock, owner string) {
	t.Helper()
	ctx := context.Background()
	for i := range 3 {
		ss := r(s.CreateSession(ctx, owner, store.NewSession{Model: "sonnet", Title: fmt.Sprintf("%s #%d ✈️", owner, i)})).must(t)
		for j := range i + 2 {
			clk.Advance(time.Second)
			var pics []store.NewAttachment
			if i == 1 && j == 0 {
				pics = []store.NewAttachment{picture(owner + " sent"), picture("and another")}
			}
			r(s.AppendMessage(ctx, owner, ss.ID, store.NewMessage{Role: store.RoleUser, Content: fmt.Sprintf("q%d \x00 \"quoted\" ünïcode", j), InputTokens: int64(j), Attachments: pics})).must(t)
			clk.Advance(time.Second)
			m := r(s.BeginAssistantMessage(ctx, owner, ss.ID)).must(t)
			if i == 2 && j == 1 {
				r(s.AddAttachment(ctx, owner, ss.ID, m.ID, picture(owner+" made"))).must(t)
			}
			status := store.StatusComplete
			if j == 1 {
				status = store.StatusIncomplete
			}
			clk.Advance(time.Second)
			noErr(t, s.FinishAssistantMessage(ctx, owner, ss.ID, m.ID, store.Finish{Content: fmt.Sprint("a", j), InputTokens: 9, OutputTokens: int64(j), Status: status}))
		}
		clk.Advance(time.Minute)
	}
}

func exportAll(t *testing.T, s store.Store, owner string) []store.ExportedSession {
	t.Helper()
	var out []store.ExportedSession
	noErr(t, s.Export(context.Background(), owner, func(es store.ExportedSession) error {
		out = append(out, es)
		return nil
	}))
	return out
}

func testExportImport(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	src := open(t, h, store.WithClock(clk.Now))
	populate(t, src, clk, alice)
	populate(t, src, clk, bob)
	empty := r(src.CreateSession(ctx, alice, store.NewSession{Model: "haiku"})).must(t)

	exported := exportAll(t, src, alice)
	if len(exported) != 4 || exported[3].ID != empty.ID || len(exported[3].Messages) != 0 {
		t.Fatalf("exported %d sessions", len(exported))
	}
	for i, es := range exported {
		if es.Owner != alice {
			t.Fatalf("exported bob's session %s", es.ID)
		}
		if i > 0 && es.CreatedAt.Before(exported[i-1].CreatedAt) {
			t.Fatal("export not oldest first")
		}
	}
	if exported[0].Messages[0].Content != "q0 \x00 \"quoted\" ünïcode" || exported[0].Title != "alice@example.com #0 ✈️" {
		t.Fatalf("exported plaintext: %+v", exported[0])
	}
	// Pictures go out with their bytes.
	if a := exported[1].Messages[0].Attachments; len(a) != 2 || !bytes.Equal(a[0].Data, picture(alice+" sent").Data) || a[1].Name != "and another.png" {
		t.Fatalf("exported pictures: %+v", a)
	}
	if a := exported[2].Messages[3].Attachments; len(a) != 1 || !bytes.Equal(a[0].Data, picture(alice+" made").Data) {
		t.Fatalf("exported reply pictures: %+v", a)
	}

	// An error from the callback stops the export and comes back.
	stop := errors.New("stop")
	calls := 0
	err := src.Export(ctx, alice, func(store.ExportedSession) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("export with failing callback: %v after %d calls", err, calls)
	}

	later := &clock{t: clk.Now().Add(time.Hour)}
	dst := open(t, h, store.WithClock(later.Now))
	for _, es := range exported {
		noErr(t, dst.Import(ctx, alice, es))
	}
	if again := exportAll(t, dst, alice); !reflect.DeepEqual(again, exported) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", again, exported)
	}
	list, _, err := dst.ListSessions(ctx, alice, store.Page{})
	noErr(t, err)
	if len(list) != 4 {
		t.Fatalf("imported store lists %d sessions", len(list))
	}
	// Appending continues the numbering.
	m := r(dst.AppendMessage(ctx, alice, exported[0].ID, store.NewMessage{Role: store.RoleUser, Content: "more"})).must(t)
	if m.Seq != int64(len(exported[0].Messages)+1) {
		t.Fatalf("seq after import = %d", m.Seq)
	}
	wantErr(t, dst.Import(ctx, alice, exported[1]), store.ErrConflict, "import twice")
	// Nothing of a failed import is left behind.
	if got := exportAll(t, dst, alice); len(got) != 4 {
		t.Fatalf("%d sessions after failed import", len(got))
	}
	wantErr(t, dst.Import(ctx, alice, store.ExportedSession{}), store.ErrInvalid, "import without id")
	bad := store.ExportedSession{Session: store.Session{ID: "x"}, Messages: []store.Message{{ID: "m", Role: "tool"}}}
	wantErr(t, dst.Import(ctx, alice, bad), store.ErrInvalid, "import with bad role")
	for name, a := range map[string]store.Attachment{
		"no bytes":      {ID: "p", MediaType: "image/png"},
		"no media type": {ID: "p", Data: []byte{1}},
		"odd type":      {ID: "p", MediaType: "image/png; x=1", Data: []byte{1}},
	} {
		bad := store.ExportedSession{Session: store.Session{ID: "pic"}, Messages: []store.Message{{ID: "m", Role: store.RoleUser, Attachments: []store.Attachment{a}}}}
		wantErr(t, dst.Import(ctx, alice, bad), store.ErrInvalid, "import a picture with "+name)
	}
	twice := store.ExportedSession{Session: store.Session{ID: "pic"}, Messages: []store.Message{{ID: "m", Role: store.RoleUser,
		Attachments: []store.Attachment{{ID: "p", MediaType: "image/png", Data: []byte{1}}, {ID: "p", MediaType: "image/png", Data: []byte{2}}}}}}
	wantErr(t, dst.Import(ctx, alice, twice), store.ErrInvalid, "import a picture id twice")
	// A picture imported without its metadata gets an id and its size.
	bare := store.ExportedSession{Session: store.Session{ID: "pic"}, Messages: []store.Message{{ID: "pm", Role: store.RoleUser,
		Attachments: []store.Attachment{{MediaType: "image/gif", Data: []byte("GIF89a"), Bytes: 1 << 40}}}}}
	noErr(t, dst.Import(ctx, alice, bare))
	if got := r(dst.ListMessages(ctx, alice, "pic")).must(t)[0].Attachments; len(got) != 1 || got[0].ID == "" || got[0].Bytes != 6 || got[0].Data != nil {
		t.Fatalf("bare picture: %+v", got)
	}

	// What an import holds counts towards what the person stores.
	want := int64(len("more") + store.SealOverhead) // appended above
	for _, es := range append(exported, bare) {
		want += store.SealedSize(es)
	}
	if got := r(dst.StoredBytes(ctx, alice)).must(t); got != want {
		t.Fatalf("alice stores %d bytes, the imported sessions seal to %d", got, want)
	}
	if got := r(dst.StoredBytes(ctx, "nobody@example.com")).must(t); got != 0 {
		t.Fatalf("someone with nothing stores %d bytes", got)
	}
	if got := r(src.StoredBytes(ctx, bob)).must(t); got <= 0 {
		t.Fatalf("bob stores %d bytes", got)
	}

	// Times in the future are the importer's say-so: they become now, so
	// a session dated 2999 neither heads the list forever nor escapes
	// retention.
	future := time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)
	ahead := store.ExportedSession{Session: store.Session{ID: "from-2999", Model: "m", Title: "t", CreatedAt: future, LastActivityAt: future},
		Messages: []store.Message{{ID: "f1", Role: store.RoleUser, Content: "x", CreatedAt: future, UpdatedAt: future}}}
	noErr(t, dst.Import(ctx, alice, ahead))
	got := r(dst.GetSession(ctx, alice, "from-2999")).must(t)
	now := later.Now()
	if !got.CreatedAt.Equal(now) || !got.LastActivityAt.Equal(now) {
		t.Fatalf("a session dated 2999 was imported at %v / %v, want now (%v)", got.CreatedAt, got.LastActivityAt, now)
	}
	if ms := r(dst.ListMessages(ctx, alice, "from-2999")).must(t); !ms[0].CreatedAt.Equal(now) || !ms[0].UpdatedAt.Equal(now) {
		t.Fatalf("its message is dated %v / %v", ms[0].CreatedAt, ms[0].UpdatedAt)
	}
	later.Advance(91 * 24 * time.Hour)
	if n := r(dst.DeleteSessionsOlderThan(ctx, later.Now().Add(-90*24*time.Hour))).must(t); n != 6 {
		t.Fatalf("retention 91 days on deleted %d sessions, want all 6 (the bare picture's too)", n)
	}

	// A hand-written import with a streaming message and no times.
	hand := store.ExportedSession{Session: store.Session{ID: "hand-1", Model: "m", Title: "t"},
		Messages: []store.Message{{ID: "h1", Role: store.RoleUser, Content: "x"}, {ID: "h2", Role: store.RoleAssistant, Status: store.StatusStreaming}}}
	noErr(t, dst.Import(ctx, bob, hand))
	msgs := r(dst.ListMessages(ctx, bob, "hand-1")).must(t)
	if len(msgs) != 2 || msgs[0].Status != store.StatusComplete || msgs[1].Status != store.StatusIncomplete {
		t.Fatalf("hand import: %+v", msgs)
	}
}

func testDeleteUserData(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, h, store.WithClock(clk.Now))
	populate(t, s, clk, alice)
	populate(t, s, clk, bob)
	noErr(t, s.RecordSpend(ctx, spend("r1", alice, "sonnet", clk.Now(), 42)))
	aliceSessions := exportAll(t, s, alice)
	bobBefore := exportAll(t, s, bob)

	noErr(t, s.DeleteUserData(ctx, alice))
	if got := exportAll(t, s, alice); len(got) != 0 {
		t.Fatalf("%d sessions left after erase", len(got))
	}
	if list, _, err := s.ListSessions(ctx, alice, store.Page{}); err != nil || len(list) != 0 {
		t.Fatalf("list after erase: %d, %v", len(list), err)
	}
	for _, es := range aliceSessions {
		_, err := s.GetSession(ctx, alice, es.ID)
		wantErr(t, err, store.ErrNotFound, "get after erase")
		_, err = s.ListMessages(ctx, alice, es.ID)
		wantErr(t, err, store.ErrNotFound, "messages after erase")
	}
	if got := exportAll(t, s, bob); !reflect.DeepEqual(got, bobBefore) {
		t.Fatal("erasing alice changed bob's data")
	}
	// The ledger keeps no content and stays.
	if got := r(s.SpendSince(ctx, alice, time.Time{})).must(t); got != 42 {
		t.Fatalf("ledger after erase: %d", got)
	}
	noErr(t, s.DeleteUserData(ctx, alice)) // erasing nothing is fine
	noErr(t, s.DeleteUserData(ctx, "never@example.com"))

	// Alice can start again, under a new key; an old session re-imported
	// from her own export is hers again.
	ss := r(s.CreateSession(ctx, alice, store.NewSession{Model: "m", Title: "fresh start"})).must(t)
	if got := r(s.GetSession(ctx, alice, ss.ID)).must(t); got.Title != "fresh start" {
		t.Fatalf("after erase: %+v", got)
	}
	noErr(t, s.Import(ctx, alice, aliceSessions[0]))
}

func testRetention(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, h, store.WithClock(clk.Now))
	old := r(s.CreateSession(ctx, alice, store.NewSession{Model: "m", Title: "old"})).must(t)
	r(s.AppendMessage(ctx, alice, old.ID, store.NewMessage{Role: store.RoleUser, Content: "old q"})).must(t)
	oldBob := r(s.CreateSession(ctx, bob, store.NewSession{Model: "m", Title: "old bob"})).must(t)
	noErr(t, s.RecordSpend(ctx, spend("r-old", alice, "m", clk.Now(), 7)))
	// Created long ago but active recently: kept, as retention counts from
	// the last activity.
	revived := r(s.CreateSession(ctx, alice, store.NewSession{Model: "m", Title: "revived"})).must(t)
	clk.Advance(91 * 24 * time.Hour)
	r(s.AppendMessage(ctx, alice, revived.ID, store.NewMessage{Role: store.RoleUser, Content: "back"})).must(t)
	recent := r(s.CreateSession(ctx, alice, store.NewSession{Model: "m", Title: "recent"})).must(t)

	n := r(s.DeleteSessionsOlderThan(ctx, clk.Now().Add(-90*24*time.Hour))).must(t)
	if n != 2 {
		t.Fatalf("deleted %d sessions, want 2", n)
	}
	for _, gone := range []struct{ owner, id string }{{alice, old.ID}, {bob, oldBob.ID}} {
		_, err := s.GetSession(ctx, gone.owner, gone.id)
		wantErr(t, err, store.ErrNotFound, "old session")
	}
	for _, kept := range []string{revived.ID, recent.ID} {
		r(s.GetSession(ctx, alice, kept)).must(t)
	}
	if got := r(s.SpendSince(ctx, alice, time.Time{})).must(t); got != 7 {
		t.Fatalf("ledger after retention: %d", got)
	}
	if n := r(s.DeleteSessionsOlderThan(ctx, clk.Now().Add(-90*24*time.Hour))).must(t); n != 0 {
		t.Fatalf("second run deleted %d", n)
	}
}
