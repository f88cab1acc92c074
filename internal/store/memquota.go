package store

import (
	"context"
	"sync"
	"time"
)

// MemoryQuotas is Quotas for one process without a database (a gateway
// with no master key, and tests), with the SQL stores' semantics: live
// reservations by id, and settled spend per user in quarter-hour buckets,
// so a user's admission costs the same however many requests they made
// today. The quota tests run it beside SQLite and PostgreSQL. It holds
// nothing across a restart, and one process's charges are invisible to
// another: right for one replica only.
type MemoryQuotas struct {
	mu       sync.Mutex
	users    map[string]*memQuota
	notified map[string]bool
}

type memQuota struct {
	reserved map[string]Reservation
	spent    map[time.Time]int64 // bucket start → picodollars
}

var _ Quotas = (*MemoryQuotas)(nil)

// NewMemoryQuotas returns an empty MemoryQuotas.
func NewMemoryQuotas() *MemoryQuotas {
	return &MemoryQuotas{users: map[string]*memQuota{}, notified: map[string]bool{}}
}

func (m *MemoryQuotas) user(email string) *memQuota {
	q := m.users[email]
	if q == nil {
		q = &memQuota{reserved: map[string]Reservation{}, spent: map[time.Time]int64{}}
		m.users[email] = q
	}
	return q
}

// usage sums a user's spend and live reservations, dropping expired
// reservations and buckets too old to fall in any window.
func (q *memQuota) usage(since, now time.Time) (u QuotaUsage) {
	from := since.Truncate(quotaBucket)
	for b, amount := range q.spent {
		switch {
		case !b.Before(from):
			u.SpentPicodollars += amount
		case b.Before(now.Add(-spendRetention)):
			delete(q.spent, b)
		}
	}
	for id, r := range q.reserved {
		if r.ExpiresAt.After(now) {
			u.ReservedPicodollars += r.AmountPicodollars
		} else {
			delete(q.reserved, id)
		}
	}
	return u
}

// Reserve implements Quotas.
func (m *MemoryQuotas) Reserve(_ context.Context, r Reservation, since, now time.Time, limit int64) (QuotaUsage, bool, error) {
	if err := validReservation("reserve", r); err != nil {
		return QuotaUsage{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.user(r.User)
	u := q.usage(since, now)
	own := q.reserved[r.ID].AmountPicodollars
	if !QuotaFits(u, own, r.AmountPicodollars, limit) {
		return u, false, nil
	}
	q.reserved[r.ID] = r
	return u, true, nil
}

// Settle implements Quotas.
func (m *MemoryQuotas) Settle(_ context.Context, r Reservation) error {
	if err := validReservation("settle", r); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.user(r.User)
	delete(q.reserved, r.ID)
	q.spent[r.At.Truncate(quotaBucket)] += r.AmountPicodollars
	return nil
}

// QuotaUsage implements Quotas.
func (m *MemoryQuotas) QuotaUsage(_ context.Context, user string, since, now time.Time) (QuotaUsage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.user(user).usage(since, now), nil
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
