package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
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
	// Store keeps the leases and settled spend; replicas that share one
	// share the quota.
	Store store.Quotas
	// Holder names this replica in its lease rows (default: the host name
	// and a random suffix).
	Holder string
	// Registerer takes the quota metrics.
	Registerer prometheus.Registerer
	Log        *slog.Logger
	Now        func() time.Time
}

// Keeper admits and settles requests against daily quotas, holding a
// lease per active user (see lease.go), and sends the notifications a
// crossed threshold calls for.
type Keeper struct {
	store    store.Quotas
	holder   string
	log      *slog.Logger
	now      func() time.Time
	metrics  *quotaMetrics
	notifier *notifier
	notified sync.Map // user, day, threshold → notification handled

	accounts sync.Map // email → *account
	leases   sync.Map // lease id → *lease, for the ledger writer's reports
	// upkeep makes rounds of lease upkeep one at a time, so a Flush that
	// finds a lease already dropped by the background round returns only
	// once that round has given it back to the store.
	upkeep   sync.Mutex
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// New returns a Keeper and starts its lease upkeep; its metrics are
// registered on o.Registerer. Close stops it.
func New(o Options) *Keeper {
	k := &Keeper{store: o.Store, holder: o.Holder, log: o.Log, now: o.Now,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if k.holder == "" {
		host, _ := os.Hostname()
		k.holder = host + "/" + newLeaseID()[:8]
	}
	k.metrics = newQuotaMetrics(o.Registerer, k)
	k.notifier = newNotifier(o.Log, k.metrics)
	go k.run()
	return k
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
	var a *account
	if v, ok := k.accounts.Load(email); ok {
		// Grants, returns and renewals move a lease in the store and here
		// under a.grant: holding it, the two reads below agree.
		a = v.(*account)
		a.grant.Lock()
		defer a.grant.Unlock()
	}
	u, err := k.store.QuotaUsage(ctx, email, start, now)
	if err != nil {
		return Status{}, err
	}
	// The store counts this replica's leases whole: what they hold unused
	// is the person's to spend, not held by a request. (A cost settled
	// here shows as held until the ledger writer commits it; the gateway's
	// store commits the writer's queue before this read, and the unused
	// part does not change when it does.)
	if a != nil {
		a.mu.Lock()
		for _, l := range a.leases {
			if l.day == day && l.expiresAt.After(now) {
				u.ReservedPicodollars -= max(l.available(), 0)
			}
		}
		a.mu.Unlock()
		u.ReservedPicodollars = max(u.ReservedPicodollars, 0)
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

// newLeaseID names a lease: 128 random bits, never reused.
func newLeaseID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
