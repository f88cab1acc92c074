package chatapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// Personal API keys: a person's own credential for programs (the OpenAI
// and Anthropic SDKs), which the gateway treats exactly as that person.
//
//	GET    /api/me/keys        {"keys": [{id, name, prefix, createdAt, lastUsedAt}]}
//	POST   /api/me/keys        {"name"} -> 201 {id, name, prefix, createdAt, key}; the key only here
//	DELETE /api/me/keys/{id}   204; another person's key or an unknown id: 404
//
// Only the signed-in person manages their keys: a request made with a
// personal key is refused here (403), so a leaked key cannot mint a
// successor that outlives its revocation. There is no route for creating a
// key for someone else, admins included.
//
// A key is "cgw_" and 256 random bits in base64url (47 characters). The
// store keeps its SHA-256, not the key: with 256 bits of entropy a fast
// unkeyed hash cannot be reversed by guessing, so a keyed or slow hash
// would add nothing (those protect low-entropy passwords). The first
// APIKeyShown characters are kept too, so that the owner can tell keys
// apart.
const (
	APIKeyPrefix = "cgw_"
	APIKeyShown  = len(APIKeyPrefix) + 8
	// maxKeysPerPerson bounds the table (and the gateway's cache of it).
	maxKeysPerPerson = 50
	maxKeyName       = 100
)

// IsAPIKey tells a personal key from the gateway token by its prefix (the
// operator's tokens are unpadded base64url of random bytes: one in 2^24
// starts "cgw_", and then simply fails as a key).
func IsAPIKey(s string) bool { return strings.HasPrefix(s, APIKeyPrefix) }

// HashAPIKey is the digest the store keeps of a key.
func HashAPIKey(key string) [sha256.Size]byte { return sha256.Sum256([]byte(key)) }

// newAPIKey returns a fresh key.
func newAPIKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand's contract)
	return APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// KeyCache is the gateway's in-memory view of the keys, told of changes
// made here so that this replica applies them at once.
type KeyCache interface {
	// Reload re-reads the keys (after one was created).
	Reload(ctx context.Context)
	// Revoked drops a deleted key.
	Revoked(id string)
	// Erased drops every key of owner.
	Erased(owner string)
}

func (a *API) keyRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/me/keys", a.authed(a.signedIn(a.listKeys)))
	m.HandleFunc("POST /api/me/keys", a.authed(a.signedIn(a.createKey)))
	m.HandleFunc("DELETE /api/me/keys/{id}", a.authed(a.signedIn(a.deleteKey)))
}

// signedIn refuses requests made with a personal key.
func (a *API) signedIn(h Handler) Handler {
	return func(w http.ResponseWriter, r *http.Request, c *Call) {
		if c.KeyID != "" {
			writeAPIError(w, http.StatusForbidden, "personal API keys are managed on the chat page, signed in: a key cannot list, create or revoke keys")
			return
		}
		h(w, r, c)
	}
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, c *Call) {
	keys, err := a.store.ListAPIKeys(r.Context(), c.Caller.Email)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Keys []store.APIKey `json:"keys"`
	}{keys})
}

type createdKey struct {
	store.APIKey
	Key string `json:"key"`
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request, c *Call) {
	fields, ok := decodeStrict(w, r, 4<<10, "name")
	if !ok {
		return
	}
	var name string
	if raw, ok := fields["name"]; !ok || json.Unmarshal(raw, &name) != nil {
		writeAPIError(w, http.StatusBadRequest, `send {"name": "..."}: a name that says where the key is used`)
		return
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		writeAPIError(w, http.StatusBadRequest, "the key's name is empty: say where the key is used, e.g. \"laptop\"")
		return
	case utf8.RuneCountInString(name) > maxKeyName:
		writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("the key's name is longer than %d characters", maxKeyName))
		return
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		writeAPIError(w, http.StatusBadRequest, "the key's name must not hold control characters")
		return
	}
	ctx := context.WithoutCancel(r.Context())
	have, err := a.store.ListAPIKeys(ctx, c.Caller.Email)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	if len(have) >= maxKeysPerPerson {
		writeAPIError(w, http.StatusConflict, fmt.Sprintf("you have %d keys, the most one person may have; revoke one first", len(have)))
		return
	}
	key := newAPIKey()
	h := HashAPIKey(key)
	k, err := a.store.CreateAPIKey(ctx, c.Caller.Email, store.NewAPIKey{Name: name, Prefix: key[:APIKeyShown], Hash: h[:]})
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	if a.keys != nil {
		a.keys.Reload(ctx)
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "Created a personal API key",
		slog.String("request_id", c.ID), slog.String("user", c.Caller.Hash), slog.String("key_id", k.ID))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, createdKey{APIKey: k, Key: key})
}

func (a *API) deleteKey(w http.ResponseWriter, r *http.Request, c *Call) {
	id := r.PathValue("id")
	if err := a.store.DeleteAPIKey(context.WithoutCancel(r.Context()), c.Caller.Email, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeAPIError(w, http.StatusNotFound, "no such key")
			return
		}
		a.storeError(w, r, c, err)
		return
	}
	if a.keys != nil {
		a.keys.Revoked(id)
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "Revoked a personal API key",
		slog.String("request_id", c.ID), slog.String("user", c.Caller.Hash), slog.String("key_id", id))
	w.WriteHeader(http.StatusNoContent)
}

// decodeStrict reads a small flat JSON object whose keys must be among
// allowed, spelt exactly so and each at most once: encoding/json would take
// "NAME" for "name" and the last of two "name"s, and a body read one way
// here and another way by a proxy or a log is how requests get smuggled.
func decodeStrict(w http.ResponseWriter, r *http.Request, limit int64, allowed ...string) (map[string]json.RawMessage, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeAPIError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit))
			return nil, false
		}
		writeAPIError(w, http.StatusBadRequest, "reading the request body failed")
		return nil, false
	}
	fields, msg := strictObject(b, allowed)
	if msg != "" {
		writeAPIError(w, http.StatusBadRequest, msg)
		return nil, false
	}
	return fields, true
}

func strictObject(b []byte, allowed []string) (map[string]json.RawMessage, string) {
	const shape = "the request body must be one JSON object"
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, shape
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, shape
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, shape
		}
		if !slices.Contains(allowed, k) {
			return nil, fmt.Sprintf("unknown field %q: this route takes %s", k, strings.Join(allowed, ", "))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Sprintf("field %q appears twice", k)
		}
		out[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, shape
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, shape
	}
	return out, ""
}
