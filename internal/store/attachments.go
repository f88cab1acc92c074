package store

import (
	"context"
	"fmt"
	"strings"
)

// maxMediaType and maxAttachmentName bound what an attachment's metadata
// may hold; the gateway checks its own, tighter limits first.
const (
	maxMediaType      = 127
	maxAttachmentName = 1024
)

func checkAttachment(a NewAttachment) error {
	switch {
	case a.MediaType == "" || len(a.MediaType) > maxMediaType || strings.ContainsAny(a.MediaType, " \t\r\n;"):
		return fmt.Errorf("%w: attachment media type %q", ErrInvalid, a.MediaType)
	case len(a.Name) > maxAttachmentName:
		return fmt.Errorf("%w: attachment name longer than %d bytes", ErrInvalid, maxAttachmentName)
	case len(a.Data) == 0:
		return fmt.Errorf("%w: empty attachment", ErrInvalid)
	case a.Width < 0 || a.Height < 0:
		return fmt.Errorf("%w: negative attachment size", ErrInvalid)
	}
	return nil
}

func checkAttachments(as []NewAttachment) error {
	for _, a := range as {
		if err := checkAttachment(a); err != nil {
			return err
		}
	}
	return nil
}

// insertAttachment seals and stores one picture of messageID as number
// ord. id is kept when given (an import), else made.
func insertAttachment(ctx context.Context, q querier, h aeadHandle, sessionID, messageID, id string, ord int, a NewAttachment, now int64) (Attachment, error) {
	if id == "" {
		id = newID()
	}
	out := Attachment{ID: id, MediaType: a.MediaType, Name: a.Name, Bytes: int64(len(a.Data)), Width: a.Width, Height: a.Height}
	_, err := q.exec(ctx, `INSERT INTO attachments
		(id, message_id, session_id, ord, media_type, name, data, bytes, width, height, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		id, messageID, sessionID, ord, a.MediaType,
		h.seal(a.Name, sessionID, messageID, fieldAttachmentName(id)),
		h.sealBytes(a.Data, sessionID, messageID, fieldAttachmentData(id)),
		out.Bytes, a.Width, a.Height, now)
	return out, err
}

// listAttachments reads the pictures of a session's messages, by message,
// with their bytes when withData is set.
func listAttachments(ctx context.Context, q querier, h aeadHandle, sessionID string, withData bool) (map[string][]Attachment, error) {
	data := "NULL"
	if withData {
		data = "data"
	}
	rs, err := q.query(ctx, `SELECT id, message_id, media_type, name, bytes, width, height, `+data+`
		FROM attachments WHERE session_id = $1 ORDER BY message_id, ord`, sessionID)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string][]Attachment{}
	for rs.Next() {
		var (
			a                Attachment
			messageID        string
			name, sealedData []byte
		)
		if err := rs.Scan(&a.ID, &messageID, &a.MediaType, &name, &a.Bytes, &a.Width, &a.Height, &sealedData); err != nil {
			return nil, err
		}
		if a.Name, err = h.open(name, sessionID, messageID, fieldAttachmentName(a.ID)); err != nil {
			return nil, err
		}
		if withData {
			if a.Data, err = h.openBytes(sealedData, sessionID, messageID, fieldAttachmentData(a.ID)); err != nil {
				return nil, err
			}
		}
		out[messageID] = append(out[messageID], a)
	}
	return out, rs.Err()
}

func (s *sqlStore) ReadAttachment(ctx context.Context, owner, sessionID, attachmentID string) (Attachment, error) {
	var (
		a                      Attachment
		messageID              string
		name, sealedData, salt []byte
	)
	err := s.db.reader().queryRow(ctx, `SELECT a.message_id, a.media_type, a.name, a.data, a.bytes, a.width, a.height, k.salt
		FROM attachments a JOIN sessions s ON s.id = a.session_id JOIN user_keys k ON k.owner = s.owner
		WHERE a.id = $1 AND a.session_id = $2 AND s.owner = $3`, attachmentID, sessionID, owner).
		Scan(&messageID, &a.MediaType, &name, &sealedData, &a.Bytes, &a.Width, &a.Height, &salt)
	if isNoRows(err) {
		return Attachment{}, fmt.Errorf("read attachment: %w", notFound("attachment", attachmentID))
	}
	if err != nil {
		return Attachment{}, fmt.Errorf("read attachment: %w", err)
	}
	h, err := s.aeadFor(owner, salt)
	if err != nil {
		return Attachment{}, fmt.Errorf("read attachment: %w", err)
	}
	a.ID = attachmentID
	if a.Name, err = h.open(name, sessionID, messageID, fieldAttachmentName(a.ID)); err != nil {
		return Attachment{}, fmt.Errorf("read attachment: %w", err)
	}
	if a.Data, err = h.openBytes(sealedData, sessionID, messageID, fieldAttachmentData(a.ID)); err != nil {
		return Attachment{}, fmt.Errorf("read attachment: %w", err)
	}
	return a, nil
}

func (s *sqlStore) AddAttachment(ctx context.Context, owner, sessionID, messageID string, na NewAttachment) (Attachment, error) {
	if err := checkAttachment(na); err != nil {
		return Attachment{}, fmt.Errorf("add attachment: %w", err)
	}
	var out Attachment
	now := micros(s.now())
	err := s.db.tx(ctx, true, func(q querier) error {
		salt, err := sessionSalt(ctx, q, owner, sessionID, messageID)
		if err != nil {
			return err
		}
		// Numbering the picture claims the row: a finished reply takes no more.
		var ord int
		err = q.queryRow(ctx, `UPDATE messages SET attachments = attachments + 1, updated_at = $1
			WHERE id = $2 AND session_id = $3 AND role = 'assistant' AND status = 'streaming'
			RETURNING attachments`, now, messageID, sessionID).Scan(&ord)
		if isNoRows(err) {
			var status string
			err = q.queryRow(ctx, "SELECT status FROM messages WHERE id = $1 AND session_id = $2", messageID, sessionID).Scan(&status)
			if isNoRows(err) {
				return notFound("message", messageID)
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("message %s is not a reply being written: %w", messageID, ErrConflict)
		}
		if err != nil {
			return err
		}
		h, err := s.aeadFor(owner, salt)
		if err != nil {
			return err
		}
		out, err = insertAttachment(ctx, q, h, sessionID, messageID, "", ord, na, now)
		return err
	})
	if err != nil {
		return Attachment{}, fmt.Errorf("add attachment: %w", err)
	}
	return out, nil
}

func (s *sqlStore) ReplaceUserMessage(ctx context.Context, owner, sessionID, messageID, content string) (Message, error) {
	now := s.now()
	var m Message
	err := s.db.tx(ctx, true, func(q querier) error {
		// Touching the session first takes its row lock, which orders this
		// with concurrent appends, as in insertMessage.
		var salt []byte
		err := q.queryRow(ctx, `UPDATE sessions SET last_activity_at = $1 WHERE id = $2 AND owner = $3
			RETURNING (SELECT salt FROM user_keys k WHERE k.owner = sessions.owner)`,
			micros(now), sessionID, owner).Scan(&salt)
		if isNoRows(err) {
			return notFound("session", sessionID)
		}
		if err != nil {
			return err
		}
		var (
			role    string
			created int64
			count   int
		)
		err = q.queryRow(ctx, `SELECT seq, role, input_tokens, output_tokens, created_at, attachments
			FROM messages WHERE id = $1 AND session_id = $2`, messageID, sessionID).
			Scan(&m.Seq, &role, &m.InputTokens, &m.OutputTokens, &created, &count)
		if isNoRows(err) {
			return notFound("message", messageID)
		}
		if err != nil {
			return err
		}
		if Role(role) != RoleUser {
			return fmt.Errorf("%w: message %s is not a user message", ErrInvalid, messageID)
		}
		h, err := s.aeadFor(owner, salt)
		if err != nil {
			return err
		}
		if _, err := q.exec(ctx, "DELETE FROM messages WHERE session_id = $1 AND seq > $2", sessionID, m.Seq); err != nil {
			return err
		}
		if _, err := q.exec(ctx, "UPDATE messages SET content = $1, status = 'complete', updated_at = $2 WHERE id = $3",
			h.seal(content, sessionID, messageID, fieldContent), micros(now), messageID); err != nil {
			return err
		}
		if _, err := q.exec(ctx, "UPDATE sessions SET last_seq = $1 WHERE id = $2", m.Seq, sessionID); err != nil {
			return err
		}
		if count > 0 {
			as, err := listAttachments(ctx, q, h, sessionID, false)
			if err != nil {
				return err
			}
			m.Attachments = as[messageID]
		}
		m.ID, m.SessionID, m.Role, m.Content, m.Status = messageID, sessionID, RoleUser, content, StatusComplete
		m.CreatedAt, m.UpdatedAt = fromMicros(created), now
		return nil
	})
	if err != nil {
		return Message{}, fmt.Errorf("replace user message: %w", err)
	}
	return m, nil
}
