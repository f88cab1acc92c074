package store

import (
	"context"
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
	return s.writeSpend(ctx, "revise spend", e, `ON CONFLICT (request_id) DO UPDATE SET
		model = excluded.model, requested_model = excluded.requested_model, provider = excluded.provider,
		input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
		cache_read_tokens = excluded.cache_read_tokens, cache_write_tokens = excluded.cache_write_tokens,
		cost_picodollars = excluded.cost_picodollars, status = excluded.status
		WHERE spend.user_email = excluded.user_email`)
}
