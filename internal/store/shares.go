package store

import (
	"context"
	"errors"
	"fmt"
)

// auditInsert is the one statement that writes an audit event.
const auditInsert = `INSERT INTO audit_log (at, actor, action, subject, session_id) VALUES ($1, $2, $3, $4, $5)`

func validAudit(e AuditEvent) error {
	if e.Actor == "" || e.Action == "" || e.Subject == "" {
		return fmt.Errorf("%w: actor, action and subject are required", ErrInvalid)
	}
	return nil
}

func (s *sqlStore) SetShared(ctx context.Context, owner, id string, shared bool, e AuditEvent) error {
	if err := validAudit(e); err != nil {
		return fmt.Errorf("share session: %w", err)
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	err := s.db.tx(ctx, true, func(q querier) error {
		var one int
		if err := q.queryRow(ctx, "SELECT 1 FROM sessions WHERE id = $1 AND owner = $2", id, owner).Scan(&one); err != nil {
			if isNoRows(err) {
				return notFound("session", id)
			}
			return err
		}
		at := micros(e.Time)
		var err error
		if shared {
			// Sharing a shared session again keeps when it was first shared.
			_, err = q.exec(ctx, `INSERT INTO shares (session_id, owner, shared_at, revoked_at) VALUES ($1, $2, $3, NULL)
				ON CONFLICT (session_id) DO UPDATE SET shared_at = excluded.shared_at, revoked_at = NULL
				WHERE shares.revoked_at IS NOT NULL`, id, owner, at)
		} else {
			_, err = q.exec(ctx, "UPDATE shares SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL", at, id)
		}
		if err != nil {
			return err
		}
		_, err = q.exec(ctx, auditInsert, at, e.Actor, e.Action, e.Subject, e.SessionID)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("share session %s: %w", id, err)
	}
	return err
}

// sharedColumns are sessionColumns and when the session was shared.
const sharedColumns = `s.id, s.owner, s.model, s.title, s.created_at, s.last_activity_at, k.salt, sh.shared_at
	FROM shares sh JOIN sessions s ON s.id = sh.session_id JOIN user_keys k ON k.owner = s.owner`

func (s *sqlStore) scanShared(r row) (SharedSession, error) {
	var at int64
	ss, err := s.scanSession(rowWith{r, &at})
	return SharedSession{Session: ss, SharedAt: fromMicros(at)}, err
}

// rowWith scans the columns of sessionColumns into the session and one
// more into extra.
type rowWith struct {
	row
	extra any
}

func (r rowWith) Scan(dest ...any) error { return r.row.Scan(append(dest, r.extra)...) }

func (s *sqlStore) SharedSessions(ctx context.Context) ([]SharedSession, error) {
	rs, err := s.db.reader().query(ctx, "SELECT "+sharedColumns+`
		WHERE sh.revoked_at IS NULL ORDER BY sh.shared_at DESC, sh.session_id`)
	if err != nil {
		return nil, fmt.Errorf("shared sessions: %w", err)
	}
	defer rs.Close()
	out := []SharedSession{}
	for rs.Next() {
		ss, err := s.scanShared(rs)
		if err != nil {
			return nil, fmt.Errorf("shared sessions: %w", err)
		}
		out = append(out, ss)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("shared sessions: %w", err)
	}
	return out, nil
}

func (s *sqlStore) SharedSession(ctx context.Context, owner, id string) (SharedSession, error) {
	ss, err := s.scanShared(s.db.reader().queryRow(ctx, "SELECT "+sharedColumns+`
		WHERE sh.session_id = $1 AND s.owner = $2 AND sh.revoked_at IS NULL`, id, owner))
	if isNoRows(err) {
		return SharedSession{}, notFound("session", id)
	}
	if err != nil {
		return SharedSession{}, fmt.Errorf("shared session %s: %w", id, err)
	}
	return ss, nil
}
