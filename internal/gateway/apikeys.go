package gateway

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/chatapi"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// The personal API keys' cache (the keys themselves: chatapi/keys.go).
//
// Checking a key costs no store round trip: every replica holds every
// key's hash and owner in memory (a team has tens or hundreds of keys) and
// re-reads the whole table every keyRefresh: a cache with a short refresh,
// not a change feed (one small query per interval and replica, whatever
// the traffic, and nothing to miss after a dropped connection). A revoked
// key is therefore refused by every replica within keyRefresh plus one
// query, and by the replica that revoked it at once. When the refresh loop
// lags, the first request that finds the table older than 2×keyRefresh
// re-reads it itself; a table older than keyMaxAge (the store cannot be
// read) is not trusted at all and keys get 503: a revocation may be in
// what could not be read.
//
// Last use is written coarsely: at most once per keyTouchEvery per key and
// replica, by the refresh loop, never on the request's path.
const (
	keyRefresh    = 500 * time.Millisecond
	keyMaxAge     = 2 * time.Second
	keyRetry      = 250 * time.Millisecond
	keyTouchEvery = 5 * time.Minute
)

type keyEntry struct {
	id, owner string
	// lastUsed is Unix microseconds of the last use known to this replica.
	lastUsed atomic.Int64
}

type keyTable struct {
	byHash   map[[sha256.Size]byte]*keyEntry
	loadedAt time.Time // wall clock, for freshness
}

// keyCache is the in-memory view of the store's API keys.
type keyCache struct {
	st  store.APIKeys
	now func() time.Time // for last-use times, the store's clock
	log *slog.Logger

	table atomic.Pointer[keyTable]

	mu          sync.Mutex // one refresh at a time
	lastAttempt time.Time

	pendingMu sync.Mutex
	pending   map[string]time.Time // last uses not yet written
}

func newKeyCache(st store.APIKeys, now func() time.Time, log *slog.Logger) *keyCache {
	return &keyCache{st: st, now: now, log: log, pending: map[string]time.Time{}}
}

type keyStatus int

const (
	keyUnknown keyStatus = iota
	keyUnavailable
	keyValid
)

// lookup returns the key's entry. It refreshes the table itself when the
// refresh loop has not kept it fresh (or is not running).
func (c *keyCache) lookup(ctx context.Context, key string) (*keyEntry, keyStatus) {
	t := c.table.Load()
	if t == nil || time.Since(t.loadedAt) > keyRefresh*2 {
		t = c.refreshIfStale(ctx)
	}
	if t == nil || time.Since(t.loadedAt) > keyMaxAge {
		return nil, keyUnavailable
	}
	e, ok := t.byHash[chatapi.HashAPIKey(key)]
	if !ok {
		return nil, keyUnknown
	}
	c.used(e)
	return e, keyValid
}

// used notes a use, for the next write of last-use times.
func (c *keyCache) used(e *keyEntry) {
	now := c.now()
	last := e.lastUsed.Load()
	if now.UnixMicro()-last < keyTouchEvery.Microseconds() || !e.lastUsed.CompareAndSwap(last, now.UnixMicro()) {
		return
	}
	c.pendingMu.Lock()
	c.pending[e.id] = now
	c.pendingMu.Unlock()
}

func (c *keyCache) refreshIfStale(ctx context.Context) *keyTable {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.table.Load()
	if t != nil && time.Since(t.loadedAt) <= keyRefresh*2 {
		return t // another request refreshed it meanwhile
	}
	if time.Since(c.lastAttempt) < keyRetry {
		return t // the store just failed: do not hammer it from every request
	}
	if err := c.refreshLocked(ctx); err != nil {
		c.log.LogAttrs(ctx, slog.LevelError, "Could not read the personal API keys", slog.String("error", err.Error()))
	}
	return c.table.Load()
}

// refresh re-reads every key.
func (c *keyCache) refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refreshLocked(ctx)
}

func (c *keyCache) refreshLocked(ctx context.Context) error {
	c.lastAttempt = time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keyMaxAge)
	defer cancel()
	start := time.Now()
	rows, err := c.st.APIKeyHashes(ctx)
	if err != nil {
		return err
	}
	old := c.table.Load()
	next := &keyTable{byHash: make(map[[sha256.Size]byte]*keyEntry, len(rows)), loadedAt: start}
	for _, k := range rows {
		var h [sha256.Size]byte
		if copy(h[:], k.Hash) != sha256.Size {
			continue
		}
		e := &keyEntry{id: k.ID, owner: k.Owner}
		used := int64(0)
		if !k.LastUsedAt.IsZero() {
			used = k.LastUsedAt.UnixMicro()
		}
		if old != nil {
			if o, ok := old.byHash[h]; ok {
				used = max(used, o.lastUsed.Load())
			}
		}
		e.lastUsed.Store(used)
		next.byHash[h] = e
	}
	c.table.Store(next)
	return nil
}

// Reload re-reads the keys now (one was created here).
func (c *keyCache) Reload(ctx context.Context) {
	if err := c.refresh(ctx); err != nil {
		c.log.LogAttrs(ctx, slog.LevelError, "Could not read the personal API keys", slog.String("error", err.Error()))
	}
}

// Revoked drops a key at once from this replica (the others drop it at
// their next refresh).
func (c *keyCache) Revoked(id string) { c.drop(func(e *keyEntry) bool { return e.id == id }) }

// Erased drops every key of owner (their data was erased).
func (c *keyCache) Erased(owner string) { c.drop(func(e *keyEntry) bool { return e.owner == owner }) }

// drop swaps in a copy of the table without the keys gone says are gone.
func (c *keyCache) drop(gone func(*keyEntry) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.table.Load()
	if t == nil {
		return
	}
	next := &keyTable{byHash: make(map[[sha256.Size]byte]*keyEntry, len(t.byHash)), loadedAt: t.loadedAt}
	for h, e := range t.byHash {
		if !gone(e) {
			next.byHash[h] = e
		}
	}
	c.table.Store(next)
}

// flush writes the last uses noted since the previous flush.
func (c *keyCache) flush(ctx context.Context) error {
	c.pendingMu.Lock()
	used := c.pending
	c.pending = map[string]time.Time{}
	c.pendingMu.Unlock()
	if len(used) == 0 {
		return nil
	}
	if err := c.st.TouchAPIKeys(ctx, used); err != nil {
		c.pendingMu.Lock()
		for id, at := range used {
			if at.After(c.pending[id]) {
				c.pending[id] = at
			}
		}
		c.pendingMu.Unlock()
		return err
	}
	return nil
}

// run refreshes the table every keyRefresh and writes last uses, until
// ctx ends.
func (c *keyCache) run(ctx context.Context) {
	t := time.NewTicker(keyRefresh)
	defer t.Stop()
	failing := false
	for {
		err := c.refresh(ctx)
		if err == nil {
			err = c.flush(ctx)
		}
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			c.log.Error("Could not refresh the personal API keys; they are refused once the last good read is "+keyMaxAge.String()+" old", slog.String("error", err.Error()))
		case err == nil && failing:
			c.log.Info("Refreshed the personal API keys again")
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			_ = c.flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
		}
	}
}
