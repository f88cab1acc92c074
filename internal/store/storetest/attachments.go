package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// picture is a made-up picture whose bytes follow from seed.
func picture(seed string) store.NewAttachment {
	sum := sha256.Sum256([]byte(seed))
	return store.NewAttachment{MediaType: "image/png", Name: seed + ".png", Width: 3, Height: 2, Data: append([]byte("\x89PNG\r\n\x1a\n"), sum[:]...)}
}

func testAttachments(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, h, store.WithClock(clk.Now))
	sess := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet"})).must(t)
	other := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet"})).must(t)
	pics := []store.NewAttachment{picture("one"), picture("two ✓")}
	pics[1].MediaType, pics[1].Width = "image/webp", 640
	sent := r(s.AppendMessage(ctx, alice, sess.ID, store.NewMessage{Role: store.RoleUser, Content: "look", Attachments: pics})).must(t)
	if len(sent.Attachments) != 2 || sent.Attachments[0].ID == "" || sent.Attachments[0].ID == sent.Attachments[1].ID {
		t.Fatalf("appended pictures: %+v", sent.Attachments)
	}
	// Listing gives each picture's metadata in order, never its bytes.
	msgs := r(s.ListMessages(ctx, alice, sess.ID)).must(t)
	got := msgs[0].Attachments
	if len(got) != 2 || got[0].Name != "one.png" || got[1].Name != "two ✓.png" || got[1].MediaType != "image/webp" ||
		got[1].Width != 640 || got[1].Height != 2 || got[0].Bytes != int64(len(pics[0].Data)) || got[0].Data != nil || got[1].Data != nil {
		t.Fatalf("listed pictures: %+v", got)
	}
	for i, a := range got {
		read := r(s.ReadAttachment(ctx, alice, sess.ID, a.ID)).must(t)
		if !bytes.Equal(read.Data, pics[i].Data) || read.Name != pics[i].Name || read.MediaType != pics[i].MediaType || read.Bytes != a.Bytes {
			t.Fatalf("read picture %d: %+v", i, read)
		}
	}
	// Another person, or another session of the owner, finds nothing.
	for what, try := range map[string]func() error{
		"another owner":   func() error { _, err := s.ReadAttachment(ctx, bob, sess.ID, got[0].ID); return err },
		"another session": func() error { _, err := s.ReadAttachment(ctx, alice, other.ID, got[0].ID); return err },
		"no such id":      func() error { _, err := s.ReadAttachment(ctx, alice, sess.ID, "nope"); return err },
	} {
		wantErr(t, try(), store.ErrNotFound, "read a picture of "+what)
	}
	for name, bad := range map[string]store.NewAttachment{
		"no bytes":        {MediaType: "image/png"},
		"no media type":   {Data: []byte{1}},
		"parameters":      {MediaType: "image/png;charset=x", Data: []byte{1}},
		"negative width":  {MediaType: "image/png", Data: []byte{1}, Width: -1},
		"a name too long": {MediaType: "image/png", Data: []byte{1}, Name: string(bytes.Repeat([]byte("n"), 2000))},
	} {
		_, err := s.AppendMessage(ctx, alice, sess.ID, store.NewMessage{Role: store.RoleUser, Content: "x", Attachments: []store.NewAttachment{bad}})
		wantErr(t, err, store.ErrInvalid, "append a picture with "+name)
	}
	if n := len(r(s.ListMessages(ctx, alice, sess.ID)).must(t)); n != 1 {
		t.Fatalf("a refused picture left %d messages", n)
	}

	// A model's pictures join its reply while the reply streams, and only then.
	reply := r(s.BeginAssistantMessage(ctx, alice, sess.ID)).must(t)
	made := r(s.AddAttachment(ctx, alice, sess.ID, reply.ID, picture("made"))).must(t)
	r(s.AddAttachment(ctx, alice, sess.ID, reply.ID, picture("made again"))).must(t)
	_, err := s.AddAttachment(ctx, bob, sess.ID, reply.ID, picture("x"))
	wantErr(t, err, store.ErrNotFound, "add a picture to another person's reply")
	_, err = s.AddAttachment(ctx, alice, sess.ID, "nope", picture("x"))
	wantErr(t, err, store.ErrNotFound, "add a picture to no message")
	_, err = s.AddAttachment(ctx, alice, sess.ID, sent.ID, picture("x"))
	wantErr(t, err, store.ErrConflict, "add a picture to a user message")
	_, err = s.AddAttachment(ctx, alice, sess.ID, reply.ID, store.NewAttachment{MediaType: "image/png"})
	wantErr(t, err, store.ErrInvalid, "add an empty picture")
	noErr(t, s.FinishAssistantMessage(ctx, alice, sess.ID, reply.ID, store.Finish{Content: "here", Status: store.StatusComplete}))
	_, err = s.AddAttachment(ctx, alice, sess.ID, reply.ID, picture("late"))
	wantErr(t, err, store.ErrConflict, "add a picture to a finished reply")
	msgs = r(s.ListMessages(ctx, alice, sess.ID)).must(t)
	if a := msgs[1].Attachments; len(a) != 2 || a[0].ID != made.ID || a[1].Name != "made again.png" || msgs[1].Content != "here" {
		t.Fatalf("reply pictures: %+v", msgs[1])
	}

	// They go with their session.
	noErr(t, s.DeleteSession(ctx, alice, sess.ID))
	_, err = s.ReadAttachment(ctx, alice, sess.ID, made.ID)
	wantErr(t, err, store.ErrNotFound, "read a picture of a deleted session")
	withPic := r(s.AppendMessage(ctx, alice, other.ID, store.NewMessage{Role: store.RoleUser, Content: "x", Attachments: []store.NewAttachment{picture("erased")}})).must(t)
	noErr(t, s.DeleteUserData(ctx, alice))
	_, err = s.ReadAttachment(ctx, alice, other.ID, withPic.Attachments[0].ID)
	wantErr(t, err, store.ErrNotFound, "read a picture after erasing the user")
}

// testReplaceUserMessage runs a turn again: the user message takes the new
// text, keeps its id and pictures, and every later message goes.
func testReplaceUserMessage(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, h, store.WithClock(clk.Now))
	sess := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet"})).must(t)
	mine := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet"})).must(t)
	elsewhere := r(s.AppendMessage(ctx, alice, mine.ID, store.NewMessage{Role: store.RoleUser, Content: "elsewhere"})).must(t)
	var ids []string
	for i, m := range []store.NewMessage{
		{Role: store.RoleUser, Content: "first"},
		{Role: store.RoleAssistant, Content: "reply 1"},
		{Role: store.RoleUser, Content: "second", Attachments: []store.NewAttachment{picture("kept")}},
		{Role: store.RoleAssistant, Content: "reply 2"},
		{Role: store.RoleUser, Content: "third"},
		{Role: store.RoleAssistant, Content: "", Status: store.StatusError},
	} {
		clk.Advance(time.Second)
		ids = append(ids, r(s.AppendMessage(ctx, alice, sess.ID, m)).must(t).ID)
		if i == 3 {
			noErr(t, s.RecordSpend(ctx, spend("paid", alice, "sonnet", clk.Now(), 99)))
		}
	}
	clk.Advance(time.Minute)
	got := r(s.ReplaceUserMessage(ctx, alice, sess.ID, ids[2], "second, edited")).must(t)
	if got.ID != ids[2] || got.Seq != 3 || got.Content != "second, edited" || got.Role != store.RoleUser ||
		len(got.Attachments) != 1 || got.Attachments[0].Name != "kept.png" || !got.UpdatedAt.Equal(clk.Now()) {
		t.Fatalf("replaced: %+v", got)
	}
	msgs := r(s.ListMessages(ctx, alice, sess.ID)).must(t)
	if len(msgs) != 3 || msgs[0].ID != ids[0] || msgs[1].ID != ids[1] || msgs[2].Content != "second, edited" || len(msgs[2].Attachments) != 1 {
		t.Fatalf("after replace: %+v", msgs)
	}
	if ss := r(s.GetSession(ctx, alice, sess.ID)).must(t); !ss.LastActivityAt.Equal(clk.Now()) {
		t.Fatalf("replace is activity: %v", ss.LastActivityAt)
	}
	// The numbering continues from the replaced message.
	next := r(s.BeginAssistantMessage(ctx, alice, sess.ID)).must(t)
	if next.Seq != 4 {
		t.Fatalf("the next message is number %d, want 4", next.Seq)
	}
	// What was paid for stays paid for.
	if spent := r(s.SpendSince(ctx, alice, time.Time{})).must(t); spent != 99 {
		t.Fatalf("ledger after replace: %d", spent)
	}
	// Regenerating the last turn: the same text again.
	noErr(t, s.FinishAssistantMessage(ctx, alice, sess.ID, next.ID, store.Finish{Content: "reply 2'", Status: store.StatusComplete}))
	r(s.ReplaceUserMessage(ctx, alice, sess.ID, ids[2], "second, edited")).must(t)
	if msgs := r(s.ListMessages(ctx, alice, sess.ID)).must(t); len(msgs) != 3 {
		t.Fatalf("after regenerate: %d messages", len(msgs))
	}

	_, err := s.ReplaceUserMessage(ctx, alice, sess.ID, ids[1], "x")
	wantErr(t, err, store.ErrInvalid, "replace a reply")
	_, err = s.ReplaceUserMessage(ctx, alice, sess.ID, ids[4], "x")
	wantErr(t, err, store.ErrNotFound, "replace a message already gone")
	_, err = s.ReplaceUserMessage(ctx, alice, sess.ID, elsewhere.ID, "x")
	wantErr(t, err, store.ErrNotFound, "replace a message of another session")
	_, err = s.ReplaceUserMessage(ctx, bob, sess.ID, ids[0], "x")
	wantErr(t, err, store.ErrNotFound, "replace another person's message")
	if msgs := r(s.ListMessages(ctx, alice, sess.ID)).must(t); len(msgs) != 3 || msgs[0].Content != "first" {
		t.Fatalf("a refused replace changed the session: %+v", msgs)
	}
}
