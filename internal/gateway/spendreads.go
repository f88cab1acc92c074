package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// The ledger writer lingers to gather rows into big batches, so a row can
// wait in its queue for tens of milliseconds after the reply went out.
// Every read of spend — the usage pages, the quota's settled spend (the
// usage page's quota, the used-ratio gauge at scrape time, the keeper's
// own reads) — goes through these wrappers, which first commit what the
// writer has queued, so a person reloading their usage page right after a
// reply sees it. The commit is of the rows queued before the read, not a
// wait for the linger.

// committedQuotas is a store.Quotas whose read of settled spend commits
// the queued ledger first.
type committedQuotas struct {
	store.Quotas
	flush func(context.Context) error
}

func (s committedQuotas) QuotaUsage(ctx context.Context, user string, since, now time.Time) (store.QuotaUsage, error) {
	if err := s.flush(ctx); err != nil {
		return store.QuotaUsage{}, fmt.Errorf("quota usage: commit the queued ledger: %w", err)
	}
	return s.Quotas.QuotaUsage(ctx, user, since, now)
}

// committedStore is a store.Store whose reads of the ledger and of
// settled spend commit the queued ledger first.
type committedStore struct {
	store.Store
	flush func(context.Context) error
}

func (s committedStore) UsageByDay(ctx context.Context, user string, from, to time.Time, loc *time.Location) ([]store.DayUsage, error) {
	if err := s.flush(ctx); err != nil {
		return nil, fmt.Errorf("usage by day: commit the queued ledger: %w", err)
	}
	return s.Store.UsageByDay(ctx, user, from, to, loc)
}

func (s committedStore) UsageByUser(ctx context.Context, from, to time.Time) ([]store.UserUsage, error) {
	if err := s.flush(ctx); err != nil {
		return nil, fmt.Errorf("usage by user: commit the queued ledger: %w", err)
	}
	return s.Store.UsageByUser(ctx, from, to)
}

func (s committedStore) SpendSince(ctx context.Context, user string, since time.Time) (int64, error) {
	if err := s.flush(ctx); err != nil {
		return 0, fmt.Errorf("spend since: commit the queued ledger: %w", err)
	}
	return s.Store.SpendSince(ctx, user, since)
}

func (s committedStore) QuotaUsage(ctx context.Context, user string, since, now time.Time) (store.QuotaUsage, error) {
	return committedQuotas{s.Store, s.flush}.QuotaUsage(ctx, user, since, now)
}
