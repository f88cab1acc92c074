package gateway

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// identityHashInfo separates the identity-hash key from the other keys the
// master key derives (the store derives per-user encryption keys from it).
const identityHashInfo = "identity-hash"

// minMasterKeyLen guards against an empty or truncated key file; the
// operator writes 32 random bytes.
const minMasterKeyLen = 16

// identityHasher maps an email to a stable pseudonym: HMAC-SHA256 under a
// key derived from the master key. Without the master key the pseudonym
// cannot be reversed by guessing emails.
type identityHasher struct {
	key []byte
}

func newIdentityHasher(masterKey []byte) (*identityHasher, error) {
	if len(masterKey) < minMasterKeyLen {
		return nil, fmt.Errorf("master key has %d bytes, want at least %d", len(masterKey), minMasterKeyLen)
	}
	key, err := hkdf.Key(sha256.New, masterKey, nil, identityHashInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the identity-hash key: %w", err)
	}
	return &identityHasher{key: key}, nil
}

// hash returns 32 hex digits (128 bits): short enough for a label or a log
// field, long enough never to collide in a team.
func (h *identityHasher) hash(email string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(email))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// logHash names a user in logs. With a master key it is the keyed hash
// (the same one metrics and providers see); without one, an unkeyed short
// hash, which keeps emails out of log lines but could be matched by
// someone guessing addresses.
func logHash(h *identityHasher, email string) string {
	if h != nil {
		return h.hash(email)
	}
	sum := sha256.Sum256([]byte(email))
	return "sha256:" + hex.EncodeToString(sum[:8])
}
