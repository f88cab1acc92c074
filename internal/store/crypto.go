package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
)

// MasterKeySize is the length of the master key in bytes.
const MasterKeySize = 32

const (
	saltSize = 32
	// sealVersion prefixes every ciphertext, so a later scheme (another
	// cipher, key rotation) can tell old rows from new.
	sealVersion byte = 1
	// userKeyInfo separates this use of the master key from any other the
	// gateway derives from it (the identity-hash key, for one).
	userKeyInfo = "chatgateway/store/user-key/v1"
)

// Fields that ciphertext is bound to, in the associated data.
const (
	fieldTitle   = "title"
	fieldContent = "content"
)

// An attachment's fields name the attachment too: its bytes cannot be
// swapped with another picture of the same message.
func fieldAttachmentName(id string) string { return "attachment-name\x00" + id }
func fieldAttachmentData(id string) string { return "attachment-data\x00" + id }

// ReadMasterKey reads the master key file: exactly MasterKeySize bytes.
func ReadMasterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	if len(b) != MasterKeySize {
		return nil, fmt.Errorf("master key %s: %d bytes, want %d", path, len(b), MasterKeySize)
	}
	return b, nil
}

// keyring derives per-user AEADs from the master key and each user's salt.
// The derived keys are cached by owner, but only ever used when the salt
// the database holds now matches: a key erased (or replaced) by another
// replica is never used to seal new rows.
type keyring struct {
	master []byte

	mu    sync.Mutex
	cache map[string]userKey
}

type userKey struct {
	salt []byte
	aead cipher.AEAD
}

// maxCachedKeys bounds the cache; a household never reaches it, and if
// something does the cost is only re-deriving.
const maxCachedKeys = 4096

func newKeyring(master []byte) (*keyring, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("master key: %d bytes, want %d", len(master), MasterKeySize)
	}
	return &keyring{master: bytes.Clone(master), cache: map[string]userKey{}}, nil
}

// aead returns owner's AEAD for the given salt.
func (k *keyring) aead(owner string, salt []byte) (cipher.AEAD, error) {
	k.mu.Lock()
	c, ok := k.cache[owner]
	k.mu.Unlock()
	if ok && bytes.Equal(c.salt, salt) {
		return c.aead, nil
	}
	// The owner goes into the info too: even two users given the same salt
	// would get different keys.
	key, err := hkdf.Key(sha256.New, k.master, salt, userKeyInfo+"\x00"+owner, 32)
	if err != nil {
		return nil, fmt.Errorf("derive user key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("derive user key: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("derive user key: %w", err)
	}
	k.mu.Lock()
	if len(k.cache) >= maxCachedKeys {
		clear(k.cache)
	}
	k.cache[owner] = userKey{salt: bytes.Clone(salt), aead: aead}
	k.mu.Unlock()
	return aead, nil
}

// forget drops owner's cached key, so an erased user's key leaves memory too.
func (k *keyring) forget(owner string) {
	k.mu.Lock()
	delete(k.cache, owner)
	k.mu.Unlock()
}

func newSalt() []byte {
	b := make([]byte, saltSize)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// SealOverhead is how many bytes sealing adds to a text: the version byte,
// the 12-byte random nonce and the 16-byte tag.
const SealOverhead = 1 + 12 + 16

// seal encrypts plaintext bound to (owner, session, message, field). Each
// call draws a fresh random nonce, so saving the same text twice yields
// different bytes. AES-GCM with random nonces is good for 2^32 seals per key,
// far beyond one person's messages and coarse stream checkpoints.
func seal[T string | []byte](aead cipher.AEAD, plaintext T, owner, sessionID, messageID, field string) []byte {
	out := make([]byte, 1, 1+aead.Overhead()+len(plaintext))
	out[0] = sealVersion
	return aead.Seal(out, nil, []byte(plaintext), additionalData(owner, sessionID, messageID, field))
}

func unseal(aead cipher.AEAD, sealed []byte, owner, sessionID, messageID, field string) (string, error) {
	pt, err := unsealBytes(aead, sealed, owner, sessionID, messageID, field)
	return string(pt), err
}

func unsealBytes(aead cipher.AEAD, sealed []byte, owner, sessionID, messageID, field string) ([]byte, error) {
	if len(sealed) < 1 || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: unknown format", ErrUndecryptable)
	}
	pt, err := aead.Open(nil, nil, sealed[1:], additionalData(owner, sessionID, messageID, field))
	if err != nil {
		return nil, fmt.Errorf("%w: %s of session %s", ErrUndecryptable, field, sessionID)
	}
	return pt, nil
}

// additionalData is length-prefixed so no two different tuples encode alike
// ("a","bc" vs "ab","c").
func additionalData(parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += 4 + len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, sealVersion)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}
