package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const sessionColumns = `s.id, s.owner, s.model, s.title, s.created_at, s.last_activity_at, k.salt
	FROM sessions s JOIN user_keys k ON k.owner = s.owner`

// scanSession reads a row of sessionColumns and opens its title.
func (s *sqlStore) scanSession(r row) (Session, error) {
	var (
		ss            Session
		title, salt   []byte
		created, last int64
	)
	if err := r.Scan(&ss.ID, &ss.Owner, &ss.Model, &title, &created, &last, &salt); err != nil {
		return Session{}, err
	}
	h, err := s.aeadFor(ss.Owner, salt)
	if err != nil {
		return Session{}, err
	}
	if ss.Title, err = h.open(title, ss.ID, "", fieldTitle); err != nil {
		return Session{}, err
	}
	ss.CreatedAt, ss.LastActivityAt = fromMicros(created), fromMicros(last)
	return ss, nil
}

func (s *sqlStore) CreateSession(ctx context.Context, owner string, n NewSession) (Session, error) {
	if err := checkOwner(owner); err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	now := s.now()
	ss := Session{ID: newID(), Owner: owner, Model: n.Model, Title: n.Title, CreatedAt: now, LastActivityAt: now}
	err := s.db.tx(ctx, true, func(q querier) error {
		h, err := s.userAEAD(ctx, q, owner, true)
		if err != nil {
			return err
		}
		_, err = q.exec(ctx, `INSERT INTO sessions (id, owner, model, title, created_at, last_activity_at)
			VALUES ($1, $2, $3, $4, $5, $5)`,
			ss.ID, owner, ss.Model, h.seal(ss.Title, ss.ID, "", fieldTitle), micros(now))
		return err
	})
	if err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	return ss, nil
}

func (s *sqlStore) GetSession(ctx context.Context, owner, id string) (Session, error) {
	ss, err := s.scanSession(s.db.reader().queryRow(ctx,
		"SELECT "+sessionColumns+" WHERE s.id = $1 AND s.owner = $2", id, owner))
	if isNoRows(err) {
		return Session{}, notFound("session", id)
	}
	if err != nil {
		return Session{}, fmt.Errorf("get session %s: %w", id, err)
	}
	return ss, nil
}

const (
	defaultPageSize = 50
	maxPageSize     = 500
)

func (s *sqlStore) ListSessions(ctx context.Context, owner string, p Page) ([]Session, string, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = defaultPageSize
	}
	limit = min(limit, maxPageSize)
	// Keyset pagination on (last activity, id): stable under inserts, and
	// as cheap for page 100 as for page 1.
	afterAt, afterID := int64(math.MaxInt64), ""
	if p.Cursor != "" {
		var err error
		if afterAt, afterID, err = decodeCursor(p.Cursor); err != nil {
			return nil, "", fmt.Errorf("list sessions: %w", err)
		}
	}
	rs, err := s.db.reader().query(ctx, "SELECT "+sessionColumns+`
		WHERE s.owner = $1 AND (s.last_activity_at, s.id) < ($2, $3)
		ORDER BY s.last_activity_at DESC, s.id DESC
		LIMIT $4`, owner, afterAt, afterID, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list sessions: %w", err)
	}
	defer rs.Close()
	var out []Session
	for rs.Next() {
		ss, err := s.scanSession(rs)
		if err != nil {
			return nil, "", fmt.Errorf("list sessions: %w", err)
		}
		out = append(out, ss)
	}
	if err := rs.Err(); err != nil {
		return nil, "", fmt.Errorf("list sessions: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeCursor(micros(last.LastActivityAt), last.ID)
	}
	return out, next, nil
}

func encodeCursor(at int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at, 10) + "." + id))
}

func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		at, id, ok := strings.Cut(string(b), ".")
		if n, perr := strconv.ParseInt(at, 10, 64); ok && perr == nil {
			return n, id, nil
		}
	}
	return 0, "", fmt.Errorf("%w: malformed cursor", ErrInvalid)
}

func (s *sqlStore) RenameSession(ctx context.Context, owner, id, title string) error {
	err := s.db.tx(ctx, true, func(q querier) error {
		h, err := s.userAEAD(ctx, q, owner, false)
		if err == errNoKey {
			return notFound("session", id)
		}
		if err != nil {
			return err
		}
		n, err := q.exec(ctx, "UPDATE sessions SET title = $1 WHERE id = $2 AND owner = $3",
			h.seal(title, id, "", fieldTitle), id, owner)
		if err == nil && n == 0 {
			return notFound("session", id)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("rename session: %w", err)
	}
	return nil
}

func (s *sqlStore) DeleteSession(ctx context.Context, owner, id string) error {
	n, err := s.db.writer().exec(ctx, "DELETE FROM sessions WHERE id = $1 AND owner = $2", id, owner)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("delete session: %w", notFound("session", id))
	}
	return nil
}

func (s *sqlStore) TouchSession(ctx context.Context, owner, id string) error {
	n, err := s.db.writer().exec(ctx, "UPDATE sessions SET last_activity_at = $1 WHERE id = $2 AND owner = $3",
		micros(s.now()), id, owner)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("touch session: %w", notFound("session", id))
	}
	return nil
}

func (s *sqlStore) ActiveSession(ctx context.Context, owner string, idle time.Duration, now time.Time) (Session, error) {
	// Active means now < last activity + idle, as Session.Expired has it.
	ss, err := s.scanSession(s.db.reader().queryRow(ctx, "SELECT "+sessionColumns+`
		WHERE s.owner = $1 AND s.last_activity_at > $2
		ORDER BY s.last_activity_at DESC, s.id DESC
		LIMIT 1`, owner, micros(now.Add(-idle))))
	if isNoRows(err) {
		return Session{}, fmt.Errorf("active session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("active session: %w", err)
	}
	return ss, nil
}
