package store

import (
	"context"
	"fmt"
	"time"
)

// Quotas keeps what per-user daily spending limits need to hold across
// replicas: a charge per admitted request, reserved at its worst case while
// it runs and settled to its real cost when it ends, and a record of the
// notifications sent.
//
// Admission is one transaction that serialises per user: SQLite's write
// lock (BEGIN IMMEDIATE on the one writer connection), or on PostgreSQL an
// advisory transaction lock on hashtext(user). Two replicas admitting the
// same user at once take turns, and the second sees the first's charge.
//
// Settled spend is kept apart from the ledger on purpose: enforcement must
// not depend on which ledger the gateway writes, when it writes it, or on
// request ids a caller may choose.
type Quotas interface {
	// Reserve sets reservation r.ID to r's amount when the user's settled
	// spend at or after since, plus their reservations live at now, minus
	// r.ID's own earlier amount, plus r's amount stays within limit. A refused Reserve changes nothing. It returns the usage
	// it compared (with r.ID's own earlier amount) and whether r fits.
	// Expired reservations of the user are deleted on the way.
	Reserve(ctx context.Context, r Reservation, since, now time.Time, limit int64) (QuotaUsage, bool, error)
	// Settle ends reservation r.ID and records the real cost
	// r.AmountPicodollars as spent at r.At (also when the reservation has
	// expired meanwhile). Call it once per reservation.
	Settle(ctx context.Context, r Reservation) error
	// QuotaUsage is the user's settled spend at or after since and their
	// reservations live at now.
	QuotaUsage(ctx context.Context, user string, since, now time.Time) (QuotaUsage, error)
	// MarkNotified records that the notification for (user, window,
	// threshold) is being sent. It reports true to exactly one caller, the
	// one that should send it, however many replicas ask.
	MarkNotified(ctx context.Context, user, window, threshold string, at time.Time) (bool, error)
}

// Reservation is one request's charge against its user's quota.
type Reservation struct {
	// ID is unique per request and chosen by the gateway.
	ID                string
	User              string
	AmountPicodollars int64
	// At is when the request was admitted: the day it counts against.
	At time.Time
	// ExpiresAt frees an unsettled amount whose request's process died.
	ExpiresAt time.Time
}

// QuotaUsage is one user's committed spend.
type QuotaUsage struct {
	SpentPicodollars    int64
	ReservedPicodollars int64
}

// QuotaFits reports whether amount fits under limit beside u, of which
// own is the same reservation's earlier amount. It cannot overflow: amount
// is checked against limit first, and what u holds was admitted under it.
func QuotaFits(u QuotaUsage, own, amount, limit int64) bool {
	return amount <= limit && u.SpentPicodollars+u.ReservedPicodollars-own <= limit-amount
}

// quotaUsageQuery reads settled spend and live reservations in one
// statement, hence one snapshot: at READ COMMITTED two statements could
// straddle a Settle and count its amount twice or not at all.
var quotaUsageQuery = `SELECT
	(SELECT ` + sumBigint("amount_picodollars") + ` FROM quota_spend WHERE user_email = $1 AND bucket >= $2),
	(SELECT ` + sumBigint("amount_picodollars") + ` FROM quota_charges WHERE user_email = $1 AND expires_at > $3)`

// quotaBucket is the width of the settled-spend buckets. A window's start
// is floored to it, so a zone whose midnight were not on a quarter hour
// would count a little of the previous evening: too much, never too little.
const quotaBucket = 15 * time.Minute

func bucketOf(t time.Time) int64 { return micros(t.Truncate(quotaBucket)) }

// spendRetention is how long settled buckets are kept: a window is at most
// 25 hours in any time zone, so two days covers the current one.
const spendRetention = 48 * time.Hour

func validReservation(op string, r Reservation) error {
	if r.ID == "" || r.User == "" || r.AmountPicodollars < 0 {
		return fmt.Errorf("%s: %w: id, user and a non-negative amount are required", op, ErrInvalid)
	}
	return nil
}

func (s *sqlStore) Reserve(ctx context.Context, r Reservation, since, now time.Time, limit int64) (QuotaUsage, bool, error) {
	if err := validReservation("reserve", r); err != nil {
		return QuotaUsage{}, false, err
	}
	var (
		u  QuotaUsage
		ok bool
	)
	err := s.db.tx(ctx, true, func(q querier) error {
		if s.dialect == "postgres" {
			if _, err := q.exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", r.User); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if _, err := q.exec(ctx, "DELETE FROM quota_charges WHERE user_email = $1 AND expires_at <= $2", r.User, micros(now)); err != nil {
			return err
		}
		if _, err := q.exec(ctx, "DELETE FROM quota_spend WHERE user_email = $1 AND bucket < $2", r.User, bucketOf(now.Add(-spendRetention))); err != nil {
			return err
		}
		if err := q.queryRow(ctx, quotaUsageQuery, r.User, bucketOf(since), micros(now)).Scan(&u.SpentPicodollars, &u.ReservedPicodollars); err != nil {
			return err
		}
		var own int64
		err := q.queryRow(ctx, "SELECT amount_picodollars FROM quota_charges WHERE id = $1 AND user_email = $2", r.ID, r.User).Scan(&own)
		if err != nil && !isNoRows(err) {
			return err
		}
		if !QuotaFits(u, own, r.AmountPicodollars, limit) {
			return nil
		}
		ok = true
		_, err = q.exec(ctx, `INSERT INTO quota_charges (id, user_email, amount_picodollars, at, expires_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (id) DO UPDATE SET amount_picodollars = excluded.amount_picodollars, expires_at = excluded.expires_at
			WHERE quota_charges.user_email = excluded.user_email`,
			r.ID, r.User, r.AmountPicodollars, micros(r.At), micros(r.ExpiresAt))
		return err
	})
	if err != nil {
		return QuotaUsage{}, false, fmt.Errorf("reserve: %w", err)
	}
	return u, ok, nil
}

// Settle deletes the reservation and adds the real cost to its bucket in
// one transaction, which a concurrent usage read sees whole or not at all.
// It is not idempotent: the gateway settles each charge once.
func (s *sqlStore) Settle(ctx context.Context, r Reservation) error {
	if err := validReservation("settle", r); err != nil {
		return err
	}
	err := s.db.tx(ctx, true, func(q querier) error {
		if _, err := q.exec(ctx, "DELETE FROM quota_charges WHERE id = $1 AND user_email = $2", r.ID, r.User); err != nil {
			return err
		}
		if r.AmountPicodollars == 0 {
			return nil
		}
		_, err := q.exec(ctx, `INSERT INTO quota_spend (user_email, bucket, amount_picodollars) VALUES ($1, $2, $3)
			ON CONFLICT (user_email, bucket) DO UPDATE SET amount_picodollars = quota_spend.amount_picodollars + excluded.amount_picodollars`,
			r.User, bucketOf(r.At), r.AmountPicodollars)
		return err
	})
	if err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	return nil
}

func (s *sqlStore) QuotaUsage(ctx context.Context, user string, since, now time.Time) (QuotaUsage, error) {
	var u QuotaUsage
	if err := s.db.reader().queryRow(ctx, quotaUsageQuery, user, bucketOf(since), micros(now)).Scan(&u.SpentPicodollars, &u.ReservedPicodollars); err != nil {
		return QuotaUsage{}, fmt.Errorf("quota usage: %w", err)
	}
	return u, nil
}

func (s *sqlStore) MarkNotified(ctx context.Context, user, window, threshold string, at time.Time) (bool, error) {
	n, err := s.db.writer().exec(ctx, `INSERT INTO quota_notifications (user_email, window_day, threshold, at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (user_email, window_day, threshold) DO NOTHING`,
		user, window, threshold, micros(at))
	if err != nil {
		return false, fmt.Errorf("mark notified: %w", err)
	}
	return n == 1, nil
}
