package store

import (
	"bytes"
	"errors"
	"testing"
)

func testKeyring(t *testing.T, b byte) *keyring {
	t.Helper()
	k, err := newKeyring(bytes.Repeat([]byte{b}, MasterKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealBindsEveryField(t *testing.T) {
	k := testKeyring(t, 1)
	salt := newSalt()
	alice, err := k.aead("alice@example.com", salt)
	if err != nil {
		t.Fatal(err)
	}
	sealed := seal(alice, "hello", "alice@example.com", "s1", "m1", fieldContent)
	if len(sealed) != len("hello")+SealOverhead {
		t.Fatalf("sealing 5 bytes gave %d, want 5+SealOverhead", len(sealed))
	}
	if pt, err := unseal(alice, sealed, "alice@example.com", "s1", "m1", fieldContent); err != nil || pt != "hello" {
		t.Fatalf("unseal = %q, %v", pt, err)
	}
	if bytes.Contains(sealed, []byte("hello")) {
		t.Fatal("plaintext visible in ciphertext")
	}
	if again := seal(alice, "hello", "alice@example.com", "s1", "m1", fieldContent); bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same text are identical: nonce reused")
	}

	// The same salt under another owner's name is another key.
	bob, err := k.aead("bob@example.com", salt)
	if err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func() (string, error){
		"other owner's key": func() (string, error) { return unseal(bob, sealed, "alice@example.com", "s1", "m1", fieldContent) },
		"owner in AD":       func() (string, error) { return unseal(alice, sealed, "bob@example.com", "s1", "m1", fieldContent) },
		"session":           func() (string, error) { return unseal(alice, sealed, "alice@example.com", "s2", "m1", fieldContent) },
		"message":           func() (string, error) { return unseal(alice, sealed, "alice@example.com", "s1", "m2", fieldContent) },
		"field":             func() (string, error) { return unseal(alice, sealed, "alice@example.com", "s1", "m1", fieldTitle) },
		"field boundaries":  func() (string, error) { return unseal(alice, sealed, "alice@example.com", "s1m", "1", fieldContent) },
		"other master key":  func() (string, error) { return unsealWith(t, testKeyring(t, 2), salt, sealed) },
		"other salt":        func() (string, error) { return unsealWith(t, k, newSalt(), sealed) },
		"flipped bit": func() (string, error) {
			return unseal(alice, flip(sealed, len(sealed)-1), "alice@example.com", "s1", "m1", fieldContent)
		},
		"unknown version": func() (string, error) {
			return unseal(alice, flip(sealed, 0), "alice@example.com", "s1", "m1", fieldContent)
		},
		"truncated": func() (string, error) {
			return unseal(alice, sealed[:10], "alice@example.com", "s1", "m1", fieldContent)
		},
		"empty": func() (string, error) { return unseal(alice, nil, "alice@example.com", "s1", "m1", fieldContent) },
	} {
		if _, err := open(); !errors.Is(err, ErrUndecryptable) {
			t.Errorf("%s: got %v, want ErrUndecryptable", name, err)
		}
	}
}

func unsealWith(t *testing.T, k *keyring, salt, sealed []byte) (string, error) {
	a, err := k.aead("alice@example.com", salt)
	if err != nil {
		t.Fatal(err)
	}
	return unseal(a, sealed, "alice@example.com", "s1", "m1", fieldContent)
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

func TestKeyCacheFollowsSalt(t *testing.T) {
	k := testKeyring(t, 1)
	s1, s2 := newSalt(), newSalt()
	a1, _ := k.aead("alice@example.com", s1)
	sealed := seal(a1, "x", "alice@example.com", "s", "", fieldTitle)
	// A new salt for the same owner (erased, then back) must not reuse
	// the cached key.
	a2, _ := k.aead("alice@example.com", s2)
	if _, err := unseal(a2, sealed, "alice@example.com", "s", "", fieldTitle); !errors.Is(err, ErrUndecryptable) {
		t.Fatalf("old ciphertext opened under a new salt: %v", err)
	}
	k.forget("alice@example.com")
	if len(k.cache) != 0 {
		t.Fatal("forget left the key cached")
	}
}

func TestMasterKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := newKeyring(make([]byte, n)); err == nil {
			t.Errorf("accepted a %d-byte master key", n)
		}
	}
}
