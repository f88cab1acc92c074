package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

const (
	// ReserveOverheadTokens covers prompt tokens a provider adds that the
	// body does not show (Anthropic's tool-use system prompt is ~350).
	ReserveOverheadTokens = 1024
	// maxReservation caps one request's reservation (about $72,000, far
	// above any real request's worst case) so that sums of reservations
	// stay within int64 even for absurd max_tokens or n.
	maxReservation metering.Picodollars = 1 << 56
	// settleTimeout bounds the write that ends a request's charge.
	settleTimeout = 10 * time.Second
)

// Thresholds, the values of the limit and threshold labels and of the
// notification dedup.
const (
	thresholdSoft = "soft"
	thresholdHard = "hard"
)

// ErrUnavailable: the charges store failed, so the quota cannot be checked.
// A hard limit that cannot be checked is not enforced by letting requests
// through: the caller refuses the request (503).
var ErrUnavailable = errors.New("the daily quota cannot be checked right now")

// Exceeded refuses a request whose worst case does not fit the hard limit.
type Exceeded struct {
	Limit, Spent, Reserved, Worst metering.Picodollars
	// UntilReset is the time left in the quota day.
	UntilReset time.Duration
}

func (e *Exceeded) Error() string {
	if e.Limit == 0 {
		return "your daily spending limit is $0.00: model requests are turned off for you; ask an administrator"
	}
	msg := fmt.Sprintf("daily spending limit reached: you have spent %s of your %s daily limit today", formatUSD(e.Spent), formatUSD(e.Limit))
	if e.Reserved > 0 {
		msg += fmt.Sprintf(", %s more is held by requests in progress", formatUSD(e.Reserved))
	}
	return msg + fmt.Sprintf(", and this request could cost up to %s. The limit resets in %s.",
		formatUSD(e.Worst), (time.Duration(e.retryAfterSeconds())*time.Second).String())
}

// RetryAfter is the Retry-After value: whole seconds until the day resets.
func (e *Exceeded) RetryAfter() string { return strconv.FormatInt(e.retryAfterSeconds(), 10) }

func (e *Exceeded) retryAfterSeconds() int64 {
	return int64((e.UntilReset + time.Second - 1) / time.Second)
}

// Options are what a Keeper is given.
type Options struct {
	// Store keeps the charges; replicas that share one share the quota.
	Store store.Quotas
	// Registerer takes the quota metrics.
	Registerer prometheus.Registerer
	Log        *slog.Logger
	Now        func() time.Time
}

// Keeper admits and settles requests against daily quotas, and sends the
// notifications a crossed threshold calls for.
type Keeper struct {
	store    store.Quotas
	log      *slog.Logger
	now      func() time.Time
	metrics  *quotaMetrics
	notifier *notifier
	notified sync.Map // user, day, threshold → notification handled
}

// New returns a Keeper; its metrics are registered on o.Registerer.
func New(o Options) *Keeper {
	m := newQuotaMetrics(o.Registerer)
	return &Keeper{store: o.Store, log: o.Log, now: o.Now, metrics: m, notifier: newNotifier(o.Log, m)}
}

// SetNotifyRetry bounds a notification's delivery: attempts posts, the
// first retry after backoff, each next one after twice the last. Call it
// before the Keeper is used.
func (k *Keeper) SetNotifyRetry(attempts int, backoff time.Duration) {
	k.notifier.attempts, k.notifier.backoff = attempts, backoff
}

// Bound is what a request can use at most, in tokens.
type Bound struct {
	Input   int64 // input bound: the request's bytes plus ReserveOverheadTokens
	Images  int64 // images sent, each bounded apart (see ImageTokens)
	Output  int64 // the caller's output cap, 0 when none
	Choices int64 // completions asked for (OpenAI n), at least 1
}

// An image's tokens do not follow from its bytes: a URL is a few dozen
// bytes, and a large single-colour PNG compresses to fewer bytes than the
// tokens it costs. Each image is bounded by the most its provider's models
// charge for one, per the providers' documented sizing rules.
const (
	// AnthropicImageTokens: Anthropic scales every image down to at most
	// 1568 px on its long edge and about 1.15 megapixels, at width × height
	// / 750 tokens: about 1,600 at most.
	AnthropicImageTokens = 1_600
	// OpenAIImageTokens: behind an OpenAI-compatible endpoint may be any
	// model; the costliest documented is gpt-4o-mini at detail "high":
	// 2,833 tokens plus 5,667 per 512-px tile of an image scaled into
	// 2048 × 768, at most 8 tiles.
	OpenAIImageTokens = 2_833 + 8*5_667
)

// NewBound bounds a request of size bytes with images images, asking for
// at most outputCap tokens (0: the model's limit) in choices completions.
func NewBound(size int, images, outputCap, choices int64) Bound {
	return Bound{Input: int64(size) + ReserveOverheadTokens, Images: images, Output: outputCap, Choices: max(choices, 1)}
}

// WorstCase is the most a route with prices p, output limit modelMax and
// imageTokens a picture can cost for the request (see the package doc).
func (b Bound) WorstCase(p metering.Prices, modelMax, imageTokens int64) metering.Picodollars {
	inPrice := max(p.Input, p.CacheWrite, p.CacheRead)
	out := b.Output
	if out <= 0 {
		out = modelMax
	}
	in := satAdd(b.Input, satMul(b.Images, imageTokens))
	return min(satAdd(int64(satMul(int64(in), int64(inPrice))), satMul(satMul(out, int64(p.Output)), b.Choices)), maxReservation)
}

// Ask is a request asking to be admitted.
type Ask struct {
	User string
	// EndUser is the end_user label, "" when metrics name nobody; Name is
	// how notifications name the user.
	EndUser, Name string
	// RequestID names the request in logs.
	RequestID string
	// Worst is the worst case of each route of the attempt plan, in order.
	Worst []metering.Picodollars
}

// Reservation is one request's charge against its user's daily quota. A
// nil Reservation (the user has no limits) is valid and does nothing.
//
// Every path that calls a model runs, in this order:
//
//	res, err := k.Admit(ctx, policy, ask) // *Exceeded or ErrUnavailable when refused
//	…                                     // res.Cover(ctx, worst) before a pricier retry
//	res.Settle(ctx, cost)                 // exactly once, when the request ended
type Reservation struct {
	k       *Keeper
	policy  *Policy
	limits  Limits
	user    string
	endUser string
	name    string
	r       store.Reservation

	mu      sync.Mutex
	settled bool
}

// Admit reserves the worst case of the plan for the caller (its first
// route only under cost-aware fallback), or refuses with *Exceeded naming
// the limit, today's spend and when the window resets, or with
// ErrUnavailable when the store fails.
func (k *Keeper) Admit(ctx context.Context, p *Policy, a Ask) (*Reservation, error) {
	lim := p.Limits(a.User)
	if lim.None() || len(a.Worst) == 0 {
		return nil, nil
	}
	now := k.now()
	worsts := a.Worst
	if p.costAware {
		worsts = worsts[:1]
	}
	var worst metering.Picodollars
	for _, w := range worsts {
		worst = max(worst, w)
	}
	worst = min(worst, maxReservation)
	res := &Reservation{k: k, policy: p, limits: lim, user: a.User, endUser: a.EndUser, name: a.Name,
		r: store.Reservation{ID: newChargeID(), User: a.User, AmountPicodollars: int64(worst), At: now, ExpiresAt: now.Add(p.ttl)}}
	start, end, day := p.Window(now)
	u, ok, err := k.store.Reserve(ctx, res.r, start, now, res.hardLimit())
	if err != nil {
		k.log.LogAttrs(ctx, slog.LevelError, "Failed to check the quota", slog.String("request_id", a.RequestID), slog.String("error", err.Error()))
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	spent := metering.Picodollars(u.SpentPicodollars)
	k.metrics.setUsed(a.EndUser, lim, spent) // the first request of a day also resets yesterday's gauges
	if !ok {
		k.metrics.rejections.WithLabelValues(a.EndUser).Inc()
		// Settled spend stops short of the hard limit by design: the user
		// has reached it when a request no longer fits even with nothing
		// else in flight (a refusal only for concurrency is not that).
		// A limit of zero is an admin's off switch, not news to send.
		if lim.Hard > 0 && !store.QuotaFits(store.QuotaUsage{SpentPicodollars: u.SpentPicodollars}, 0, int64(worst), int64(lim.Hard)) {
			k.notifyOnce(ctx, res, day, thresholdHard, spent, lim.Hard)
		}
		return nil, &Exceeded{Limit: lim.Hard, Spent: spent, Reserved: metering.Picodollars(u.ReservedPicodollars), Worst: worst, UntilReset: end.Sub(now)}
	}
	return res, nil
}

func (r *Reservation) hardLimit() int64 {
	if !r.limits.HasHard {
		return math.MaxInt64 // soft limit only: charges are kept to notify, never refused
	}
	return int64(r.limits.Hard)
}

// Cover makes the reservation cover a route whose worst case is worst,
// growing it when that is more than what is held. False means the user's
// remaining quota cannot cover the route: the caller must not try it.
func (r *Reservation) Cover(ctx context.Context, worst metering.Picodollars) bool {
	if r == nil {
		return true
	}
	worst = min(worst, maxReservation)
	if int64(worst) <= r.r.AmountPicodollars {
		return true
	}
	grown := r.r
	grown.AmountPicodollars = int64(worst)
	start, _, _ := r.policy.Window(r.r.At)
	_, ok, err := r.k.store.Reserve(ctx, grown, start, r.k.now(), r.hardLimit())
	if err != nil || !ok {
		return false
	}
	r.r = grown
	return true
}

// Settle ends the charge at the real cost, updates the used-ratio gauges
// and sends the notifications a crossed threshold calls for. It runs once;
// later calls do nothing. The write survives the client hanging up.
func (r *Reservation) Settle(ctx context.Context, cost metering.Picodollars) {
	if r == nil {
		return
	}
	r.mu.Lock()
	done := r.settled
	r.settled = true
	r.mu.Unlock()
	if done {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	k := r.k
	final := r.r
	final.AmountPicodollars = int64(max(cost, 0))
	if err := k.store.Settle(ctx, final); err != nil {
		// The charge stays reserved until it expires: the user is held to
		// the worst case a little longer, never let past the limit.
		k.log.LogAttrs(ctx, slog.LevelError, "Failed to settle a quota charge", slog.String("error", err.Error()))
		return
	}
	start, _, day := r.policy.Window(r.r.At)
	u, err := k.store.QuotaUsage(ctx, r.user, start, k.now())
	if err != nil {
		k.log.LogAttrs(ctx, slog.LevelWarn, "Failed to read quota usage", slog.String("error", err.Error()))
		return
	}
	spent := metering.Picodollars(u.SpentPicodollars)
	k.metrics.setUsed(r.endUser, r.limits, spent)
	if r.limits.Soft > 0 && spent >= r.limits.Soft {
		k.notifyOnce(ctx, r, day, thresholdSoft, spent, r.limits.Soft)
	}
	if r.limits.Hard > 0 && spent >= r.limits.Hard {
		k.notifyOnce(ctx, r, day, thresholdHard, spent, r.limits.Hard)
	}
}

// notifyOnce sends the threshold's notification unless it went out in
// this window already, from this replica (remembered, to spare the store
// a write per request past the threshold) or another (the store's dedup).
func (k *Keeper) notifyOnce(ctx context.Context, r *Reservation, day, threshold string, spent, limit metering.Picodollars) {
	key := r.user + "\x00" + day + "\x00" + threshold
	if _, done := k.notified.Load(key); done {
		return
	}
	first, err := k.store.MarkNotified(ctx, r.user, day, threshold, k.now())
	if err != nil {
		k.log.LogAttrs(ctx, slog.LevelWarn, "Failed to record a quota notification", slog.String("error", err.Error()))
		return
	}
	k.notified.Store(key, struct{}{})
	if first {
		p := r.policy
		k.notifier.send(p.webhook, threshold, quotaMessage(p.gateway, r.name, threshold, spent, limit, day, p.loc))
	}
}

// Status is a user's standing against their daily quota, for /api/me/usage.
type Status struct {
	// Day is the quota window's date in TimeZone, "2006-01-02".
	Day      string `json:"day"`
	TimeZone string `json:"timeZone"`
	// ResetsAt is the start of the next window.
	ResetsAt time.Time `json:"resetsAt"`
	// Amounts in exact picodollars; zero limits mean none is set.
	SpentPicodollars     int64 `json:"spentPicodollars"`
	ReservedPicodollars  int64 `json:"reservedPicodollars"`
	SoftLimitPicodollars int64 `json:"softLimitPicodollars"`
	HardLimitPicodollars int64 `json:"hardLimitPicodollars"`
	// RemainingPicodollars is the hard limit less spend and reservations,
	// never below zero; -1 when there is no hard limit (a hard limit of
	// zero, which refuses every request, has 0 remaining).
	RemainingPicodollars int64 `json:"remainingPicodollars"`
}

// Status returns email's spend today (settled charges), live reservations
// and limits under policy p.
func (k *Keeper) Status(ctx context.Context, p *Policy, email string) (Status, error) {
	now := k.now()
	start, end, day := p.Window(now)
	lim := p.Limits(email)
	u, err := k.store.QuotaUsage(ctx, email, start, now)
	if err != nil {
		return Status{}, err
	}
	st := Status{
		Day: day, TimeZone: p.loc.String(), ResetsAt: end,
		SpentPicodollars: u.SpentPicodollars, ReservedPicodollars: u.ReservedPicodollars,
		SoftLimitPicodollars: int64(lim.Soft), HardLimitPicodollars: int64(lim.Hard), RemainingPicodollars: -1,
	}
	if lim.HasHard {
		st.RemainingPicodollars = max(0, int64(lim.Hard)-u.SpentPicodollars-u.ReservedPicodollars)
	}
	return st, nil
}

// formatUSD writes an exact amount as dollars, rounded up to the
// micro-dollar and trimmed to at least cents: "$0.0025", "$5.00".
func formatUSD(p metering.Picodollars) string {
	micro := (int64(p) + 999_999) / 1_000_000
	s := fmt.Sprintf("%d.%06d", micro/1_000_000, micro%1_000_000)
	s = strings.TrimRight(s, "0")
	if i := strings.IndexByte(s, '.'); len(s)-i < 3 {
		s += strings.Repeat("0", 3-(len(s)-i))
	}
	return "$" + s
}

func satMul(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

func satAdd(a, b int64) metering.Picodollars {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return metering.Picodollars(a + b)
}

// newChargeID names a charge. It is the gateway's own, never the caller's
// X-Request-Id, so no caller can collide with another request's charge.
func newChargeID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
