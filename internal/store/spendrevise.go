package store

import (
	"context"
	"fmt"
)

// SpendReviser is implemented by the stores Open returns. It lets the
// gateway write a streamed turn's ledger row as soon as the stream starts
// and revise it as output arrives, so a process killed mid-stream leaves
// the request billed for what was streamed instead of not billed at all.
type SpendReviser interface {
	// ReviseSpend stores e, replacing the tokens, cost, model, provider and
	// status of an earlier entry with the same RequestID (it inserts when
	// there is none). The row keeps its user and time. Only the gateway's
	// own request ids may be revised: a caller-chosen id could otherwise
	// overwrite someone's bill.
	ReviseSpend(ctx context.Context, e SpendEntry) error
}

var _ SpendReviser = (*sqlStore)(nil)

func (s *sqlStore) ReviseSpend(ctx context.Context, e SpendEntry) error {
	if e.RequestID == "" || e.User == "" {
		return fmt.Errorf("revise spend: %w: request id and user are required", ErrInvalid)
	}
	if e.InputTokens < 0 || e.OutputTokens < 0 || e.CacheReadTokens < 0 || e.CacheWriteTokens < 0 {
		return fmt.Errorf("revise spend: %w: negative token count", ErrInvalid)
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	_, err := s.db.writer().exec(ctx, `INSERT INTO spend
		(request_id, user_email, model, requested_model, provider,
		 input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_picodollars, status, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (request_id) DO UPDATE SET
			model = excluded.model, requested_model = excluded.requested_model, provider = excluded.provider,
			input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
			cache_read_tokens = excluded.cache_read_tokens, cache_write_tokens = excluded.cache_write_tokens,
			cost_picodollars = excluded.cost_picodollars, status = excluded.status
		WHERE spend.user_email = excluded.user_email`,
		e.RequestID, e.User, e.Model, e.RequestedModel, e.Provider,
		e.InputTokens, e.OutputTokens, e.CacheReadTokens, e.CacheWriteTokens, e.CostPicodollars, e.Status, micros(e.Time))
	if err != nil {
		return fmt.Errorf("revise spend: %w", err)
	}
	return nil
}
