package store

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// Open opens the store cfg describes: Embedded (a SQLite file at cfg.Path)
// or Postgres (the DSN in cfg.DSNFile). Migrations are applied before it
// returns. masterKey is the 32-byte key from Keys.MasterKeyFile.
func Open(ctx context.Context, cfg gatewayconfig.Store, masterKey []byte, opts ...Option) (Store, error) {
	switch cfg.Type {
	case gatewayconfig.StoreEmbedded, "":
		return OpenSQLite(ctx, cfg.Path, masterKey, opts...)
	case gatewayconfig.StorePostgres:
		b, err := os.ReadFile(cfg.DSNFile)
		if err != nil {
			return nil, fmt.Errorf("postgres store: read DSN file: %w", err)
		}
		return OpenPostgres(ctx, strings.TrimSpace(string(b)), masterKey, opts...)
	default:
		return nil, fmt.Errorf("%w: store type %q", ErrInvalid, cfg.Type)
	}
}

// Option adjusts a store.
type Option func(*sqlStore)

// WithClock replaces time.Now, for tests that move time.
func WithClock(now func() time.Time) Option {
	return func(s *sqlStore) { s.clock = now }
}

// sqlStore implements Store once, over either backend.
type sqlStore struct {
	db      backend
	dialect string
	keys    *keyring
	clock   func() time.Time

	closeOnce sync.Once
	closeErr  error
}

func newStore(ctx context.Context, b backend, dialect string, masterKey []byte, opts []Option) (Store, error) {
	keys, err := newKeyring(masterKey)
	if err != nil {
		_ = b.close()
		return nil, fmt.Errorf("%s store: %w", dialect, err)
	}
	s := &sqlStore{db: b, dialect: dialect, keys: keys, clock: time.Now}
	for _, o := range opts {
		o(s)
	}
	if err := migrate(ctx, b, dialect, s.now()); err != nil {
		_ = b.close()
		return nil, fmt.Errorf("%s store: %w", dialect, err)
	}
	return s, nil
}

func (s *sqlStore) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.db.close() })
	return s.closeErr
}

// now is the store's clock at the precision it stores.
func (s *sqlStore) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// newID returns 128 random bits in hex: unguessable, so an id seen in a
// log or a URL gives no way into anyone's session.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func checkOwner(owner string) error {
	if owner == "" {
		return fmt.Errorf("%w: empty owner", ErrInvalid)
	}
	return nil
}

// notFound is the one error for "no such row for you", whatever the
// reason: the same words whether the row is absent or someone else's.
func notFound(what, id string) error {
	return fmt.Errorf("%s %s: %w", what, id, ErrNotFound)
}

// userAEAD returns owner's key for sealing, creating the key row on first
// use when create is set. It runs inside the write transaction that uses
// the key, so an erase cannot slip between reading the salt and writing.
func (s *sqlStore) userAEAD(ctx context.Context, q querier, owner string, create bool) (aeadHandle, error) {
	var salt []byte
	err := q.queryRow(ctx, "SELECT salt FROM user_keys WHERE owner = $1", owner).Scan(&salt)
	if isNoRows(err) && create {
		if _, err := q.exec(ctx,
			"INSERT INTO user_keys (owner, salt, created_at) VALUES ($1, $2, $3) ON CONFLICT (owner) DO NOTHING",
			owner, newSalt(), micros(s.now())); err != nil {
			return aeadHandle{}, fmt.Errorf("create user key: %w", err)
		}
		// Read back rather than trust our salt: a concurrent first write
		// for the same user may have won.
		err = q.queryRow(ctx, "SELECT salt FROM user_keys WHERE owner = $1", owner).Scan(&salt)
	}
	if isNoRows(err) {
		return aeadHandle{}, errNoKey
	}
	if err != nil {
		return aeadHandle{}, fmt.Errorf("read user key: %w", err)
	}
	return s.aeadFor(owner, salt)
}

// errNoKey: the owner has no key row, so no sessions either.
var errNoKey = errors.New("no key")

type aeadHandle struct {
	owner string
	aead  cipher.AEAD
}

func (s *sqlStore) aeadFor(owner string, salt []byte) (aeadHandle, error) {
	a, err := s.keys.aead(owner, salt)
	if err != nil {
		return aeadHandle{}, err
	}
	return aeadHandle{owner: owner, aead: a}, nil
}

func (h aeadHandle) seal(plaintext, sessionID, messageID, field string) []byte {
	return seal(h.aead, plaintext, h.owner, sessionID, messageID, field)
}

func (h aeadHandle) open(sealed []byte, sessionID, messageID, field string) (string, error) {
	return unseal(h.aead, sealed, h.owner, sessionID, messageID, field)
}

func (h aeadHandle) sealBytes(plaintext []byte, sessionID, messageID, field string) []byte {
	return seal(h.aead, plaintext, h.owner, sessionID, messageID, field)
}

func (h aeadHandle) openBytes(sealed []byte, sessionID, messageID, field string) ([]byte, error) {
	return unsealBytes(h.aead, sealed, h.owner, sessionID, messageID, field)
}
