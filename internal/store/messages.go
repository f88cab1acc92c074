package store

import (
	"context"
	"fmt"
	"time"
)

func checkRole(r Role) error {
	if r != RoleUser && r != RoleAssistant {
		return fmt.Errorf("%w: role %q", ErrInvalid, r)
	}
	return nil
}

// checkFinal accepts the statuses a finished message may have.
func checkFinal(st Status) error {
	switch st {
	case StatusComplete, StatusIncomplete, StatusError:
		return nil
	}
	return fmt.Errorf("%w: status %q", ErrInvalid, st)
}

func checkTokens(in, out int64) error {
	if in < 0 || out < 0 {
		return fmt.Errorf("%w: negative token count", ErrInvalid)
	}
	return nil
}

func (s *sqlStore) AppendMessage(ctx context.Context, owner, sessionID string, m NewMessage) (Message, error) {
	if m.Status == "" {
		m.Status = StatusComplete
	}
	if err := checkRole(m.Role); err != nil {
		return Message{}, fmt.Errorf("append message: %w", err)
	}
	if err := checkFinal(m.Status); err != nil {
		return Message{}, fmt.Errorf("append message: %w", err)
	}
	if err := checkTokens(m.InputTokens, m.OutputTokens); err != nil {
		return Message{}, fmt.Errorf("append message: %w", err)
	}
	if err := checkAttachments(m.Attachments); err != nil {
		return Message{}, fmt.Errorf("append message: %w", err)
	}
	msg, err := s.insertMessage(ctx, owner, sessionID, m)
	if err != nil {
		return Message{}, fmt.Errorf("append message: %w", err)
	}
	return msg, nil
}

func (s *sqlStore) BeginAssistantMessage(ctx context.Context, owner, sessionID string) (Message, error) {
	msg, err := s.insertMessage(ctx, owner, sessionID, NewMessage{Role: RoleAssistant, Status: StatusStreaming})
	if err != nil {
		return Message{}, fmt.Errorf("begin assistant message: %w", err)
	}
	return msg, nil
}

// insertMessage numbers and stores a message. Bumping the session's
// last_seq checks the owner, records the activity and allocates the number
// in one statement; its row lock orders concurrent appends to one session.
func (s *sqlStore) insertMessage(ctx context.Context, owner, sessionID string, m NewMessage) (Message, error) {
	now := s.now()
	msg := Message{
		ID: newID(), SessionID: sessionID, Role: m.Role, Content: m.Content,
		InputTokens: m.InputTokens, OutputTokens: m.OutputTokens, Status: m.Status,
		CreatedAt: now, UpdatedAt: now,
	}
	err := s.db.tx(ctx, true, func(q querier) error {
		var salt []byte
		err := q.queryRow(ctx, `UPDATE sessions SET last_seq = last_seq + 1, last_activity_at = $1
			WHERE id = $2 AND owner = $3
			RETURNING last_seq, (SELECT salt FROM user_keys k WHERE k.owner = sessions.owner)`,
			micros(now), sessionID, owner).Scan(&msg.Seq, &salt)
		if isNoRows(err) {
			return notFound("session", sessionID)
		}
		if err != nil {
			return err
		}
		h, err := s.aeadFor(owner, salt)
		if err != nil {
			return err
		}
		_, err = q.exec(ctx, `INSERT INTO messages
			(id, session_id, seq, role, content, input_tokens, output_tokens, status, created_at, updated_at, attachments)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)`,
			msg.ID, sessionID, msg.Seq, string(msg.Role), h.seal(msg.Content, sessionID, msg.ID, fieldContent),
			msg.InputTokens, msg.OutputTokens, string(msg.Status), micros(now), len(m.Attachments))
		if err != nil {
			return err
		}
		for i, na := range m.Attachments {
			a, err := insertAttachment(ctx, q, h, sessionID, msg.ID, "", i+1, na, micros(now))
			if err != nil {
				return err
			}
			msg.Attachments = append(msg.Attachments, a)
		}
		return nil
	})
	if err != nil {
		return Message{}, err
	}
	return msg, nil
}

func (s *sqlStore) ListMessages(ctx context.Context, owner, sessionID string) ([]Message, error) {
	out, err := s.listMessages(ctx, s.db.reader(), owner, sessionID, false)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return out, nil
}

// listMessages reads a session's messages, with the owner check and the
// key in the same query: the gateway calls this on every turn to assemble
// the history, and one round trip beats a transaction of three. Pictures
// cost a second query, made only when a message has some; their bytes are
// read when withData is set.
func (s *sqlStore) listMessages(ctx context.Context, q querier, owner, sessionID string, withData bool) ([]Message, error) {
	rs, err := q.query(ctx, `SELECT m.id, m.seq, m.role, m.content, m.input_tokens, m.output_tokens, m.status,
			m.created_at, m.updated_at, m.attachments, k.salt
		FROM messages m JOIN sessions s ON s.id = m.session_id JOIN user_keys k ON k.owner = s.owner
		WHERE m.session_id = $1 AND s.owner = $2
		ORDER BY m.seq`, sessionID, owner)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := []Message{}
	var (
		h        aeadHandle
		pictures bool
	)
	for rs.Next() {
		var (
			m                Message
			role, status     string
			content, salt    []byte
			created, updated int64
			count            int
		)
		if err := rs.Scan(&m.ID, &m.Seq, &role, &content, &m.InputTokens, &m.OutputTokens, &status, &created, &updated, &count, &salt); err != nil {
			return nil, err
		}
		if h, err = s.aeadFor(owner, salt); err != nil { // a map lookup after the first row
			return nil, err
		}
		if m.Content, err = h.open(content, sessionID, m.ID, fieldContent); err != nil {
			return nil, err
		}
		m.SessionID, m.Role, m.Status = sessionID, Role(role), Status(status)
		m.CreatedAt, m.UpdatedAt = fromMicros(created), fromMicros(updated)
		pictures = pictures || count > 0
		out = append(out, m)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	rs.Close()
	if pictures {
		byMessage, err := listAttachments(ctx, q, h, sessionID, withData)
		if err != nil {
			return nil, err
		}
		for i := range out {
			out[i].Attachments = byMessage[out[i].ID]
		}
	}
	if len(out) == 0 {
		// No rows: an empty session of the owner's, or not theirs at all.
		var one int
		err := q.queryRow(ctx, "SELECT 1 FROM sessions WHERE id = $1 AND owner = $2", sessionID, owner).Scan(&one)
		if isNoRows(err) {
			return nil, notFound("session", sessionID)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *sqlStore) UpdateAssistantMessage(ctx context.Context, owner, sessionID, messageID, partial string) error {
	err := s.updateMessage(ctx, owner, sessionID, messageID, partial, func(q querier, sealed []byte, now int64) (int64, error) {
		return q.exec(ctx, `UPDATE messages SET content = $1, updated_at = $2
			WHERE id = $3 AND session_id = $4 AND status = 'streaming'`,
			sealed, now, messageID, sessionID)
	})
	if err != nil {
		return fmt.Errorf("update assistant message: %w", err)
	}
	return nil
}

func (s *sqlStore) FinishAssistantMessage(ctx context.Context, owner, sessionID, messageID string, f Finish) error {
	if err := checkFinal(f.Status); err != nil {
		return fmt.Errorf("finish assistant message: %w", err)
	}
	if err := checkTokens(f.InputTokens, f.OutputTokens); err != nil {
		return fmt.Errorf("finish assistant message: %w", err)
	}
	err := s.updateMessage(ctx, owner, sessionID, messageID, f.Content, func(q querier, sealed []byte, now int64) (int64, error) {
		n, err := q.exec(ctx, `UPDATE messages
			SET content = $1, updated_at = $2, input_tokens = $3, output_tokens = $4, status = $5
			WHERE id = $6 AND session_id = $7 AND role = 'assistant' AND status IN ('streaming', 'incomplete')`,
			sealed, now, f.InputTokens, f.OutputTokens, string(f.Status), messageID, sessionID)
		if err != nil || n == 0 {
			return n, err
		}
		// The reply's end is activity: the idle clock restarts from here,
		// not from when the user pressed send.
		_, err = q.exec(ctx, "UPDATE sessions SET last_activity_at = $1 WHERE id = $2 AND last_activity_at < $1", now, sessionID)
		return n, err
	})
	if err != nil {
		return fmt.Errorf("finish assistant message: %w", err)
	}
	return nil
}

// sessionSalt is the key salt of the owner of sessionID, checking that
// owner owns it; a session that is not theirs is messageID not found.
func sessionSalt(ctx context.Context, q querier, owner, sessionID, messageID string) ([]byte, error) {
	var salt []byte
	err := q.queryRow(ctx, `SELECT k.salt FROM sessions s JOIN user_keys k ON k.owner = s.owner
		WHERE s.id = $1 AND s.owner = $2`, sessionID, owner).Scan(&salt)
	if isNoRows(err) {
		return nil, notFound("message", messageID)
	}
	return salt, err
}

// updateMessage checks the owner, seals text for the message and runs
// update; when update touches no row it tells a missing message
// (ErrNotFound) from one in the wrong state (ErrConflict).
func (s *sqlStore) updateMessage(ctx context.Context, owner, sessionID, messageID, text string,
	update func(q querier, sealed []byte, now int64) (int64, error)) error {
	now := micros(s.now())
	return s.db.tx(ctx, true, func(q querier) error {
		salt, err := sessionSalt(ctx, q, owner, sessionID, messageID)
		if err != nil {
			return err
		}
		h, err := s.aeadFor(owner, salt)
		if err != nil {
			return err
		}
		n, err := update(q, h.seal(text, sessionID, messageID, fieldContent), now)
		if err != nil || n > 0 {
			return err
		}
		var status string
		err = q.queryRow(ctx, "SELECT status FROM messages WHERE id = $1 AND session_id = $2", messageID, sessionID).Scan(&status)
		if isNoRows(err) {
			return notFound("message", messageID)
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("message %s is %s: %w", messageID, status, ErrConflict)
	})
}

func (s *sqlStore) RecoverIncomplete(ctx context.Context, staleBefore time.Time) (int64, error) {
	n, err := s.db.writer().exec(ctx, `UPDATE messages SET status = 'incomplete', updated_at = $1
		WHERE status = 'streaming' AND updated_at < $2`, micros(s.now()), micros(staleBefore))
	if err != nil {
		return 0, fmt.Errorf("recover incomplete messages: %w", err)
	}
	return n, nil
}
