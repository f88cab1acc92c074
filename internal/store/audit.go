package store

import (
	"context"
	"fmt"
)

func (s *sqlStore) RecordAudit(ctx context.Context, e AuditEvent) error {
	if err := validAudit(e); err != nil {
		return fmt.Errorf("record audit: %w", err)
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	_, err := s.db.writer().exec(ctx, auditInsert, micros(e.Time), e.Actor, e.Action, e.Subject, e.SessionID)
	if err != nil {
		return fmt.Errorf("record audit: %w", err)
	}
	return nil
}

func (s *sqlStore) AuditFor(ctx context.Context, subject string, limit int) ([]AuditEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rs, err := s.db.reader().query(ctx, `SELECT at, actor, action, subject, session_id FROM audit_log
		WHERE subject = $1 ORDER BY at DESC, id DESC LIMIT $2`, subject, limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer rs.Close()
	out := []AuditEvent{}
	for rs.Next() {
		var (
			e  AuditEvent
			at int64
		)
		if err := rs.Scan(&at, &e.Actor, &e.Action, &e.Subject, &e.SessionID); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		e.Time = fromMicros(at)
		out = append(out, e)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return out, nil
}
