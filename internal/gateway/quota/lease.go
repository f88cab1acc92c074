package quota

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// Leased quotas. A replica holds, per active user, a durable lease on a
// slice of the user's remaining daily budget (a row in the store, granted
// in one per-user locked transaction) and admits that user's requests
// against it in memory: admission reserves the request's worst case in
// the lease, settlement turns it into the real cost, and the ledger writer
// moves that cost from the lease into settled spend in the transaction
// that writes the ledger row. The store keeps
//
//	settled spend + Σ live leases ≤ the hard limit,
//
// and a replica never admits past its lease, so replicas together never
// overrun the limit (Doorman's property: the sum of outstanding leases
// never exceeds capacity).
//
// The lease asks for room for the worst cases the user's requests had in
// flight at once lately plus the real costs they settled over the last
// leaseHorizon, so under load it is renewed (grown) in the background
// before it runs dry, and the request path touches the store only when it
// is empty. Near the limit the store grants less than asked,
// down to the one request's worst case: the lease is then "tight" and is
// returned as soon as nothing is admitted against it, which is the
// per-request reservation of a quota with little left. A lease unused for
// idleReturn is returned, and so is every lease on shutdown, once the
// ledger writer has committed its costs.
//
// A lease whose holder never returned it (SIGKILL, a lost node) expires
// after at most leaseTTL and is then charged in full: some of its money
// may have been spent by requests whose ledger rows died with the
// process, and the quota must never count less than the provider bills.
// What a person loses to a killed replica is what the lease held beyond
// its real spend: about their requests' worst cases in flight plus
// leaseHorizon's worth of their real spend, or one request's worst case
// near the limit.
const (
	leaseTTL     = 30 * time.Second
	renewBefore  = leaseTTL / 2
	leaseHorizon = 2 * time.Second
	idleReturn   = 2 * time.Second
	leaseTick    = 200 * time.Millisecond
	// grantAttempts bounds how often one admission asks the store.
	grantAttempts = 3
)

// account is one user's standing on this replica.
type account struct {
	k    *Keeper
	user string
	// grant serialises this user's store calls; mu guards the rest and is
	// never held across one.
	grant sync.Mutex
	mu    sync.Mutex

	policy  *Policy
	limits  Limits
	endUser string
	name    string

	cur    *lease   // the lease new admissions use; nil for none
	leases []*lease // every lease not yet returned, cur included
	// inFlight is the peak of the worst cases reserved at once; costs the
	// real costs settled, per second.
	inFlight, costs window
	lastUse         time.Time

	// spent is the user's settled spend today as this replica knows it:
	// the store's at the last grant, plus the costs committed here since.
	spent    int64
	spentDay string
}

type lease struct {
	id        string
	day       string
	at        time.Time
	expiresAt time.Time
	// held is what the store's row holds; reserved the worst cases of the
	// requests admitted against it and still running; pending the real
	// costs of those that ended, until the ledger writer commits them.
	held, reserved, pending int64
	// tight: the store granted less than asked; return it when idle.
	tight bool
	// dead: the store charged it (it expired) or it was returned.
	dead bool
	// leaky: a cost settled against it was never committed; it is left to
	// expire and be charged in full, never returned.
	leaky bool
}

func (l *lease) available() int64 { return l.held - l.reserved - l.pending }

// window keeps a per-second figure for this second and the last.
type window struct {
	slot      int64
	cur, prev int64
}

func (d *window) roll(now time.Time) {
	s := now.Unix()
	if s == d.slot {
		return
	}
	if s == d.slot+1 {
		d.prev = d.cur
	} else {
		d.prev = 0
	}
	d.cur, d.slot = 0, s
}

// add sums v into this second.
func (d *window) add(now time.Time, v int64) {
	d.roll(now)
	d.cur = int64(satAdd(d.cur, v))
}

// peak keeps the largest v seen this second.
func (d *window) peak(now time.Time, v int64) {
	d.roll(now)
	d.cur = max(d.cur, v)
}

func (d *window) get(now time.Time) int64 {
	d.roll(now)
	return max(d.prev, d.cur)
}

// prefetch is what a lease asks for beyond the request at hand: room for
// as many worst cases as were in flight at once lately, plus the real
// costs the person's requests settled over leaseHorizon (what the lease
// will give up to settled spend before it is next grown). Asking for the
// worst cases of a horizon's requests would hold far more than anyone
// spends, and a replica killed holding it would charge it all.
func (a *account) prefetch(now time.Time) int64 {
	return int64(satAdd(a.inFlight.get(now), int64(satMul(a.costs.get(now), int64(leaseHorizon/time.Second)))))
}

// usable is the lease new admissions may use at now, if any.
func (a *account) usable(day string, now time.Time) *lease {
	if l := a.cur; l != nil && !l.dead && l.day == day && now.Before(l.expiresAt) {
		return l
	}
	return nil
}

func (k *Keeper) account(user string) *account {
	if a, ok := k.accounts.Load(user); ok {
		return a.(*account)
	}
	a, _ := k.accounts.LoadOrStore(user, &account{k: k, user: user})
	return a.(*account)
}

// Reservation is one request's worst case held in its user's lease. A nil
// Reservation (the user has no limits) is valid and does nothing.
//
// Every path that calls a model runs, in this order:
//
//	res, err := k.Admit(ctx, policy, ask) // *Exceeded or ErrUnavailable when refused
//	…                                     // res.Cover(ctx, worst) before a pricier retry
//	res.Settle(cost)                      // exactly once, when the request ended
//	ledger.Record(…, Lease: res.Lease())  // the cost reaches the store with the row
type Reservation struct {
	a       *account
	l       *lease
	worst   int64
	settled bool
}

// Lease is the id of the lease the request's cost settles against: the
// final ledger entry carries it. Empty for a nil Reservation.
func (r *Reservation) Lease() string {
	if r == nil {
		return ""
	}
	return r.l.id
}

// Admit reserves the worst case of the plan for the caller (its first
// route only under cost-aware fallback), or refuses with *Exceeded naming
// the limit, today's spend and when the window resets, or with
// ErrUnavailable when the store fails.
func (k *Keeper) Admit(ctx context.Context, p *Policy, ask Ask) (*Reservation, error) {
	lim := p.Limits(ask.User)
	if lim.None() || len(ask.Worst) == 0 {
		return nil, nil
	}
	worsts := ask.Worst
	if p.costAware {
		worsts = worsts[:1]
	}
	var worst metering.Picodollars
	for _, w := range worsts {
		worst = max(worst, w)
	}
	worst = min(worst, maxReservation)
	now := k.now()
	_, end, day := p.Window(now)
	a := k.account(ask.User)
	if lim.HasHard && lim.Hard == 0 {
		// An admin's off switch: nothing to lease.
		k.metrics.rejections.WithLabelValues(ask.EndUser).Inc()
		return nil, &Exceeded{Limit: 0, Worst: worst, UntilReset: end.Sub(now)}
	}

	a.mu.Lock()
	a.policy, a.limits, a.endUser, a.name = p, lim, ask.EndUser, ask.Name
	a.lastUse = now
	if r := a.reserveLocked(day, now, int64(worst)); r != nil {
		low := r.l.available() < a.prefetch(now)/2
		a.mu.Unlock()
		if low {
			k.poke() // grow it in the background before it runs dry
		}
		return r, nil
	}
	a.mu.Unlock()
	return a.grantAndReserve(ctx, ask, int64(worst), now)
}

// reserveLocked reserves w in the usable lease, if it has room.
func (a *account) reserveLocked(day string, now time.Time, w int64) *Reservation {
	if l := a.usable(day, now); l != nil && l.available() >= w {
		l.reserved += w
		a.inFlight.peak(now, l.reserved)
		return &Reservation{a: a, l: l, worst: w}
	}
	return nil
}

// grantAndReserve asks the store for room (the one store call on the
// request path) and reserves w in it.
func (a *account) grantAndReserve(ctx context.Context, ask Ask, w int64, now time.Time) (*Reservation, error) {
	k := a.k
	a.grant.Lock()
	defer a.grant.Unlock()
	for range grantAttempts {
		a.mu.Lock()
		p, lim := a.policy, a.limits
		start, end, day := p.Window(now)
		if r := a.reserveLocked(day, now, w); r != nil {
			a.mu.Unlock()
			return r, nil // another admission's grant made room
		}
		l := a.usable(day, now)
		need := w
		if l != nil {
			need = w - l.available()
			a.inFlight.peak(now, l.reserved+w)
		} else {
			a.inFlight.peak(now, w)
		}
		pre := a.prefetch(now)
		a.mu.Unlock()

		g, l, err := a.grantLease(ctx, l, need, int64(satAdd(need, pre)), start, end, day, now, hardLimit(lim))
		if err != nil {
			k.log.LogAttrs(ctx, slog.LevelError, "Failed to check the quota", slog.String("request_id", ask.RequestID), slog.String("error", err.Error()))
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if g.OK {
			continue // reserve in the next round, where the room is checked again
		}
		a.mu.Lock()
		spent, held := g.Usage.SpentPicodollars, g.Usage.ReservedPicodollars
		if l != nil {
			spent += l.pending
			held += l.reserved
		}
		a.mu.Unlock()
		k.metrics.rejections.WithLabelValues(ask.EndUser).Inc()
		// Settled spend stops short of the hard limit by design: the user
		// has reached it when a request no longer fits even with nothing
		// else in flight (a refusal only for concurrency is not that).
		if lim.Hard > 0 && !store.QuotaFits(store.QuotaUsage{SpentPicodollars: spent}, 0, w, int64(lim.Hard)) {
			go k.notifyOnce(a, day, thresholdHard, metering.Picodollars(spent), lim.Hard)
		}
		return nil, &Exceeded{Limit: lim.Hard, Spent: metering.Picodollars(spent), Reserved: metering.Picodollars(held), Worst: metering.Picodollars(w), UntilReset: end.Sub(now)}
	}
	return nil, fmt.Errorf("%w: the quota lease kept running dry", ErrUnavailable)
}

// grantLease adds between lo and hi to l (nil: a new lease) and moves
// its expiry on; a lease the store no longer has is replaced by a new one.
// The lease returned is the one granted (or refused).
func (a *account) grantLease(ctx context.Context, l *lease, lo, hi int64, start, end time.Time, day string, now time.Time, limit int64) (store.Grant, *lease, error) {
	k := a.k
	expires := now.Add(leaseTTL)
	if expires.After(end) {
		expires = end // a lease never outlives its day
	}
	for {
		sl := store.Lease{User: a.user, Holder: k.holder, ExpiresAt: expires}
		if l == nil {
			sl.ID, sl.At, sl.Create = newLeaseID(), now, true
		} else {
			sl.ID, sl.At = l.id, l.at
		}
		g, err := k.store.GrantLease(ctx, sl, lo, hi, start, now, limit)
		if errors.Is(err, store.ErrLeaseGone) && l != nil {
			a.mu.Lock()
			k.drop(a, l)
			lo = max(lo+l.available(), 0) // a new lease holds none of the old one's room
			a.mu.Unlock()
			hi = max(hi, lo)
			l = nil
			continue
		}
		if err != nil {
			return store.Grant{}, l, err
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		a.spent, a.spentDay = g.Usage.SpentPicodollars, day
		// Other replicas' spend can carry the figure past a threshold
		// without any of this replica's commits crossing it.
		k.notifyReachedLocked(a, day)
		if l == nil {
			if !g.OK {
				return g, nil, nil // nothing was created
			}
			l = &lease{id: sl.ID, day: day, at: now}
			a.leases = append(a.leases, l)
			k.leases.Store(l.id, l)
			a.cur = l
		}
		l.held += g.Added
		l.expiresAt = expires
		l.tight = g.Added < hi // near the limit (a refusal is too)
		return g, l, nil
	}
}

// drop forgets a lease the store no longer has; costs settled against it
// were charged with it. a.mu is held.
func (k *Keeper) drop(a *account, l *lease) {
	l.dead = true
	if a.cur == l {
		a.cur = nil
	}
	a.leases = slices.DeleteFunc(a.leases, func(x *lease) bool { return x == l })
	k.leases.Delete(l.id)
}

func hardLimit(l Limits) int64 {
	if !l.HasHard {
		return math.MaxInt64 // soft limit only: leases track spend, never refuse
	}
	return int64(l.Hard)
}

// Cover makes the reservation cover a route whose worst case is worst,
// growing it when that is more than what is held. False means the user's
// remaining quota cannot cover the route: the caller must not try it.
func (r *Reservation) Cover(ctx context.Context, worst metering.Picodollars) bool {
	if r == nil {
		return true
	}
	w := int64(min(worst, maxReservation))
	a := r.a
	a.mu.Lock()
	extra := w - r.worst
	if extra <= 0 {
		a.mu.Unlock()
		return true
	}
	if r.l.available() >= extra && !r.l.dead {
		r.l.reserved += extra
		r.worst = w
		a.mu.Unlock()
		return true
	}
	l, p, lim := r.l, a.policy, a.limits
	a.mu.Unlock()
	if l != a.cur || l.dead {
		return false // its lease is being retired: do not grow it
	}
	a.grant.Lock()
	defer a.grant.Unlock()
	now := a.k.now()
	start, end, day := p.Window(now)
	a.mu.Lock()
	need := extra - l.available()
	a.mu.Unlock()
	g, gl, err := a.grantLease(ctx, l, need, need, start, end, day, now, hardLimit(lim))
	if err != nil || !g.OK || gl != l {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if l.available() < extra {
		return false
	}
	l.reserved += extra
	r.worst = w
	return true
}

// Settle ends the reservation at the real cost: the lease holds the cost
// as pending until the ledger writer commits the request's final entry,
// which carries Lease(). It runs once; later calls do nothing.
func (r *Reservation) Settle(cost metering.Picodollars) {
	if r == nil {
		return
	}
	a := r.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.settled {
		return
	}
	r.settled = true
	r.l.reserved -= r.worst
	r.l.pending += int64(max(cost, 0))
	now := a.k.now()
	a.costs.add(now, int64(max(cost, 0)))
	a.lastUse = now
}

// Committed is the ledger writer's report on a batch: committed (err nil)
// moves each final entry's cost out of its lease's pending amount, as the
// store moved it into settled spend, and checks the notification
// thresholds; given up on (err set), the cost stays pending, so the lease
// is never reused past it nor returned: it expires and is charged in full.
func (k *Keeper) Committed(batch []metering.Entry, err error) {
	for _, e := range batch {
		if e.Lease == "" || e.Provisional {
			continue
		}
		v, ok := k.leases.Load(e.Lease)
		if !ok {
			continue
		}
		l := v.(*lease)
		a := k.account(e.User)
		a.mu.Lock()
		if err != nil {
			l.leaky = true
			a.mu.Unlock()
			continue
		}
		cost := int64(e.Cost)
		l.pending -= cost
		l.held -= cost
		if a.spentDay == l.day {
			a.spent += cost
			k.notifyReachedLocked(a, l.day)
		}
		idle := l.tight && l.reserved == 0 && l.pending == 0
		a.mu.Unlock()
		if idle {
			k.poke() // a tight lease goes back as soon as it is idle
		}
	}
}

func (k *Keeper) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// run keeps the leases: renews those in use before they expire, grows the
// current one before it runs dry, and returns the idle ones.
func (k *Keeper) run() {
	defer close(k.done)
	t := time.NewTicker(leaseTick)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
		case <-k.wake:
		}
		k.maintain(context.Background(), false)
	}
}

// maintain does one round of upkeep; closing returns every lease that
// can be.
func (k *Keeper) maintain(ctx context.Context, closing bool) {
	k.upkeep.Lock()
	defer k.upkeep.Unlock()
	k.accounts.Range(func(_, v any) bool {
		k.maintainAccount(ctx, v.(*account), closing)
		return true
	})
}

func (k *Keeper) maintainAccount(ctx context.Context, a *account, closing bool) {
	// Returns, renewals and growth move the store's leases and this
	// replica's together, under the lock a Status read takes, so it never
	// sees one moved and not the other.
	a.grant.Lock()
	defer a.grant.Unlock()
	now := k.now()
	a.mu.Lock()
	if a.policy == nil {
		a.mu.Unlock()
		return
	}
	start, end, day := a.policy.Window(now)
	lim := a.limits
	active := now.Sub(a.lastUse) < idleReturn
	var back, renew []*lease
	for _, l := range slices.Clone(a.leases) {
		idle := l.reserved == 0 && l.pending == 0
		switch {
		case l.leaky:
			// Never returned: renewed while requests run, then left to
			// expire and be charged in full.
			if l.reserved > 0 && l.expiresAt.Sub(now) < renewBefore {
				renew = append(renew, l)
			}
		case idle && (closing || l.tight || l != a.cur || l.day != day || !active):
			k.drop(a, l) // no admission may use it from here on
			back = append(back, l)
		case l.expiresAt.Sub(now) < renewBefore && (!idle || active):
			renew = append(renew, l)
		}
	}
	var grow *lease
	if l := a.usable(day, now); l != nil && active && !closing && !l.tight && l.available() < a.prefetch(now)/2 {
		grow = l
	}
	pre := a.prefetch(now)
	a.mu.Unlock()

	for _, l := range back {
		if err := k.store.ReturnLease(ctx, store.Lease{ID: l.id, User: a.user}); err != nil {
			// Left to expire: charged in full then, which never under-counts.
			k.log.LogAttrs(ctx, slog.LevelWarn, "Failed to return a quota lease", slog.String("error", err.Error()))
		}
	}
	if len(back) > 0 && !closing {
		// The person went idle here: learn what other replicas settled
		// meanwhile, so the used-ratio gauge ends at the store's figure.
		if u, err := k.store.QuotaUsage(ctx, a.user, start, now); err == nil {
			a.mu.Lock()
			if len(a.leases) == 0 { // nothing settling here that the read could miss
				a.spent, a.spentDay = u.SpentPicodollars, day
				k.notifyReachedLocked(a, day)
			}
			a.mu.Unlock()
		}
	}
	if len(renew) == 0 && grow == nil {
		return
	}
	for _, l := range renew {
		// A lease of another day ends with its day; the current one is
		// renewed by growing it, below, when it is also low.
		if l.day != day || l == grow {
			continue
		}
		if _, _, err := a.grantLease(ctx, l, 0, 0, start, end, day, now, hardLimit(lim)); err != nil {
			k.log.LogAttrs(ctx, slog.LevelWarn, "Failed to renew a quota lease", slog.String("error", err.Error()))
		}
	}
	if grow != nil {
		if _, _, err := a.grantLease(ctx, grow, 0, pre, start, end, day, now, hardLimit(lim)); err != nil {
			k.log.LogAttrs(ctx, slog.LevelWarn, "Failed to grow a quota lease", slog.String("error", err.Error()))
		}
	}
}

// Flush returns every lease that is idle now; call it after the ledger
// writer's Flush (tests use it to see the store settle).
func (k *Keeper) Flush(ctx context.Context) { k.maintain(ctx, true) }

// Close stops the upkeep and returns every lease whose costs are all
// committed (call it after the ledger writer's Close); the others expire
// and are charged in full.
func (k *Keeper) Close(ctx context.Context) {
	k.stopOnce.Do(func() { close(k.stop) })
	<-k.done
	k.maintain(ctx, true)
}

// notifyReachedLocked sends the notification of each threshold a.spent
// has reached on day and this replica has not yet sent or seen sent. It
// asks whether the figure is at or past a threshold, not whether this
// commit crossed it: a.spent also moves to the store's figure, which
// takes in other replicas' spend, so a crossing can happen between two
// of this replica's looks. Called with a.mu held.
func (k *Keeper) notifyReachedLocked(a *account, day string) {
	lim := a.limits
	for _, t := range [...]struct {
		name  string
		limit metering.Picodollars
	}{{thresholdSoft, lim.Soft}, {thresholdHard, lim.Hard}} {
		if t.limit <= 0 || a.spent < int64(t.limit) {
			continue
		}
		if _, done := k.notified.Load(notifiedKey(a.user, day, t.name)); done {
			continue
		}
		go k.notifyOnce(a, day, t.name, metering.Picodollars(a.spent), t.limit)
	}
}

func notifiedKey(user, day, threshold string) string {
	return user + "\x00" + day + "\x00" + threshold
}

// notifyOnce sends the threshold's notification unless it went out in
// this window already, from this replica (remembered, to spare the store
// a write per request past the threshold) or another (the store's dedup).
func (k *Keeper) notifyOnce(a *account, day, threshold string, spent, limit metering.Picodollars) {
	key := notifiedKey(a.user, day, threshold)
	if _, done := k.notified.Load(key); done {
		return
	}
	ctx := context.Background()
	first, err := k.store.MarkNotified(ctx, a.user, day, threshold, k.now())
	if err != nil {
		k.log.LogAttrs(ctx, slog.LevelWarn, "Failed to record a quota notification", slog.String("error", err.Error()))
		return
	}
	k.notified.Store(key, struct{}{})
	if first {
		a.mu.Lock()
		p, name := a.policy, a.name
		a.mu.Unlock()
		k.notifier.send(p.webhook, threshold, quotaMessage(p.gateway, name, threshold, spent, limit, day, p.loc))
	}
}
