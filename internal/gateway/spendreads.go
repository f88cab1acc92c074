package gateway

import (
	"context"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// The ledger writer lingers to gather rows into big batches, so a row can
// wait in its queue for tens of milliseconds after the reply went out (it
// is queued before the reply's last bytes are written: see completion's
// meter).
// Every read of spend — the usage pages, the quota's settled spend (the
// usage page's quota, the used-ratio gauge at scrape time, the keeper's
// own reads) — goes through these wrappers, which first commit what the
// writer has queued, so a person reloading their usage page right after a
// reply sees it. The commit is of the rows queued before the read, not a
// wait for the linger.

// flushWait bounds how long a read waits for the commit: a store failing
// its commits (the writer retries for about 30 s) is read as it is rather
// than hanging the page or the scrape.
const flushWait = 2 * time.Second

// commitQueued commits what the ledger writer has queued, or gives up
// after flushWait.
func commitQueued(ctx context.Context, flush func(context.Context) error) {
	ctx, cancel := context.WithTimeout(ctx, flushWait)
	defer cancel()
	_ = flush(ctx) // on time-out the read shows what is committed
}

// committedQuotas is a store.Quotas whose read of settled spend commits
// the queued ledger first.
type committedQuotas struct {
	store.Quotas
	flush func(context.Context) error
}

func (s committedQuotas) QuotaUsage(ctx context.Context, user string, since, now time.Time) (store.QuotaUsage, error) {
	commitQueued(ctx, s.flush)
	return s.Quotas.QuotaUsage(ctx, user, since, now)
}

// committedStore is a store.Store whose reads of the ledger and of
// settled spend commit the queued ledger first.
type committedStore struct {
	store.Store
	flush func(context.Context) error
}

func (s committedStore) UsageByDay(ctx context.Context, user string, from, to time.Time, loc *time.Location) ([]store.DayUsage, error) {
	commitQueued(ctx, s.flush)
	return s.Store.UsageByDay(ctx, user, from, to, loc)
}

func (s committedStore) UsageByUser(ctx context.Context, from, to time.Time) ([]store.UserUsage, error) {
	commitQueued(ctx, s.flush)
	return s.Store.UsageByUser(ctx, from, to)
}

func (s committedStore) SpendSince(ctx context.Context, user string, since time.Time) (int64, error) {
	commitQueued(ctx, s.flush)
	return s.Store.SpendSince(ctx, user, since)
}

func (s committedStore) QuotaUsage(ctx context.Context, user string, since, now time.Time) (store.QuotaUsage, error) {
	return committedQuotas{s.Store, s.flush}.QuotaUsage(ctx, user, since, now)
}
