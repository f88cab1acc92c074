package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Quotas keeps what per-user daily spending limits need to hold across
// replicas: settled spend per user, the leases replicas hold on slices of
// each user's remaining budget, and a record of the notifications sent.
//
// A replica admits requests in memory against its lease on a user and
// settles each request's real cost through CommitSpend, which moves the
// cost from the lease into settled spend in the transaction that writes
// the ledger row. The invariant every call keeps is
//
//	settled spend + Σ live leases ≤ the hard limit
//
// so replicas sharing the store never admit, together, more than the
// limit. Granting is one transaction that serialises per user: SQLite's
// write lock (BEGIN IMMEDIATE on the one writer connection), or on
// PostgreSQL an advisory transaction lock on hashtext(user).
//
// A lease that expires before its holder returned it is charged in full:
// its money may have been spent by requests whose ledger rows died with
// the holder (SIGKILL, a node lost), and the quota must never count less
// than the provider bills. Its holder renews it while in use, so only a
// dead or partitioned replica's lease expires.
//
// Settled spend is kept apart from the ledger on purpose: enforcement must
// not depend on which ledger the gateway writes or on request ids.
type Quotas interface {
	// GrantLease adds to lease l.ID the largest amount in [min, max] that
	// keeps the user's settled spend at or after since, their other leases
	// live at now and l's amount within limit, and sets its expiry to
	// l.ExpiresAt. With l.Create the lease is new (its amount starts at
	// zero); otherwise it must be live, and a lease that expired or was
	// returned is ErrLeaseGone. Expired leases of the user are charged in
	// full first. When not even min fits, the amount is unchanged (the
	// expiry still moves) and Granted.OK is false.
	GrantLease(ctx context.Context, l Lease, min, max int64, since, now time.Time, limit int64) (Grant, error)
	// ReturnLease ends lease l.ID, freeing what it holds. Its holder calls
	// it once every cost settled against it is committed.
	ReturnLease(ctx context.Context, l Lease) error
	// CommitSpend writes the ledger rows and settles the costs of those
	// with a Lease, in one transaction (see SpendWrite).
	CommitSpend(ctx context.Context, writes []SpendWrite) error
	// QuotaUsage is the user's settled spend at or after since and what
	// their leases live at now hold.
	QuotaUsage(ctx context.Context, user string, since, now time.Time) (QuotaUsage, error)
	// MarkNotified records that the notification for (user, window,
	// threshold) is being sent. It reports true to exactly one caller, the
	// one that should send it, however many replicas ask.
	MarkNotified(ctx context.Context, user, window, threshold string, at time.Time) (bool, error)
}

// ErrLeaseGone: the lease expired (and was charged in full) or was
// returned; its holder must take a new one.
var ErrLeaseGone = errors.New("quota lease expired or returned")

// Lease is a replica's hold on a slice of one user's daily budget.
type Lease struct {
	// ID is unique per lease, chosen by the holder and never reused.
	ID     string
	User   string
	Holder string
	// At is when the lease was first granted: the day it counts against,
	// and the bucket an expired lease is charged to.
	At        time.Time
	ExpiresAt time.Time
	// Create asks for a new lease rather than renewing a live one.
	Create bool
}

// Grant is how GrantLease ended.
type Grant struct {
	// Usage is the user's settled spend and what their other leases hold.
	Usage QuotaUsage
	// Added is what the lease gained; Amount what it holds now.
	Added, Amount int64
	// OK is false when not even min fitted.
	OK bool
}

// SpendWrite is one ledger row on its way to the store. When Lease is
// set the row is a request's final one and its cost is settled: moved
// from that lease into the user's settled spend (in the lease's bucket: a
// lease belongs to one quota day), in the same transaction as the row. A lease that is gone
// was charged in full, so its costs are not added again. Rows with the
// same RequestID replace each other, the last one written winning (a
// stream's provisional rows, then its final one); the row keeps its
// first time and user.
type SpendWrite struct {
	Entry SpendEntry
	Lease string
}

// QuotaUsage is one user's committed spend.
type QuotaUsage struct {
	SpentPicodollars int64
	// ReservedPicodollars is what live leases (and, from gateways older
	// than leases, live per-request charges) hold.
	ReservedPicodollars int64
}

// QuotaFits reports whether amount fits under limit beside u, of which
// own is the same lease's earlier amount. It cannot overflow: amount is
// checked against limit first, and what u holds was admitted under it.
func QuotaFits(u QuotaUsage, own, amount, limit int64) bool {
	return amount <= limit && u.SpentPicodollars+u.ReservedPicodollars-own <= limit-amount
}

// quotaUsageQuery reads settled spend and what leases and charges hold in
// one statement, hence one snapshot: at READ COMMITTED two statements
// could straddle a CommitSpend and count a cost twice or not at all.
// $4 is a lease whose own amount is read apart: whether it is live, and
// what it holds ("" for none).
//
// A lease expired but not yet charged (that happens at the user's next
// grant) counts as spent already.
var quotaUsageQuery = `SELECT
	(SELECT ` + sumBigint("amount_picodollars") + ` FROM quota_spend WHERE user_email = $1 AND bucket >= $2) +
	(SELECT ` + sumBigint("amount_picodollars") + ` FROM quota_leases WHERE user_email = $1 AND expires_at <= $3 AND bucket >= $2),
	(SELECT ` + sumBigint("amount_picodollars") + ` FROM quota_leases WHERE user_email = $1 AND expires_at > $3 AND id <> $4) +
	(SELECT ` + sumBigint("amount_picodollars") + ` FROM quota_charges WHERE user_email = $1 AND expires_at > $3),
	(SELECT COUNT(*) FROM quota_leases WHERE id = $4 AND user_email = $1 AND expires_at > $3),
	(SELECT ` + sumBigint("amount_picodollars") + ` FROM quota_leases WHERE id = $4 AND user_email = $1 AND expires_at > $3)`

// quotaBucket is the width of the settled-spend buckets. A window's start
// is floored to it, so a zone whose midnight were not on a quarter hour
// would count a little of the previous evening: too much, never too little.
const quotaBucket = 15 * time.Minute

func bucketOf(t time.Time) int64 { return micros(t.Truncate(quotaBucket)) }

// spendRetention is how long settled buckets are kept: a window is at most
// 25 hours in any time zone, so two days covers the current one.
const spendRetention = 48 * time.Hour

func validLease(op string, l Lease) error {
	if l.ID == "" || l.User == "" {
		return fmt.Errorf("%s: %w: lease id and user are required", op, ErrInvalid)
	}
	return nil
}

func (s *sqlStore) GrantLease(ctx context.Context, l Lease, min, max int64, since, now time.Time, limit int64) (Grant, error) {
	if err := validLease("grant lease", l); err != nil {
		return Grant{}, err
	}
	if min < 0 || max < min {
		return Grant{}, fmt.Errorf("grant lease: %w: want 0 <= min <= max", ErrInvalid)
	}
	var g Grant
	err := s.db.tx(ctx, true, func(q querier) error {
		if s.dialect == "postgres" {
			if _, err := q.exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", l.User); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if err := s.chargeExpired(ctx, q, l.User, now); err != nil {
			return err
		}
		if _, err := q.exec(ctx, "DELETE FROM quota_charges WHERE user_email = $1 AND expires_at <= $2", l.User, micros(now)); err != nil {
			return err
		}
		if _, err := q.exec(ctx, "DELETE FROM quota_spend WHERE user_email = $1 AND bucket < $2", l.User, bucketOf(now.Add(-spendRetention))); err != nil {
			return err
		}
		var live, own int64
		if err := q.queryRow(ctx, quotaUsageQuery, l.User, bucketOf(since), micros(now), l.ID).
			Scan(&g.Usage.SpentPicodollars, &g.Usage.ReservedPicodollars, &live, &own); err != nil {
			return err
		}
		switch {
		case l.Create && live > 0:
			return fmt.Errorf("%w: lease %s exists", ErrConflict, l.ID)
		case !l.Create && live == 0:
			return ErrLeaseGone
		}
		g.Amount = own
		add := roomFor(g.Usage, own, limit, min, max)
		if add < 0 {
			if !l.Create {
				_, err := q.exec(ctx, "UPDATE quota_leases SET expires_at = $1 WHERE id = $2 AND user_email = $3", micros(l.ExpiresAt), l.ID, l.User)
				return err
			}
			return nil
		}
		g.OK, g.Added, g.Amount = true, add, own+add
		if l.Create {
			_, err := q.exec(ctx, `INSERT INTO quota_leases (id, user_email, holder, bucket, amount_picodollars, expires_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, l.ID, l.User, l.Holder, bucketOf(l.At), add, micros(l.ExpiresAt))
			return err
		}
		// Relative, not absolute: a CommitSpend of this lease's costs may
		// commit between the read above and this write.
		_, err := q.exec(ctx, `UPDATE quota_leases SET amount_picodollars = amount_picodollars + $1, expires_at = $2
			WHERE id = $3 AND user_email = $4`, add, micros(l.ExpiresAt), l.ID, l.User)
		return err
	})
	if errors.Is(err, ErrLeaseGone) {
		return Grant{}, fmt.Errorf("grant lease: %w", ErrLeaseGone)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("grant lease: %w", err)
	}
	return g, nil
}

// roomFor is the largest amount in [min, max] that a lease holding own
// may add beside u under limit, or -1 when min does not fit.
func roomFor(u QuotaUsage, own, limit, min, max int64) int64 {
	if limit == math.MaxInt64 {
		return max // no hard limit: leases only track spend
	}
	room := limit - u.SpentPicodollars - u.ReservedPicodollars - own
	if room < min {
		return -1
	}
	return minInt(room, max)
}

func minInt(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// chargeExpired moves what the user's expired leases hold into their
// settled spend and deletes them. On PostgreSQL the leases are locked
// before the spend rows, the order CommitSpend takes them in.
func (s *sqlStore) chargeExpired(ctx context.Context, q querier, user string, now time.Time) error {
	if s.dialect == "postgres" {
		_, err := q.exec(ctx, `WITH d AS (
				DELETE FROM quota_leases WHERE user_email = $1 AND expires_at <= $2 RETURNING bucket, amount_picodollars)
			INSERT INTO quota_spend (user_email, bucket, amount_picodollars)
			SELECT $1, bucket, CAST(SUM(amount_picodollars) AS BIGINT) FROM d GROUP BY bucket
			ON CONFLICT (user_email, bucket) DO UPDATE SET amount_picodollars = quota_spend.amount_picodollars + excluded.amount_picodollars`,
			user, micros(now))
		return err
	}
	if _, err := q.exec(ctx, `INSERT INTO quota_spend (user_email, bucket, amount_picodollars)
		SELECT user_email, bucket, SUM(amount_picodollars) FROM quota_leases WHERE user_email = $1 AND expires_at <= $2 GROUP BY bucket
		ON CONFLICT (user_email, bucket) DO UPDATE SET amount_picodollars = quota_spend.amount_picodollars + excluded.amount_picodollars`,
		user, micros(now)); err != nil {
		return err
	}
	_, err := q.exec(ctx, "DELETE FROM quota_leases WHERE user_email = $1 AND expires_at <= $2", user, micros(now))
	return err
}

func (s *sqlStore) ReturnLease(ctx context.Context, l Lease) error {
	if err := validLease("return lease", l); err != nil {
		return err
	}
	if _, err := s.db.writer().exec(ctx, "DELETE FROM quota_leases WHERE id = $1 AND user_email = $2", l.ID, l.User); err != nil {
		return fmt.Errorf("return lease: %w", err)
	}
	return nil
}

func (s *sqlStore) QuotaUsage(ctx context.Context, user string, since, now time.Time) (QuotaUsage, error) {
	var u QuotaUsage
	var live, own int64
	if err := s.db.reader().queryRow(ctx, quotaUsageQuery, user, bucketOf(since), micros(now), "").
		Scan(&u.SpentPicodollars, &u.ReservedPicodollars, &live, &own); err != nil {
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
