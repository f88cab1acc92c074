package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/chatapi"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/completion"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// Reasons for refusing a caller, the values of chatgateway_auth_failures_total.
const (
	refusedNoToken        = "no_token"
	refusedBadToken       = "bad_token"
	refusedExpiredToken   = "expired_token"
	refusedNoEmail        = "no_email"
	refusedDuplicateEmail = "duplicate_email"
	refusedNotAllowed     = "not_allowed"
	refusedNonASCIIEmail  = "non_ascii_email"
	// Personal API keys: unknown or revoked; two different ones; the
	// store cannot be read to check them.
	refusedBadKey          = "bad_key"
	refusedDuplicateKey    = "duplicate_key"
	refusedKeysUnavailable = "keys_unavailable"
	// A personal key on a route that needs the signed-in person.
	refusedKeyNotAllowed = "key_not_allowed"
)

// identify says who the caller is, by one of two credentials:
//
//   - a personal API key (apikeys.go): it names exactly one person, and no
//     email header is read with it; a key that is unknown or revoked is
//     refused even when the gateway token comes with it;
//   - the gateway token, which OAuth2 Proxy adds: it proves the request came
//     through the sidecar, and only then is the email header believed.
//
// keyID is the personal key's id, "" for the token.
func identify(ctx context.Context, r *http.Request, s *snapshot, keys *keyCache, front translate.Dialect, now time.Time) (who completion.Caller, keyID, reason string, aerr *translate.Error) {
	toks, apiKeys, malformed := presentedTokens(r.Header, front == translate.Anthropic)
	if malformed != "" {
		return completion.Caller{}, "", refusedBadToken, translate.Errorf(http.StatusUnauthorized, malformed)
	}
	if len(apiKeys) > 0 {
		return identifyByKey(ctx, s, keys, apiKeys)
	}
	if len(toks) == 0 {
		how := "Authorization: Bearer <token> or X-Gateway-Token: <token>"
		if front == translate.Anthropic {
			how += " (or x-api-key: <token>)"
		}
		return completion.Caller{}, "", refusedNoToken, translate.Errorf(http.StatusUnauthorized, "missing credentials: sign in on the chat page, or send your personal API key as "+how)
	}
	status := tokenInvalid
	for _, tok := range toks {
		status = max(status, s.tokens.check(tok, now))
	}
	switch status {
	case tokenExpired:
		return completion.Caller{}, "", refusedExpiredToken, translate.Errorf(http.StatusUnauthorized, "the gateway token was rotated and its grace period is over; use the current token")
	case tokenInvalid:
		return completion.Caller{}, "", refusedBadToken, translate.Errorf(http.StatusUnauthorized, "invalid credentials: personal API keys start with "+chatapi.APIKeyPrefix)
	}

	// Header lookup is by canonical name, so "X_Forwarded_Email" (which
	// net/http keeps as a distinct header) can never stand in for
	// "X-Forwarded-Email".
	values := r.Header.Values(s.emailHeader)
	switch len(values) {
	case 0:
		// Through the sidecar this is a request without a session (OAuth2
		// Proxy lets /api and /v1 through for personal keys and adds the
		// token to everything): nobody is signed in, hence 401.
		return completion.Caller{}, "", refusedNoEmail, translate.Errorf(http.StatusUnauthorized, fmt.Sprintf("not signed in (no %s header): sign in on the chat page, or send a personal API key; the gateway token alone is for the OAuth2 Proxy sidecar", s.emailHeader))
	case 1:
	default:
		return completion.Caller{}, "", refusedDuplicateEmail, translate.Errorf(http.StatusBadRequest, fmt.Sprintf("more than one %s header; send exactly one", s.emailHeader))
	}
	email, err := gatewayconfig.CanonicalEmail(values[0])
	if err != nil {
		return completion.Caller{}, "", refusedNonASCIIEmail, translate.Errorf(http.StatusForbidden, fmt.Sprintf("the signed-in address is not allowed here: %v. Ask an administrator to add the plain ASCII address you sign in with", err))
	}
	u, ok := s.users[email]
	if !ok {
		return completion.Caller{}, "", refusedNotAllowed, translate.Errorf(http.StatusForbidden, fmt.Sprintf("%s is not on this gateway's allowlist; ask an administrator to add you", email))
	}
	return s.caller(email, u), "", "", nil
}

// identifyByKey identifies the owner of a personal API key, who must still
// be on the allowlist.
func identifyByKey(ctx context.Context, s *snapshot, keys *keyCache, presented []string) (completion.Caller, string, string, *translate.Error) {
	for _, k := range presented[1:] {
		if k != presented[0] {
			return completion.Caller{}, "", refusedDuplicateKey, translate.Errorf(http.StatusBadRequest, "two different personal API keys in one request; send one")
		}
	}
	if keys == nil {
		return completion.Caller{}, "", refusedBadKey, translate.Errorf(http.StatusUnauthorized, "this gateway has no store, so no personal API keys")
	}
	e, status := keys.lookup(ctx, presented[0])
	switch status {
	case keyUnavailable:
		return completion.Caller{}, "", refusedKeysUnavailable, translate.Errorf(http.StatusServiceUnavailable, "personal API keys cannot be checked right now (the store does not answer); try again shortly")
	case keyUnknown:
		return completion.Caller{}, "", refusedBadKey, translate.Errorf(http.StatusUnauthorized, "invalid personal API key: it was revoked, or never issued")
	}
	u, ok := s.users[e.owner]
	if !ok {
		return completion.Caller{}, "", refusedNotAllowed, translate.Errorf(http.StatusForbidden, "the owner of this personal API key is no longer on this gateway's allowlist")
	}
	return s.caller(e.owner, u), e.id, "", nil
}

// presentedTokens collects the credentials: personal API keys (by their
// prefix, in Authorization: Bearer or x-api-key, on either front, so that
// both official SDKs work with either of their options) and the candidates
// for the gateway token: X-Gateway-Token, an Authorization bearer token,
// and (Anthropic front only) x-api-key. One valid token candidate is
// enough: behind OAuth2 Proxy the Authorization header may carry the
// proxy's own ID token while the gateway token travels in another header.
// A header sent twice is refused rather than guessed at.
func presentedTokens(h http.Header, allowAPIKey bool) (toks, apiKeys []string, malformed string) {
	one := func(name string) (string, bool) {
		v := h.Values(name)
		if len(v) > 1 {
			malformed = "more than one " + name + " header"
		}
		if len(v) != 1 {
			return "", false
		}
		return strings.TrimSpace(v[0]), true
	}
	if t, ok := one("X-Gateway-Token"); ok {
		toks = append(toks, t)
	}
	if a, ok := one("Authorization"); ok {
		if scheme, t, found := strings.Cut(a, " "); found && strings.EqualFold(scheme, "Bearer") {
			if t = strings.TrimSpace(t); chatapi.IsAPIKey(t) {
				apiKeys = append(apiKeys, t)
			} else {
				toks = append(toks, t)
			}
		}
	}
	if t, ok := one("X-Api-Key"); ok {
		switch {
		case chatapi.IsAPIKey(t):
			apiKeys = append(apiKeys, t)
		case allowAPIKey:
			toks = append(toks, t)
		}
	}
	return toks, apiKeys, malformed
}

// tokenStatus values are ordered: the best of several candidates wins.
type tokenStatus int

const (
	tokenInvalid tokenStatus = iota
	tokenExpired             // the previous token, after its grace period
	tokenValid
)

// check compares in constant time against both tokens, always both, so
// timing reveals neither which token matched nor how much of it.
func (t *tokens) check(presented string, now time.Time) tokenStatus {
	if presented == "" {
		return tokenInvalid
	}
	p := sha256.Sum256([]byte(presented))
	cur := subtle.ConstantTimeCompare(p[:], t.current[:])
	prev := subtle.ConstantTimeCompare(p[:], t.previous[:])
	switch {
	case cur == 1:
		return tokenValid
	case prev == 1 && t.hasPrevious && now.Before(t.previousExpires):
		return tokenValid
	case prev == 1 && t.hasPrevious:
		return tokenExpired
	}
	return tokenInvalid
}

// caller is an allowlisted person in every form the rest of the gateway
// needs: labels, log pseudonym and upstream identity follow the config.
func (s *snapshot) caller(email string, u *gatewayconfig.User) completion.Caller {
	return completion.Caller{Email: email, Role: u.Role, Hash: s.hashes[email], EndUser: s.endUser(email), Upstream: s.upstreamIdentity(email)}
}

// call is one authenticated API request.
type call struct {
	// id is the gateway's own; clientID the caller's X-Request-Id, kept
	// for correlation only.
	id       string
	clientID string
	start    time.Time
	front    translate.Dialect
	snap     *snapshot
	who      completion.Caller
	// keyID is the personal API key the caller used, "" for the sidecar.
	keyID string
}

type callHandler func(w http.ResponseWriter, r *http.Request, c *call)

// authed wraps an API route: request id, the snapshot the request keeps,
// and identity.
func (g *Gateway) authed(front translate.Dialect, h callHandler) http.HandlerFunc {
	return g.identified(front, front, func(w http.ResponseWriter, e *translate.Error) { translate.WriteError(w, front, e) }, h)
}

// identified runs h for a caller with a valid gateway token and an allowed
// email, and otherwise answers with refuse. tokenFront is the API whose
// token headers count (x-api-key only on the Anthropic front); front is the
// dialect the call is served in.
func (g *Gateway) identified(front, tokenFront translate.Dialect, refuse func(http.ResponseWriter, *translate.Error), h callHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		c := &call{id: newRequestID(start), clientID: clientRequestID(r), start: start, front: front, snap: g.snap.Load()}
		w.Header().Set("X-Request-Id", c.id)
		if tokenFront == translate.Anthropic {
			w.Header().Set("Request-Id", c.id) // where Anthropic's SDKs look
		}
		who, keyID, reason, aerr := identify(r.Context(), r, c.snap, g.keys, tokenFront, g.now())
		if aerr != nil {
			g.metrics.authFails.WithLabelValues(reason).Inc()
			// The route pattern, not the path: a path may carry an email.
			g.log.LogAttrs(r.Context(), slog.LevelWarn, "Refused request",
				slog.String("request_id", c.id), slog.String("client_request_id", c.clientID), slog.String("reason", reason), slog.String("route", r.Pattern))
			refuse(w, aerr)
			return
		}
		if msg := contentTypeProblem(r, r.Pattern); msg != "" {
			g.metrics.authFails.WithLabelValues(refusedContentType).Inc()
			refuse(w, translate.Errorf(http.StatusUnsupportedMediaType, msg))
			return
		}
		c.who, c.keyID = who, keyID
		h(w, r, c)
	}
}

// apiAuthed wraps an /api route: the same identity as the model API (the
// gateway token, then the email header and the allowlist), errors in the
// /api shape.
func (g *Gateway) apiAuthed(h chatapi.Handler) http.HandlerFunc {
	return g.identified(translate.Anthropic, translate.OpenAI,
		func(w http.ResponseWriter, e *translate.Error) { chatapi.WriteError(w, e.Status, e.Msg) },
		func(w http.ResponseWriter, r *http.Request, c *call) {
			h(w, r, &chatapi.Call{ID: c.id, Caller: c.who, Config: c.snap.cfg, Snapshot: c.snap.core, KeyID: c.keyID})
		})
}

// newRequestID is the gateway's id for a request: the time in
// milliseconds then 80 random bits, so no caller can name, repeat or
// collide with another request's ledger row, and the ledger's key grows
// in time order, as UUIDv7's does: a batch of rows lands on the index's
// last pages instead of one random page per row (what the store writes
// per commit). (math/rand/v2's generator is ChaCha8 seeded per thread:
// unpredictable enough for an id, and cheap.)
func newRequestID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16|rand.Uint64()&0xffff)
	binary.BigEndian.PutUint64(b[8:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// clientRequestID keeps a sane incoming X-Request-Id (OAuth2 Proxy or an
// ingress may set one) so logs and the ledger correlate across hops; it is
// never a key.
func clientRequestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 && isIDSafe(id) {
		return id
	}
	return ""
}

func isIDSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
