package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

func testMigrations(t *testing.T, h Harness) {
	ctx := context.Background()
	db := h.NewDB(t)
	s := r(db.Open(t, MasterKey)).must(t)
	ss := r(s.CreateSession(ctx, alice, store.NewSession{Model: "m", Title: "survives"})).must(t)
	noErr(t, s.Close())
	noErr(t, s.Close()) // twice is fine

	// Several replicas starting at once on an up-to-date database.
	openAll := func(db DB) []store.Store {
		var wg sync.WaitGroup
		stores := make([]store.Store, 3)
		errs := make([]error, len(stores))
		for i := range stores {
			wg.Go(func() { stores[i], errs[i] = db.Open(t, MasterKey) })
		}
		wg.Wait()
		noErr(t, errors.Join(errs...))
		return stores
	}
	for _, s := range openAll(db) {
		if got := r(s.GetSession(ctx, alice, ss.ID)).must(t); got.Title != "survives" {
			t.Fatalf("after reopen: %+v", got)
		}
		noErr(t, s.Close())
	}

	// And on a fresh one: exactly one migrates, the others wait and find it done.
	for i, s := range openAll(h.NewDB(t)) {
		r(s.CreateSession(ctx, alice, store.NewSession{Model: "m", Title: fmt.Sprint(i)})).must(t)
	}
}

func testWrongMasterKey(t *testing.T, h Harness) {
	ctx := context.Background()
	db := h.NewDB(t)
	s := r(db.Open(t, MasterKey)).must(t)
	ss := r(s.CreateSession(ctx, alice, store.NewSession{Model: "m", Title: "t"})).must(t)
	r(s.AppendMessage(ctx, alice, ss.ID, store.NewMessage{Role: store.RoleUser, Content: "c"})).must(t)
	noErr(t, s.Close())

	other := bytes.Repeat([]byte{0xa3}, store.MasterKeySize)
	s = r(db.Open(t, other)).must(t)
	_, err := s.GetSession(ctx, alice, ss.ID)
	wantErr(t, err, store.ErrUndecryptable, "get with the wrong master key")
	_, err = s.ListMessages(ctx, alice, ss.ID)
	wantErr(t, err, store.ErrUndecryptable, "messages with the wrong master key")
	wantErr(t, s.Export(ctx, alice, func(store.ExportedSession) error { return nil }), store.ErrUndecryptable, "export with the wrong master key")
}

// testCanary writes a unique marker as a title, a prompt, a picture and its
// name, a streamed partial and a reply, then searches every byte of the
// database for it.
func testCanary(t *testing.T, h Harness) {
	ctx := context.Background()
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	canary := "CANARY-" + hex.EncodeToString(nonce[:]) + "-do-not-store-in-plaintext"
	owner := "canary-owner-" + hex.EncodeToString(nonce[:4]) + "@example.com"

	db := h.NewDB(t)
	s := r(db.Open(t, MasterKey)).must(t)
	ss := r(s.CreateSession(ctx, owner, store.NewSession{Model: "sonnet", Title: "title " + canary})).must(t)
	sent := r(s.AppendMessage(ctx, owner, ss.ID, store.NewMessage{Role: store.RoleUser, Content: "prompt " + canary,
		Attachments: []store.NewAttachment{{MediaType: "image/png", Name: "name " + canary, Data: []byte("picture " + canary)}}})).must(t)
	m := r(s.BeginAssistantMessage(ctx, owner, ss.ID)).must(t)
	r(s.AddAttachment(ctx, owner, ss.ID, m.ID, store.NewAttachment{MediaType: "image/png", Name: "made " + canary, Data: []byte("made " + canary)})).must(t)
	noErr(t, s.UpdateAssistantMessage(ctx, owner, ss.ID, m.ID, "partial "+canary))
	noErr(t, s.FinishAssistantMessage(ctx, owner, ss.ID, m.ID, store.Finish{Content: "reply " + canary, Status: store.StatusComplete}))
	noErr(t, s.RenameSession(ctx, owner, ss.ID, "renamed "+canary))
	r(s.ReplaceUserMessage(ctx, owner, ss.ID, sent.ID, "edited "+canary)).must(t)
	old := r(s.CreateSession(ctx, owner, store.NewSession{Model: "sonnet", Title: "deleted " + canary})).must(t)
	noErr(t, s.DeleteSession(ctx, owner, old.ID))
	noErr(t, s.RecordSpend(ctx, spend("canary-req", owner, "sonnet", time.Now(), 1)))
	noErr(t, s.Close())

	// Plaintext, and the encodings a dump may render bytes in.
	needles := map[string][]byte{
		"raw":    []byte(canary),
		"hex":    []byte(hex.EncodeToString([]byte(canary))),
		"base64": []byte(base64.StdEncoding.EncodeToString([]byte(canary))[:40]),
	}
	var seen []string
	sawOwner := false
	db.Dump(t, func(name string, data []byte) {
		seen = append(seen, name)
		for enc, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("canary (%s) found in %s", enc, name)
			}
		}
		sawOwner = sawOwner || bytes.Contains(data, []byte(owner))
	})
	// The owner's email is stored in plaintext by design: finding it proves
	// the dump saw the data, so the canary's absence means something.
	if !sawOwner {
		t.Fatalf("the dump (%s) does not contain the owner's email: it cannot be the data", strings.Join(seen, ", "))
	}
	t.Logf("canary absent from %d artifacts: %s", len(seen), strings.Join(seen, ", "))
}

func testConcurrency(t *testing.T, h Harness) {
	ctx := context.Background()
	s := open(t, h)
	shared := r(s.CreateSession(ctx, alice, store.NewSession{Model: "m"})).must(t)
	const workers, perWorker = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker*4)
	for w := range workers {
		wg.Go(func() {
			owner := fmt.Sprintf("user%d@example.com", w)
			own, err := s.CreateSession(ctx, owner, store.NewSession{Model: "m"})
			if err != nil {
				errs <- err
				return
			}
			for i := range perWorker {
				if _, err := s.AppendMessage(ctx, alice, shared.ID, store.NewMessage{Role: store.RoleUser, Content: fmt.Sprint(w, "/", i)}); err != nil {
					errs <- err
				}
				m, err := s.BeginAssistantMessage(ctx, owner, own.ID)
				if err == nil {
					err = s.FinishAssistantMessage(ctx, owner, own.ID, m.ID, store.Finish{Content: "ok", Status: store.StatusComplete})
				}
				if err != nil {
					errs <- err
				}
				if err := s.RecordSpend(ctx, spend(fmt.Sprint(w, "-", i), alice, "m", time.Now(), 3)); err != nil {
					errs <- err
				}
				if _, err := s.ListMessages(ctx, alice, shared.ID); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	msgs := r(s.ListMessages(ctx, alice, shared.ID)).must(t)
	if len(msgs) != workers*perWorker {
		t.Fatalf("%d messages, want %d", len(msgs), workers*perWorker)
	}
	seen := map[string]bool{}
	for i, m := range msgs {
		if m.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d: numbering has gaps or duplicates", i, m.Seq)
		}
		seen[m.Content] = true
	}
	if len(seen) != workers*perWorker {
		t.Fatalf("%d distinct messages", len(seen))
	}
	if got := r(s.SpendSince(ctx, alice, time.Time{})).must(t); got != 3*workers*perWorker {
		t.Fatalf("spend %d, want %d", got, 3*workers*perWorker)
	}
	usage := r(s.UsageByUser(ctx, time.Time{}, time.Now().Add(time.Hour))).must(t)
	if len(usage) != 1 || usage[0].Requests != workers*perWorker {
		t.Fatalf("usage %+v", usage)
	}
}
