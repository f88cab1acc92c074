package store

import (
	"context"
	"fmt"
	"time"
)

// APIKeys are personal API keys: each names exactly one person, its owner.
// The store keeps the secret's hash and never the secret; making the
// secret and checking it are the gateway's.
type APIKeys interface {
	// CreateAPIKey stores a new key for owner. A hash already stored is
	// ErrConflict.
	CreateAPIKey(ctx context.Context, owner string, k NewAPIKey) (APIKey, error)
	// ListAPIKeys returns owner's keys, oldest first.
	ListAPIKeys(ctx context.Context, owner string) ([]APIKey, error)
	// DeleteAPIKey deletes owner's key id; another person's key, or an
	// unknown id, is ErrNotFound.
	DeleteAPIKey(ctx context.Context, owner, id string) error
	// APIKeyHashes returns every key's id, owner and hash: the whole
	// table's worth of what checking a presented key needs, for a cache.
	APIKeyHashes(ctx context.Context) ([]APIKeyHash, error)
	// TouchAPIKeys records that the keys were used at the given times. A
	// time earlier than the one stored does not move it back; an id that
	// is gone is skipped.
	TouchAPIKeys(ctx context.Context, used map[string]time.Time) error
}

// NewAPIKey is what CreateAPIKey needs.
type NewAPIKey struct {
	Name string
	// Prefix is the start of the key as shown to its owner ("cgw_AbCd1234").
	Prefix string
	// Hash is the digest of the whole key.
	Hash []byte
}

// APIKey is a key as its owner sees it: never the secret, never its hash.
type APIKey struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
}

// APIKeyHash is what identifies a caller by key.
type APIKeyHash struct {
	ID    string
	Owner string
	Hash  []byte
	// LastUsedAt is zero for a key never used.
	LastUsedAt time.Time
}

const apiKeyColumns = "id, name, prefix, created_at, last_used_at"

func scanAPIKey(r row) (APIKey, error) {
	var k APIKey
	var created int64
	var used *int64
	if err := r.Scan(&k.ID, &k.Name, &k.Prefix, &created, &used); err != nil {
		return APIKey{}, err
	}
	k.CreatedAt = fromMicros(created)
	if used != nil {
		t := fromMicros(*used)
		k.LastUsedAt = &t
	}
	return k, nil
}

func (s *sqlStore) CreateAPIKey(ctx context.Context, owner string, k NewAPIKey) (APIKey, error) {
	if err := checkOwner(owner); err != nil {
		return APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	if k.Name == "" || k.Prefix == "" || len(k.Hash) == 0 {
		return APIKey{}, fmt.Errorf("create api key: %w: name, prefix and hash are required", ErrInvalid)
	}
	id := newID()
	now := micros(s.now())
	_, err := s.db.writer().exec(ctx, `INSERT INTO api_keys (id, owner, name, prefix, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		id, owner, k.Name, k.Prefix, k.Hash, now)
	if s.db.isUniqueViolation(err) {
		return APIKey{}, fmt.Errorf("create api key: %w: the hash is taken", ErrConflict)
	}
	if err != nil {
		return APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	return APIKey{ID: id, Name: k.Name, Prefix: k.Prefix, CreatedAt: fromMicros(now)}, nil
}

func (s *sqlStore) ListAPIKeys(ctx context.Context, owner string) ([]APIKey, error) {
	rs, err := s.db.reader().query(ctx, "SELECT "+apiKeyColumns+" FROM api_keys WHERE owner = $1 ORDER BY created_at, id", owner)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rs.Close()
	out := []APIKey{}
	for rs.Next() {
		k, err := scanAPIKey(rs)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return out, nil
}

func (s *sqlStore) DeleteAPIKey(ctx context.Context, owner, id string) error {
	n, err := s.db.writer().exec(ctx, "DELETE FROM api_keys WHERE id = $1 AND owner = $2", id, owner)
	if err != nil {
		return fmt.Errorf("delete api key %s: %w", id, err)
	}
	if n == 0 {
		return notFound("api key", id)
	}
	return nil
}

func (s *sqlStore) APIKeyHashes(ctx context.Context) ([]APIKeyHash, error) {
	rs, err := s.db.reader().query(ctx, "SELECT id, owner, secret_hash, last_used_at FROM api_keys")
	if err != nil {
		return nil, fmt.Errorf("api key hashes: %w", err)
	}
	defer rs.Close()
	var out []APIKeyHash
	for rs.Next() {
		var k APIKeyHash
		var used *int64
		if err := rs.Scan(&k.ID, &k.Owner, &k.Hash, &used); err != nil {
			return nil, fmt.Errorf("api key hashes: %w", err)
		}
		if used != nil {
			k.LastUsedAt = fromMicros(*used)
		}
		out = append(out, k)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("api key hashes: %w", err)
	}
	return out, nil
}

func (s *sqlStore) TouchAPIKeys(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	err := s.db.tx(ctx, true, func(q querier) error {
		for id, at := range used {
			if _, err := q.exec(ctx, `UPDATE api_keys SET last_used_at = $1
				WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)`, micros(at), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("touch api keys: %w", err)
	}
	return nil
}
