package gateway

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/completion"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// snapshot is everything a request needs from the config and the files it
// names, resolved once per load. A request keeps the snapshot it started
// with, so a reload never changes a request halfway.
type snapshot struct {
	cfg         *gatewayconfig.Config
	tokens      tokens
	emailHeader string // canonical form
	users       map[string]*gatewayconfig.User
	// hashes holds each user's pseudonym (see logHash), computed once per
	// load rather than once per request.
	hashes map[string]string
	hasher *identityHasher // nil without a master key
	// core is what the completion core needs: the models, their routes,
	// the failover and quota settings.
	core     *completion.Snapshot
	loadedAt time.Time
}

// tokens holds SHA-256 digests of the gateway tokens, so comparisons run
// over fixed-length values (no length leak) and the tokens themselves are
// not kept in memory longer than loading takes.
type tokens struct {
	current         [32]byte
	previous        [32]byte
	hasPrevious     bool
	previousExpires time.Time
}

// fileReader returns the content of path (field names it in errors), nil
// when it is empty, missing and not required, or unreadable (then it
// records the error).
type fileReader func(field, path string, required bool) []byte

// loadTokens reads the gateway tokens the auth settings name. The previous
// token and its expiry are optional: a fresh gateway has never rotated. A
// previous token without a readable expiry is not accepted, since "valid
// forever" is the wrong failure mode.
func loadTokens(a gatewayconfig.Auth, file fileReader) (tokens, []error) {
	var t tokens
	var errs []error
	raw := file("auth.tokenFile", a.TokenFile, true)
	tok := strings.TrimSpace(string(raw))
	if tok == "" && raw != nil {
		errs = append(errs, fmt.Errorf("auth.tokenFile: %s is empty", a.TokenFile))
	}
	t.current = sha256.Sum256([]byte(tok))
	if prev := strings.TrimSpace(string(file("auth.previousTokenFile", a.PreviousTokenFile, false))); prev != "" {
		exp := strings.TrimSpace(string(file("auth.previousTokenExpiresAtFile", a.PreviousTokenExpiresAtFile, false)))
		if exp != "" {
			at, err := time.Parse(time.RFC3339, exp)
			if err != nil {
				errs = append(errs, fmt.Errorf("auth.previousTokenExpiresAtFile: %q is not an RFC 3339 time", exp))
			}
			t.previous, t.hasPrevious, t.previousExpires = sha256.Sum256([]byte(prev)), true, at
		}
	}
	return t, errs
}

// equal compares two token sets (digests, not secrets).
func (t tokens) equal(o tokens) bool {
	return t.current == o.current && t.previous == o.previous && t.hasPrevious == o.hasPrevious && t.previousExpires.Equal(o.previousExpires)
}

// readTokenFiles reads the token files a from disk, for a reload whose
// other inputs do not load (see Gateway.Reload).
func readTokenFiles(a gatewayconfig.Auth) (t tokens, err error) {
	readVolumes(nil, func(r *volumeReader) { t, err = readTokensFrom(r, a) })
	return t, err
}

func readTokensFrom(r *volumeReader, a gatewayconfig.Auth) (tokens, error) {
	var errs []error
	t, terrs := loadTokens(a, func(field, path string, required bool) []byte {
		if path == "" {
			return nil
		}
		b, err := r.ReadFile(path)
		if err != nil {
			if required || !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("%s: %w", field, err))
			}
			return nil
		}
		if b == nil {
			b = []byte{}
		}
		return b
	})
	return t, errors.Join(append(errs, terrs...)...)
}

// inputs are the bytes a snapshot is built from: the config file and every
// file it names, each read once per poll, through one resolution of each
// volume (see volumeReader).
type inputs struct {
	configRaw []byte
	cfg       *gatewayconfig.Config
	cfgErr    error
	files     map[string][]byte
	fileErrs  map[string]error
	digest    [32]byte
}

// readInputs reads the config and the files it names. prev lets an
// unchanged config skip parsing.
func readInputs(path string, prev *inputs) (in *inputs) {
	readVolumes(nil, func(r *volumeReader) { in = readInputsFrom(r, path, prev) })
	return in
}

func readInputsFrom(r *volumeReader, path string, prev *inputs) *inputs {
	in := &inputs{files: map[string][]byte{}, fileErrs: map[string]error{}}
	h := sha256.New()
	raw, err := r.ReadFile(path)
	if err != nil {
		in.cfgErr = fmt.Errorf("reading gateway config: %w", err)
		fmt.Fprintf(h, "config error %v\x00", err)
		h.Sum(in.digest[:0])
		return in
	}
	in.configRaw = raw
	h.Write(raw)
	if prev != nil && prev.configRaw != nil && bytes.Equal(prev.configRaw, raw) {
		in.cfg, in.cfgErr = prev.cfg, prev.cfgErr
	} else {
		in.cfg, in.cfgErr = gatewayconfig.Parse(raw)
		if in.cfgErr != nil {
			in.cfgErr = fmt.Errorf("%s: %w", path, in.cfgErr)
		}
	}
	if in.cfg != nil {
		for _, f := range referencedFiles(in.cfg) {
			b, err := r.ReadFile(f)
			fmt.Fprintf(h, "\x00%s\x00", f)
			if err != nil {
				in.fileErrs[f] = err
				fmt.Fprintf(h, "error %v", err)
				continue
			}
			in.files[f] = b
			h.Write(b)
		}
	}
	h.Sum(in.digest[:0])
	return in
}

func referencedFiles(c *gatewayconfig.Config) []string {
	files := []string{c.Auth.TokenFile, c.Auth.PreviousTokenFile, c.Auth.PreviousTokenExpiresAtFile, c.Keys.MasterKeyFile}
	for _, p := range c.Providers {
		files = append(files, p.APIKeyFile)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return f == "" })
	slices.Sort(files)
	return slices.Compact(files)
}

// buildSnapshot validates inputs beyond the schema (files present, keys
// usable) and resolves them. Errors name the field or file at fault.
func buildSnapshot(in *inputs, tr *upstream.Transports, now time.Time) (*snapshot, error) {
	if in.cfgErr != nil {
		return nil, in.cfgErr
	}
	c := in.cfg
	var errs []error
	file := func(field, path string, required bool) []byte {
		if path == "" {
			return nil
		}
		if err := in.fileErrs[path]; err != nil {
			if required || !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("%s: %w", field, err))
			}
			return nil
		}
		return in.files[path]
	}
	s := &snapshot{
		cfg:         c,
		emailHeader: http.CanonicalHeaderKey(c.Auth.EmailHeader),
		users:       map[string]*gatewayconfig.User{},
		hashes:      map[string]string{},
		loadedAt:    now,
	}

	var terrs []error
	s.tokens, terrs = loadTokens(c.Auth, file)
	errs = append(errs, terrs...)
	if c.Keys.MasterKeyFile != "" {
		required := c.Identity.Upstream == gatewayconfig.IdentityHash || c.Identity.MetricsEndUser == gatewayconfig.IdentityHash
		if key := file("keys.masterKeyFile", c.Keys.MasterKeyFile, required); key != nil {
			h, err := newIdentityHasher(key)
			if err != nil {
				errs = append(errs, fmt.Errorf("keys.masterKeyFile: %w", err))
			}
			s.hasher = h
		}
	}

	for i := range c.Users {
		s.users[c.Users[i].Email] = &c.Users[i]
		s.hashes[c.Users[i].Email] = logHash(s.hasher, c.Users[i].Email)
	}
	providers := make([]upstream.Provider, len(c.Providers))
	for i, p := range c.Providers {
		var key string
		if p.APIKeyFile != "" {
			key = strings.TrimSpace(string(file(fmt.Sprintf("providers[%d].apiKeyFile", i), p.APIKeyFile, true)))
		}
		providers[i] = upstream.NewProvider(p, key, tr.Get(p))
	}
	core, err := completion.NewSnapshot(c, providers)
	if err != nil {
		errs = append(errs, err)
	}
	s.core = core
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// upstreamIdentity is the caller as providers see them: the email or its keyed hash.
func (s *snapshot) upstreamIdentity(email string) string {
	if s.cfg.Identity.Upstream == gatewayconfig.IdentityHash && s.hasher != nil {
		return s.hashes[email]
	}
	return email
}

// endUser returns the end_user metric label.
func (s *snapshot) endUser(email string) string {
	switch s.cfg.Identity.MetricsEndUser {
	case gatewayconfig.IdentityEmail:
		return email
	case gatewayconfig.IdentityHash:
		if s.hasher != nil {
			return s.hashes[email]
		}
	}
	return ""
}
