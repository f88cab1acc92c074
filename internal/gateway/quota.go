package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// Daily quotas. Admission reserves a request's worst-case cost against the
// caller's hard limit in a store.Quotas shared by the replicas, and the end
// of the request settles the charge to the real cost, so concurrent
// requests, on one replica or several, cannot together overrun the limit.
//
// The worst case of a route is
//
//	input bound × the route's highest input-side price (input, cache write,
//	cache read) + output cap × output price × n
//
// where the input bound is the request body's length in bytes plus
// reserveOverheadTokens: byte-level BPE tokenizers never produce more tokens
// than bytes, and the body holds every message, the system prompt and the
// tool definitions. That over-reserves input about fourfold for prose, on
// purpose: it is an upper bound, not an estimate, so the settled cost cannot
// exceed the reservation (one known gap: an image sent by URL rather than
// inline costs tokens its URL's length does not show). The output cap is
// the caller's max_tokens (max_completion_tokens) or else the model's
// maxOutputTokens, which the gateway then sends upstream so the cap holds.
// The reservation covers the most expensive route of the attempt plan, so
// every failover retry fits; with quotas.costAwareFallback it covers the
// first route only and grows before a pricier retry, which is skipped when
// the remaining quota cannot cover it.

const (
	// reserveOverheadTokens covers prompt tokens a provider adds that the
	// body does not show (Anthropic's tool-use system prompt is ~350).
	reserveOverheadTokens = 1024
	// reservationMargin is added to failover.requestTimeout for a charge's
	// lifetime: no request outlives the timeout, so an unsettled charge
	// older than that belongs to a dead process.
	reservationMargin = time.Minute
	// maxReservation caps one request's reservation (about $72,000, far
	// above any real request's worst case) so that sums of reservations
	// stay within int64 even for absurd max_tokens or n.
	maxReservation metering.Picodollars = 1 << 56
	// settleTimeout bounds the write that ends a request's charge.
	settleTimeout = 10 * time.Second
)

// Thresholds, the values of the threshold label and of the notification dedup.
const (
	thresholdSoft = "soft"
	thresholdHard = "hard"
)

// quotaLimits are one user's daily limits; zero means none.
type quotaLimits struct {
	soft, hard metering.Picodollars
}

func (l quotaLimits) none() bool { return l.soft == 0 && l.hard == 0 }

// quotaPolicy is the quota config of one snapshot, resolved once.
type quotaPolicy struct {
	loc       *time.Location
	defaults  quotaLimits
	users     map[string]quotaLimits
	costAware bool
	ttl       time.Duration
	webhook   string // file holding the Slack webhook URL
}

func newQuotaPolicy(c *gatewayconfig.Config) *quotaPolicy {
	p := &quotaPolicy{
		defaults:  quotaLimits{soft: usdLimit(c.Quotas.DailySoftUSD), hard: usdLimit(c.Quotas.DailyHardUSD)},
		users:     map[string]quotaLimits{},
		costAware: c.Quotas.CostAwareFallback,
		ttl:       c.Failover.RequestTimeout.Duration + reservationMargin,
		webhook:   c.Quotas.SlackWebhookFile,
	}
	// The config is validated: the zone loads.
	p.loc, _ = time.LoadLocation(c.Quotas.TimeZone)
	if p.loc == nil {
		p.loc = time.UTC
	}
	for _, u := range c.Users {
		l := p.defaults
		if u.DailySoftUSD != "" {
			l.soft = usdLimit(u.DailySoftUSD)
		}
		if u.DailyHardUSD != "" {
			l.hard = usdLimit(u.DailyHardUSD)
		}
		p.users[u.Email] = l
	}
	return p
}

// usdLimit converts a validated decimal dollar string; MicroUSD × 1e6 is
// picodollars exactly.
func usdLimit(s string) metering.Picodollars {
	if s == "" {
		return 0
	}
	v, _ := gatewayconfig.ParseUSD(s)
	return metering.Picodollars(v) * 1_000_000
}

func (p *quotaPolicy) limits(email string) quotaLimits {
	if l, ok := p.users[email]; ok {
		return l
	}
	return p.defaults
}

// window is the quota day containing now, in the configured zone: its
// start, the next day's start and its date. Days are calendar days, so a
// daylight-saving change makes one 23 or 25 hours long.
func (p *quotaPolicy) window(now time.Time) (start, end time.Time, day string) {
	y, m, d := now.In(p.loc).Date()
	start = time.Date(y, m, d, 0, 0, 0, 0, p.loc)
	end = time.Date(y, m, d+1, 0, 0, 0, 0, p.loc)
	return start, end, start.Format(time.DateOnly)
}

// reservation is one request's charge against its user's daily quota. A
// nil reservation (the user has no limits) is valid and does nothing.
//
// The API for every path that calls a model (serveCompletion does this; a
// caller that drives the providers some other way must too):
//
//	res, aerr := g.admit(ctx, c, plan, in) // 429 in aerr when over the limit
//	…                                      // res.cover(ctx, rt) before a pricier retry
//	res.settle(ctx, cost)                  // exactly once, when the request ended
type reservation struct {
	g       *Gateway
	policy  *quotaPolicy
	limits  quotaLimits
	user    string
	endUser string // the end_user label, "" when metrics name nobody
	name    string // how notifications name the user
	in      int64  // input bound in tokens
	out     int64  // caller's output cap, 0 when none
	n       int64  // choices asked for (OpenAI n)
	r       store.Reservation

	mu      sync.Mutex
	settled bool
}

// admit reserves the worst case of plan for the caller, or refuses with a
// 429 in the caller's translate.Dialect naming the limit, today's spend and when the
// window resets (Retry-After). A store error refuses with 503: a hard limit
// that cannot be checked is not enforced by letting requests through.
func (g *Gateway) admit(ctx context.Context, c *call, plan []*upstream.Route, in *translate.Request) (*reservation, *translate.Error) {
	policy := c.snap.quota
	lim := policy.limits(c.who.email)
	if lim.none() || len(plan) == 0 {
		return nil, nil
	}
	now := g.now()
	res := &reservation{
		g: g, policy: policy, limits: lim, user: c.who.email,
		endUser: c.snap.endUser(c.who.email), name: notifyName(c),
		in: int64(in.Size()) + reserveOverheadTokens, out: in.OutputCap(), n: in.Choices(),
	}
	routes := plan
	if policy.costAware {
		routes = plan[:1]
	}
	var worst metering.Picodollars
	for _, rt := range routes {
		worst = max(worst, res.worstCase(rt))
	}
	worst = min(worst, maxReservation)
	res.r = store.Reservation{ID: newChargeID(), User: c.who.email, AmountPicodollars: int64(worst), At: now, ExpiresAt: now.Add(policy.ttl)}
	start, end, day := policy.window(now)
	u, ok, err := g.quotas.Reserve(ctx, res.r, start, now, res.hardLimit())
	if err != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "Failed to check the quota", slog.String("request_id", c.id), slog.String("error", err.Error()))
		return nil, translate.Errorf(http.StatusServiceUnavailable, "the gateway cannot check your daily quota right now; try again shortly")
	}
	if !ok {
		g.quotaMetrics.rejections.WithLabelValues(res.endUser).Inc()
		g.quotaMetrics.setUsed(res.endUser, lim, metering.Picodollars(u.SpentPicodollars))
		// Settled spend stops short of the hard limit by design: the user
		// has reached it when a request no longer fits even with nothing
		// else in flight (a refusal only for concurrency is not that).
		if !store.QuotaFits(store.QuotaUsage{SpentPicodollars: u.SpentPicodollars}, 0, int64(worst), int64(lim.hard)) {
			g.notifyOnce(ctx, res, day, thresholdHard, metering.Picodollars(u.SpentPicodollars), lim.hard)
		}
		return nil, quotaExceeded(lim.hard, metering.Picodollars(u.SpentPicodollars), metering.Picodollars(u.ReservedPicodollars), worst, end.Sub(now))
	}
	// The first request of a day also resets the gauges from yesterday's.
	g.quotaMetrics.setUsed(res.endUser, lim, metering.Picodollars(u.SpentPicodollars))
	return res, nil
}

func (r *reservation) hardLimit() int64 {
	if r.limits.hard == 0 {
		return math.MaxInt64 // soft limit only: charges are kept to notify, never refused
	}
	return int64(r.limits.hard)
}

// worstCase is the most rt can cost for this request (see the top of the file).
func (r *reservation) worstCase(rt *upstream.Route) metering.Picodollars {
	p := rt.Prices
	inPrice := max(p.Input, p.CacheWrite, p.CacheRead)
	out := r.out
	if out <= 0 {
		out = rt.MaxTokens
	}
	return satAdd(satMul(r.in, int64(inPrice)), satMul(satMul(out, int64(p.Output)), r.n))
}

// cover makes the reservation cover rt's worst case, growing it when rt is
// pricier than what is held. False means the user's remaining quota cannot
// cover rt: the caller must not try it.
func (r *reservation) cover(ctx context.Context, rt *upstream.Route) bool {
	if r == nil {
		return true
	}
	worst := min(r.worstCase(rt), maxReservation)
	if int64(worst) <= r.r.AmountPicodollars {
		return true
	}
	grown := r.r
	grown.AmountPicodollars = int64(worst)
	now := r.g.now()
	start, _, _ := r.policy.window(r.r.At)
	_, ok, err := r.g.quotas.Reserve(ctx, grown, start, now, r.hardLimit())
	if err != nil || !ok {
		return false
	}
	r.r = grown
	return true
}

// settle ends the charge at the real cost, updates the used-ratio gauges
// and sends the notifications a crossed threshold calls for. It runs once;
// later calls do nothing. The write survives the client hanging up.
func (r *reservation) settle(ctx context.Context, cost metering.Picodollars) {
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
	g := r.g
	final := r.r
	final.AmountPicodollars = int64(max(cost, 0))
	if err := g.quotas.Settle(ctx, final); err != nil {
		// The charge stays reserved until it expires: the user is held to
		// the worst case a little longer, never let past the limit.
		g.log.LogAttrs(ctx, slog.LevelError, "Failed to settle a quota charge", slog.String("error", err.Error()))
		return
	}
	now := g.now()
	start, _, day := r.policy.window(r.r.At)
	u, err := g.quotas.QuotaUsage(ctx, r.user, start, now)
	if err != nil {
		g.log.LogAttrs(ctx, slog.LevelWarn, "Failed to read quota usage", slog.String("error", err.Error()))
		return
	}
	spent := metering.Picodollars(u.SpentPicodollars)
	g.quotaMetrics.setUsed(r.endUser, r.limits, spent)
	if r.limits.soft > 0 && spent >= r.limits.soft {
		g.notifyOnce(ctx, r, day, thresholdSoft, spent, r.limits.soft)
	}
	if r.limits.hard > 0 && spent >= r.limits.hard {
		g.notifyOnce(ctx, r, day, thresholdHard, spent, r.limits.hard)
	}
}

// notifyOnce sends the threshold's notification unless it went out in
// this window already, from this replica (remembered, to spare the store
// a write per request past the threshold) or another (the store's dedup).
func (g *Gateway) notifyOnce(ctx context.Context, r *reservation, day, threshold string, spent, limit metering.Picodollars) {
	key := r.user + "\x00" + day + "\x00" + threshold
	if _, done := g.notified.Load(key); done {
		return
	}
	first, err := g.quotas.MarkNotified(ctx, r.user, day, threshold, g.now())
	if err != nil {
		g.log.LogAttrs(ctx, slog.LevelWarn, "Failed to record a quota notification", slog.String("error", err.Error()))
		return
	}
	g.notified.Store(key, struct{}{})
	if first {
		g.notifier.send(r.policy.webhook, threshold, quotaMessage(g.gatewayName(), r.name, threshold, spent, limit, day, r.policy.loc))
	}
}

// QuotaStatus is a user's standing against their daily quota, for /api/me/usage.
type QuotaStatus struct {
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
	// never below zero; -1 when there is no hard limit.
	RemainingPicodollars int64 `json:"remainingPicodollars"`
}

// QuotaStatus returns email's spend today (settled charges), live
// reservations and limits, under the current config.
func (g *Gateway) QuotaStatus(ctx context.Context, email string) (QuotaStatus, error) {
	s := g.snap.Load()
	p := s.quota
	now := g.now()
	start, end, day := p.window(now)
	lim := p.limits(email)
	u, err := g.quotas.QuotaUsage(ctx, email, start, now)
	if err != nil {
		return QuotaStatus{}, err
	}
	st := QuotaStatus{
		Day: day, TimeZone: p.loc.String(), ResetsAt: end,
		SpentPicodollars: u.SpentPicodollars, ReservedPicodollars: u.ReservedPicodollars,
		SoftLimitPicodollars: int64(lim.soft), HardLimitPicodollars: int64(lim.hard), RemainingPicodollars: -1,
	}
	if lim.hard > 0 {
		st.RemainingPicodollars = max(0, int64(lim.hard)-u.SpentPicodollars-u.ReservedPicodollars)
	}
	return st, nil
}

func quotaExceeded(limit, spent, reserved, worst metering.Picodollars, untilReset time.Duration) *translate.Error {
	secs := int64((untilReset + time.Second - 1) / time.Second)
	msg := fmt.Sprintf("daily spending limit reached: you have spent %s of your %s daily limit today", formatUSD(spent), formatUSD(limit))
	if reserved > 0 {
		msg += fmt.Sprintf(", %s more is held by requests in progress", formatUSD(reserved))
	}
	msg += fmt.Sprintf(", and this request could cost up to %s. The limit resets in %s.", formatUSD(worst), (time.Duration(secs) * time.Second).String())
	return &translate.Error{Status: http.StatusTooManyRequests, Msg: msg, Code: "daily_quota_exceeded", RetryAfter: strconv.FormatInt(secs, 10)}
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

// quotaMetrics are the quota series, registered on the gateway's registry.
type quotaMetrics struct {
	used          *prometheus.GaugeVec
	rejections    *prometheus.CounterVec
	notifications *prometheus.CounterVec
}

func newQuotaMetrics(reg prometheus.Registerer) *quotaMetrics {
	m := &quotaMetrics{
		// The operator's alert rules and dashboard query this exact name.
		used: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricnames.QuotaUsedRatio,
			Help: "Today's settled spend over the daily limit, per user and limit (soft, hard); updated as requests end.",
		}, []string{"end_user", "limit"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.QuotaRejections,
			Help: "Requests refused because their worst-case cost did not fit the user's daily hard limit.",
		}, []string{"end_user"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.QuotaNotifications,
			Help: "Quota notifications by threshold (soft, hard) and result (sent, failed, dropped, unconfigured).",
		}, []string{"threshold", "result"}),
	}
	reg.MustRegister(m.used, m.rejections, m.notifications)
	return m
}

// setUsed updates the ratio gauges. With metricsEndUser None every user
// would share one series and overwrite each other, so nothing is set.
func (m *quotaMetrics) setUsed(endUser string, l quotaLimits, spent metering.Picodollars) {
	if endUser == "" {
		return
	}
	// Floats only here, at the Prometheus boundary.
	if l.soft > 0 {
		m.used.WithLabelValues(endUser, thresholdSoft).Set(float64(spent) / float64(l.soft))
	}
	if l.hard > 0 {
		m.used.WithLabelValues(endUser, thresholdHard).Set(float64(spent) / float64(l.hard))
	}
}
