package store

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryQuotas is Quotas for one process without a database (a gateway
// with no master key, and tests), with the SQL stores' semantics: leases
// by id, and settled spend per user in quarter-hour buckets, so a user's
// admission costs the same however many requests they made today. The
// quota tests run it beside SQLite and PostgreSQL. It holds nothing across
// a restart, and one process's leases are invisible to another: right for
// one replica only. It keeps no ledger rows: CommitSpend only settles.
type MemoryQuotas struct {
	mu       sync.Mutex
	users    map[string]*memQuota
	notified map[string]bool
}

type memQuota struct {
	leases map[string]*memLease
	spent  map[time.Time]int64 // bucket start → picodollars
}

type memLease struct {
	bucket    time.Time
	amount    int64
	expiresAt time.Time
}

var _ Quotas = (*MemoryQuotas)(nil)

// NewMemoryQuotas returns an empty MemoryQuotas.
func NewMemoryQuotas() *MemoryQuotas {
	return &MemoryQuotas{users: map[string]*memQuota{}, notified: map[string]bool{}}
}

func (m *MemoryQuotas) user(email string) *memQuota {
	q := m.users[email]
	if q == nil {
		q = &memQuota{leases: map[string]*memLease{}, spent: map[time.Time]int64{}}
		m.users[email] = q
	}
	return q
}

// usage charges expired leases in full and sums a user's spend since and
// what their leases other than except hold, dropping buckets too old to
// fall in any window.
func (q *memQuota) usage(since, now time.Time, except string) (u QuotaUsage) {
	for id, l := range q.leases {
		if !l.expiresAt.After(now) {
			q.spent[l.bucket] += l.amount
			delete(q.leases, id)
		}
	}
	from := since.Truncate(quotaBucket)
	for b, amount := range q.spent {
		switch {
		case !b.Before(from):
			u.SpentPicodollars += amount
		case b.Before(now.Add(-spendRetention)):
			delete(q.spent, b)
		}
	}
	for id, l := range q.leases {
		if id != except {
			u.ReservedPicodollars += l.amount
		}
	}
	return u
}

// GrantLease implements Quotas.
func (m *MemoryQuotas) GrantLease(_ context.Context, l Lease, min, max int64, since, now time.Time, limit int64) (Grant, error) {
	if err := validLease("grant lease", l); err != nil {
		return Grant{}, err
	}
	if min < 0 || max < min {
		return Grant{}, fmt.Errorf("grant lease: %w: want 0 <= min <= max", ErrInvalid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.user(l.User)
	g := Grant{Usage: q.usage(since, now, l.ID)}
	own := q.leases[l.ID]
	switch {
	case l.Create && own != nil:
		return Grant{}, fmt.Errorf("grant lease: %w: lease %s exists", ErrConflict, l.ID)
	case !l.Create && own == nil:
		return Grant{}, fmt.Errorf("grant lease: %w", ErrLeaseGone)
	case own == nil:
		own = &memLease{bucket: l.At.Truncate(quotaBucket), expiresAt: l.ExpiresAt}
	}
	g.Amount = own.amount
	add := roomFor(g.Usage, own.amount, limit, min, max)
	own.expiresAt = l.ExpiresAt
	if add < 0 {
		return g, nil
	}
	own.amount += add
	q.leases[l.ID] = own
	g.OK, g.Added, g.Amount = true, add, own.amount
	return g, nil
}

// ReturnLease implements Quotas.
func (m *MemoryQuotas) ReturnLease(_ context.Context, l Lease) error {
	if err := validLease("return lease", l); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.user(l.User).leases, l.ID)
	return nil
}

// CommitSpend implements Quotas: it settles the writes with a lease, and
// keeps no rows.
func (m *MemoryQuotas) CommitSpend(_ context.Context, writes []SpendWrite) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range writes {
		e := w.Entry
		if e.RequestID == "" || e.User == "" || e.CostPicodollars < 0 {
			return fmt.Errorf("commit spend: %w: request id, user and a non-negative cost are required", ErrInvalid)
		}
		if w.Lease == "" {
			continue
		}
		q := m.user(e.User)
		l := q.leases[w.Lease]
		if l == nil {
			continue // gone: charged in full when it expired
		}
		l.amount = max(l.amount-e.CostPicodollars, 0)
		q.spent[l.bucket] += e.CostPicodollars
	}
	return nil
}

// QuotaUsage implements Quotas.
func (m *MemoryQuotas) QuotaUsage(_ context.Context, user string, since, now time.Time) (QuotaUsage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.user(user).usage(since, now, ""), nil
}

// MarkNotified implements Quotas.
func (m *MemoryQuotas) MarkNotified(_ context.Context, user, window, threshold string, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := user + "\x00" + window + "\x00" + threshold
	if m.notified[k] {
		return false, nil
	}
	m.notified[k] = true
	return true, nil
}
