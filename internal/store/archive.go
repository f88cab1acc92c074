package store

import (
	"context"
	"fmt"
	"time"
)

func (s *sqlStore) Export(ctx context.Context, owner string, fn func(ExportedSession) error) error {
	err := s.db.tx(ctx, false, func(q querier) error {
		// Headers first, then one session's messages at a time: memory stays
		// bounded by the largest session, and no result set is left open
		// while the next query runs (pgx allows one per connection).
		rs, err := q.query(ctx, "SELECT "+sessionColumns+" WHERE s.owner = $1 ORDER BY s.created_at, s.id", owner)
		if err != nil {
			return err
		}
		var sessions []Session
		for rs.Next() {
			ss, err := s.scanSession(rs)
			if err != nil {
				rs.Close()
				return err
			}
			sessions = append(sessions, ss)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
		for _, ss := range sessions {
			msgs, err := s.listMessages(ctx, q, owner, ss.ID, true)
			if err != nil {
				return err
			}
			if err := fn(ExportedSession{Session: ss, Messages: msgs}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

func (s *sqlStore) Import(ctx context.Context, owner string, es ExportedSession) error {
	if err := s.checkImport(owner, &es); err != nil {
		return fmt.Errorf("import session %s: %w", es.ID, err)
	}
	err := s.db.tx(ctx, true, func(q querier) error {
		h, err := s.userAEAD(ctx, q, owner, true)
		if err != nil {
			return err
		}
		if _, err := q.exec(ctx, `INSERT INTO sessions (id, owner, model, title, created_at, last_activity_at, last_seq)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			es.ID, owner, es.Model, h.seal(es.Title, es.ID, "", fieldTitle),
			micros(es.CreatedAt), micros(es.LastActivityAt), int64(len(es.Messages))); err != nil {
			return s.conflict(err, "session "+es.ID+" already exists")
		}
		for i, m := range es.Messages {
			if _, err := q.exec(ctx, `INSERT INTO messages
				(id, session_id, seq, role, content, input_tokens, output_tokens, status, created_at, updated_at, attachments)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
				m.ID, es.ID, int64(i+1), string(m.Role), h.seal(m.Content, es.ID, m.ID, fieldContent),
				m.InputTokens, m.OutputTokens, string(m.Status), micros(m.CreatedAt), micros(m.UpdatedAt), len(m.Attachments)); err != nil {
				return s.conflict(err, "message "+m.ID+" already exists")
			}
			for j, a := range m.Attachments {
				na := NewAttachment{MediaType: a.MediaType, Name: a.Name, Width: a.Width, Height: a.Height, Data: a.Data}
				if _, err := insertAttachment(ctx, q, h, es.ID, m.ID, a.ID, j+1, na, micros(m.UpdatedAt)); err != nil {
					return s.conflict(err, "attachment "+a.ID+" already exists")
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import session %s: %w", es.ID, err)
	}
	return nil
}

// checkImport validates es and fills what an export may leave out.
func (s *sqlStore) checkImport(owner string, es *ExportedSession) error {
	if err := checkOwner(owner); err != nil {
		return err
	}
	if !validID(es.ID) {
		return fmt.Errorf("%w: session id must be 1 to 128 characters", ErrInvalid)
	}
	now := s.now()
	// An archive's times are the importer's word: none may lie in the
	// future, or a session dated 2999 would head the list and outlive
	// retention forever.
	es.CreatedAt = notAfter(es.CreatedAt, now)
	es.LastActivityAt = notAfter(es.LastActivityAt, now)
	if es.CreatedAt.IsZero() {
		es.CreatedAt = now
	}
	if es.LastActivityAt.IsZero() {
		es.LastActivityAt = es.CreatedAt
	}
	msgs := make([]Message, len(es.Messages))
	seen, pictures := map[string]bool{}, map[string]bool{}
	for i, m := range es.Messages {
		if !validID(m.ID) || seen[m.ID] {
			return fmt.Errorf("%w: message %d: id missing, too long or repeated", ErrInvalid, i+1)
		}
		seen[m.ID] = true
		if err := checkRole(m.Role); err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		switch m.Status {
		case "":
			m.Status = StatusComplete
		case StatusStreaming:
			// Its writer is not coming back: same as recovery would do.
			m.Status = StatusIncomplete
		}
		if err := checkFinal(m.Status); err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		if err := checkTokens(m.InputTokens, m.OutputTokens); err != nil {
			return fmt.Errorf("message %s: %w", m.ID, err)
		}
		m.CreatedAt, m.UpdatedAt = notAfter(m.CreatedAt, now), notAfter(m.UpdatedAt, now)
		for j, a := range m.Attachments {
			if a.ID != "" && !validID(a.ID) || pictures[a.ID] {
				return fmt.Errorf("%w: message %s: attachment %d: id too long or repeated", ErrInvalid, m.ID, j+1)
			}
			if a.ID != "" {
				pictures[a.ID] = true
			}
			if err := checkAttachment(NewAttachment{MediaType: a.MediaType, Name: a.Name, Width: a.Width, Height: a.Height, Data: a.Data}); err != nil {
				return fmt.Errorf("message %s: attachment %d: %w", m.ID, j+1, err)
			}
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = es.CreatedAt
		}
		if m.UpdatedAt.IsZero() {
			m.UpdatedAt = m.CreatedAt
		}
		msgs[i] = m
	}
	es.Messages = msgs
	return nil
}

// notAfter is t, or now when t is later.
func notAfter(t, now time.Time) time.Time {
	if t.After(now) {
		return now
	}
	return t
}

func (s *sqlStore) StoredBytes(ctx context.Context, owner string) (int64, error) {
	var n int64
	err := s.db.reader().queryRow(ctx, `SELECT
		COALESCE((SELECT SUM(LENGTH(title)) FROM sessions WHERE owner = $1), 0) +
		COALESCE((SELECT SUM(LENGTH(m.content)) FROM messages m JOIN sessions s ON s.id = m.session_id WHERE s.owner = $1), 0) +
		COALESCE((SELECT SUM(LENGTH(a.name) + LENGTH(a.data)) FROM attachments a JOIN sessions s ON s.id = a.session_id WHERE s.owner = $1), 0)`,
		owner).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("stored bytes: %w", err)
	}
	return n, nil
}

// SealedSize is what StoredBytes counts for an exported session once
// imported: each title, message and picture (its name and bytes) sealed
// (see SealOverhead).
func SealedSize(es ExportedSession) int64 {
	n := int64(len(es.Title) + SealOverhead)
	for _, m := range es.Messages {
		n += int64(len(m.Content) + SealOverhead)
		for _, a := range m.Attachments {
			n += int64(len(a.Name) + len(a.Data) + 2*SealOverhead)
		}
	}
	return n
}

func validID(id string) bool { return id != "" && len(id) <= 128 }

func (s *sqlStore) conflict(err error, what string) error {
	if s.db.isUniqueViolation(err) {
		return fmt.Errorf("%s: %w", what, ErrConflict)
	}
	return err
}

func (s *sqlStore) DeleteUserData(ctx context.Context, owner string) error {
	err := s.db.tx(ctx, true, func(q querier) error {
		// The cascade from user_keys would do; saying it is clearer.
		if _, err := q.exec(ctx, "DELETE FROM sessions WHERE owner = $1", owner); err != nil {
			return err
		}
		if _, err := q.exec(ctx, "DELETE FROM api_keys WHERE owner = $1", owner); err != nil {
			return err
		}
		_, err := q.exec(ctx, "DELETE FROM user_keys WHERE owner = $1", owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete user data: %w", err)
	}
	s.keys.forget(owner)
	if err := s.db.afterErase(ctx); err != nil {
		return fmt.Errorf("delete user data: %w", err)
	}
	return nil
}

func (s *sqlStore) DeleteSessionsOlderThan(ctx context.Context, t time.Time) (int64, error) {
	n, err := s.db.writer().exec(ctx, "DELETE FROM sessions WHERE last_activity_at < $1", micros(t))
	if err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	return n, nil
}
