package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

func keyHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func testAPIKeys(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, h, store.WithClock(clk.Now))

	t0 := clk.Now()
	a1 := r(s.CreateAPIKey(ctx, alice, store.NewAPIKey{Name: "laptop", Prefix: "cgw_aaaa", Hash: keyHash("a1")})).must(t)
	clk.Advance(time.Second)
	a2 := r(s.CreateAPIKey(ctx, alice, store.NewAPIKey{Name: "laptop", Prefix: "cgw_bbbb", Hash: keyHash("a2")})).must(t) // names may repeat
	b1 := r(s.CreateAPIKey(ctx, bob, store.NewAPIKey{Name: "ci", Prefix: "cgw_cccc", Hash: keyHash("b1")})).must(t)
	if a1.ID == "" || a1.ID == a2.ID || !a1.CreatedAt.Equal(t0) || a1.LastUsedAt != nil || a1.Prefix != "cgw_aaaa" {
		t.Fatalf("created %+v and %+v", a1, a2)
	}

	// The same hash twice is a conflict, whoever asks: a hash names one key.
	wantErr(t, r(s.CreateAPIKey(ctx, bob, store.NewAPIKey{Name: "x", Prefix: "cgw_aaaa", Hash: keyHash("a1")})).err, store.ErrConflict, "a second key with the same hash")
	wantErr(t, r(s.CreateAPIKey(ctx, alice, store.NewAPIKey{Name: "x", Prefix: "cgw_dddd"})).err, store.ErrInvalid, "a key without a hash")
	wantErr(t, r(s.CreateAPIKey(ctx, "", store.NewAPIKey{Name: "x", Prefix: "cgw_dddd", Hash: keyHash("z")})).err, store.ErrInvalid, "a key without an owner")

	list := r(s.ListAPIKeys(ctx, alice)).must(t)
	if len(list) != 2 || list[0].ID != a1.ID || list[1].ID != a2.ID {
		t.Fatalf("alice's keys, oldest first: %+v", list)
	}
	if got := r(s.ListAPIKeys(ctx, "carol@example.com")).must(t); got == nil || len(got) != 0 {
		t.Fatalf("nobody's keys: %#v, want an empty list", got)
	}

	// Every key's hash and owner, for the gateway's cache.
	byID := map[string]store.APIKeyHash{}
	for _, k := range r(s.APIKeyHashes(ctx)).must(t) {
		byID[k.ID] = k
	}
	if len(byID) != 3 || byID[b1.ID].Owner != bob || !bytes.Equal(byID[a2.ID].Hash, keyHash("a2")) || !byID[a1.ID].LastUsedAt.IsZero() {
		t.Fatalf("hashes: %+v", byID)
	}

	// Last use moves forward only, and an id that is gone is skipped.
	used := t0.Add(time.Hour)
	noErr(t, s.TouchAPIKeys(ctx, map[string]time.Time{a1.ID: used, "gone": used}))
	noErr(t, s.TouchAPIKeys(ctx, map[string]time.Time{a1.ID: used.Add(-time.Minute)}))
	if got := r(s.ListAPIKeys(ctx, alice)).must(t)[0]; got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
		t.Fatalf("last used %v, want %v", got.LastUsedAt, used)
	}

	// Only the owner deletes a key; bob cannot delete alice's.
	wantErr(t, s.DeleteAPIKey(ctx, bob, a1.ID), store.ErrNotFound, "deleting someone else's key")
	wantErr(t, s.DeleteAPIKey(ctx, alice, "no-such-key"), store.ErrNotFound, "deleting an unknown key")
	noErr(t, s.DeleteAPIKey(ctx, alice, a1.ID))
	wantErr(t, s.DeleteAPIKey(ctx, alice, a1.ID), store.ErrNotFound, "deleting a key twice")
	if got := r(s.ListAPIKeys(ctx, alice)).must(t); len(got) != 1 || got[0].ID != a2.ID {
		t.Fatalf("after deleting: %+v", got)
	}

	// A person's keys go with their data; the others' stay.
	noErr(t, s.DeleteUserData(ctx, alice))
	if got := r(s.ListAPIKeys(ctx, alice)).must(t); len(got) != 0 {
		t.Fatalf("keys after erasing alice's data: %+v", got)
	}
	left := r(s.APIKeyHashes(ctx)).must(t)
	if len(left) != 1 || left[0].ID != b1.ID {
		t.Fatalf("hashes after erasing alice's data: %+v", left)
	}
}
