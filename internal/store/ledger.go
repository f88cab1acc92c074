package store

import (
	"context"
	"fmt"
	"sort"
	"time"
)

func (s *sqlStore) RecordSpend(ctx context.Context, e SpendEntry) error {
	return s.writeSpend(ctx, "record spend", e, `ON CONFLICT (request_id) DO NOTHING`)
}

// ReviseSpend keeps the row's user and time: only what the request has
// cost so far changes.
func (s *sqlStore) ReviseSpend(ctx context.Context, e SpendEntry) error {
	return s.writeSpend(ctx, "revise spend", e, `ON CONFLICT (request_id) DO UPDATE SET
		model = excluded.model, requested_model = excluded.requested_model, provider = excluded.provider,
		input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
		cache_read_tokens = excluded.cache_read_tokens, cache_write_tokens = excluded.cache_write_tokens,
		images = excluded.images, cost_picodollars = excluded.cost_picodollars, status = excluded.status
		WHERE spend.user_email = excluded.user_email`)
}

// writeSpend inserts one ledger row; onConflict says what a repeated
// request id does.
func (s *sqlStore) writeSpend(ctx context.Context, op string, e SpendEntry, onConflict string) error {
	if e.RequestID == "" || e.User == "" {
		return fmt.Errorf("%s: %w: request id and user are required", op, ErrInvalid)
	}
	if e.InputTokens < 0 || e.OutputTokens < 0 || e.CacheReadTokens < 0 || e.CacheWriteTokens < 0 || e.Images < 0 {
		return fmt.Errorf("%s: %w: negative count", op, ErrInvalid)
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	_, err := s.db.writer().exec(ctx, `INSERT INTO spend `+spendColumns+`
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) `+onConflict,
		e.RequestID, e.ClientRequestID, e.User, e.Model, e.RequestedModel, e.Provider,
		e.InputTokens, e.OutputTokens, e.CacheReadTokens, e.CacheWriteTokens, e.CostPicodollars, e.Status, micros(e.Time), e.Images)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func (s *sqlStore) UsageByDay(ctx context.Context, user string, from, to time.Time, loc *time.Location) ([]DayUsage, error) {
	if loc == nil {
		loc = time.UTC
	}
	// Rows are bucketed here rather than in SQL: SQLite has no time zones,
	// and a day in loc is not always 24 hours. One user's rows over a
	// dashboard's range are few, and they carry only numbers.
	rs, err := s.db.reader().query(ctx, `SELECT at, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_picodollars, images
		FROM spend WHERE user_email = $1 AND at >= $2 AND at < $3`, user, micros(from), micros(to))
	if err != nil {
		return nil, fmt.Errorf("usage by day: %w", err)
	}
	defer rs.Close()
	type key struct{ day, model string }
	sums := map[key]*DayUsage{}
	for rs.Next() {
		var (
			at, cost, images int64
			model            string
			t                Tokens
		)
		if err := rs.Scan(&at, &model, &t.Input, &t.Output, &t.CacheRead, &t.CacheWrite, &cost, &images); err != nil {
			return nil, fmt.Errorf("usage by day: %w", err)
		}
		k := key{fromMicros(at).In(loc).Format(time.DateOnly), model}
		d := sums[k]
		if d == nil {
			d = &DayUsage{Day: k.day, Model: model}
			sums[k] = d
		}
		d.Requests++
		d.Tokens.add(t)
		d.Images += images
		d.CostPicodollars += cost
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("usage by day: %w", err)
	}
	out := make([]DayUsage, 0, len(sums))
	for _, d := range sums {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Day != out[j].Day {
			return out[i].Day < out[j].Day
		}
		return out[i].Model < out[j].Model
	})
	return out, nil
}

func (t *Tokens) add(u Tokens) {
	t.Input += u.Input
	t.Output += u.Output
	t.CacheRead += u.CacheRead
	t.CacheWrite += u.CacheWrite
}

// sumBigint: SUM of a BIGINT is NUMERIC in PostgreSQL; cast back so both
// drivers scan an int64 (and an overflow errors rather than rounds).
func sumBigint(col string) string { return "CAST(COALESCE(SUM(" + col + "), 0) AS BIGINT)" }

func (s *sqlStore) UsageByUser(ctx context.Context, from, to time.Time) ([]UserUsage, error) {
	rs, err := s.db.reader().query(ctx, `SELECT user_email, COUNT(*), `+
		sumBigint("input_tokens")+", "+sumBigint("output_tokens")+", "+
		sumBigint("cache_read_tokens")+", "+sumBigint("cache_write_tokens")+", "+sumBigint("images")+", "+
		sumBigint("cost_picodollars")+`
		FROM spend WHERE at >= $1 AND at < $2
		GROUP BY user_email ORDER BY user_email`, micros(from), micros(to))
	if err != nil {
		return nil, fmt.Errorf("usage by user: %w", err)
	}
	defer rs.Close()
	out := []UserUsage{}
	for rs.Next() {
		var u UserUsage
		if err := rs.Scan(&u.User, &u.Requests, &u.Tokens.Input, &u.Tokens.Output,
			&u.Tokens.CacheRead, &u.Tokens.CacheWrite, &u.Images, &u.CostPicodollars); err != nil {
			return nil, fmt.Errorf("usage by user: %w", err)
		}
		out = append(out, u)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("usage by user: %w", err)
	}
	return out, nil
}

func (s *sqlStore) SpendSince(ctx context.Context, user string, since time.Time) (int64, error) {
	var total int64
	err := s.db.reader().queryRow(ctx, "SELECT "+sumBigint("cost_picodollars")+
		" FROM spend WHERE user_email = $1 AND at >= $2", user, micros(since)).Scan(&total)
	if err != nil {
		return 0, fmt.Errorf("spend since: %w", err)
	}
	return total, nil
}
