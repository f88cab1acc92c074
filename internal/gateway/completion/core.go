package completion

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/quota"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/routing"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
)

// Options are what a Core is given.
type Options struct {
	// Ledger records each request's spend.
	Ledger metering.Ledger
	// Quota admits and settles requests against daily quotas.
	Quota *quota.Keeper
	// Registerer takes the request metrics.
	Registerer prometheus.Registerer
	Log        *slog.Logger
	Now        func() time.Time
}

// Core serves completions. It is safe for concurrent use and lives as long
// as the gateway: the providers' health it keeps outlasts config reloads.
type Core struct {
	failover *upstream.Failover
	quota    *quota.Keeper
	ledger   metering.Ledger
	metrics  *metrics
	log      *slog.Logger
	now      func() time.Time
}

// New returns a Core; its metrics are registered on o.Registerer.
func New(o Options) *Core {
	return &Core{
		failover: upstream.NewFailover(o.Log, o.Now),
		quota:    o.Quota,
		ledger:   o.Ledger,
		metrics:  newMetrics(o.Registerer),
		log:      o.Log,
		now:      o.Now,
	}
}

// exchange is one request on its way through the core.
type exchange struct {
	core *Core
	// ctx is the caller's: done when they go away.
	ctx context.Context
	req Request
	obs Observer
	// leftOnce tells a Leaver its caller left.
	leftOnce sync.Once
	in       *translate.Request
	res      *quota.Reservation
	// bound (set when the caller has a quota) and target are what every
	// attempt reserves and sends.
	bound  quota.Bound
	target translate.Target
	out    Outcome
	// err is what End reports.
	err error
	// served is the route whose answer reached the caller.
	served *upstream.Route

	// Billing while streaming: whether a provisional row exists, the
	// reply's text so far (bytes) and when the row was last revised.
	billed    bool
	text      int
	sinceBill int
	lastBill  time.Time
	// events counts the events relayed to an HTTP caller; cut marks an
	// answer that ended before the provider's last event (a failure, or a
	// caller gone and the provider not finishing): both feed the estimate
	// of a cut answer's cost.
	events int
	cut    bool
	// metered: the final ledger row is queued and the quota settled; the
	// outcome no longer changes.
	metered bool
}

// Complete serves req and reports to obs (nil for none). It returns once
// End has been called: the answer, or the caller's error, has been
// written; the request has been metered and its quota charge settled.
func (c *Core) Complete(ctx context.Context, req Request, obs Observer) {
	c.metrics.inFlight.Inc()
	defer c.metrics.inFlight.Dec()
	if obs == nil {
		obs = nopObserver{}
	}
	x := &exchange{core: c, ctx: ctx, req: req, obs: obs}
	defer x.finish(ctx)
	body := upstream.GetBuffer()
	defer upstream.PutBuffer(body)
	in, aerr := x.read(body)
	if aerr != nil {
		x.fail(aerr)
		return
	}
	x.in = in
	snap := req.Snapshot
	choice, ok := snap.Models.Resolve(in.Model())
	if !ok {
		// The unknown name is not used as a label: callers choose it freely.
		e := translate.Errorf(http.StatusNotFound, fmt.Sprintf("model %q is not served by this gateway; use one of %s (GET /v1/models lists them), or omit model for the default, %s",
			in.Model(), strings.Join(snap.Models.Aliases(), ", "), snap.Models.Default()))
		e.Code = "model_not_found"
		x.fail(e)
		return
	}
	// A Conversation's pictures go only to models declared to read them
	// (ModelProvider input: Image): auto's rules skip the others, and a
	// fallback that cannot read them is left out of the plan.
	pictures := in.Typed() && in.Images() > 0
	if choice.Auto {
		ri := x.routingInput()
		ri.Pictures = pictures
		choice.Alias = snap.Models.Choose(ri)
	}
	if snap.Models.IsImage(choice.Alias) {
		e := translate.Errorf(http.StatusBadRequest, fmt.Sprintf("model %q makes pictures and answers no messages: ask it with POST /v1/images/generations, or name a chat model (GET /v1/models lists them)", choice.Alias))
		e.Param, e.Code = "model", "invalid_value"
		x.out.Model, x.out.Requested = choice.Alias, choice.Name()
		x.fail(e)
		return
	}
	x.out.Model, x.out.Requested = choice.Alias, choice.Name()
	if pictures && !snap.Models.TakesImages(choice.Alias) {
		x.fail(translate.Errorf(http.StatusBadRequest, fmt.Sprintf("model %s does not take pictures", choice.Alias)))
		return
	}

	// The providers' calls outlive the caller: a caller who hangs up is
	// still billed what the provider bills, so the answer is read to its
	// usage (bounded by the request timeout) after they left.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), snap.Failover.RequestTimeout)
	defer cancel()
	routes := snap.Models.Plan
	if pictures {
		routes = snap.Models.PicturePlan
	}
	plan := c.failover.Order(routes(choice.Alias))
	// Every model request is admitted against the caller's daily quota
	// here, before any provider is called; finish settles it.
	if aerr := x.admit(actx, plan); aerr != nil {
		x.fail(aerr)
		return
	}
	x.target = translate.Target{User: req.Caller.Upstream, CapOutput: x.res != nil}
	r := c.failover.Run(actx, ctx, upstream.Plan{RequestID: req.ID, Alias: choice.Alias, Routes: plan, Policy: snap.Failover}, x)
	if x.out.ran(r) {
		x.fail(r.Err)
	}
}

// ran takes the failover loop's result into o: an attempt that answered
// recorded what it served; a caller who left is a 499. failed says no
// route answered a caller still there, whose error is r.Err.
func (o *Outcome) ran(r upstream.Result) (failed bool) {
	o.Attempts = r.Attempts
	switch {
	case r.Route != nil:
	case r.Gone:
		o.Status = StatusClientClosed
	default:
		return true
	}
	return false
}

// read is the request: an HTTP front's body, bounded and parsed into buf,
// or the Conversation.
func (x *exchange) read(buf *bytes.Buffer) (*translate.Request, *translate.Error) {
	if x.req.Conversation != nil {
		return translate.NewConversation(x.req.Model, *x.req.Conversation), nil
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(x.req.Client, x.req.Body, x.req.Snapshot.MaxRequestBodyBytes)); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, translate.Errorf(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than this gateway's limit of %d bytes", mbe.Limit))
		}
		return nil, translate.Errorf(http.StatusBadRequest, "reading the request body: "+err.Error())
	}
	return translate.Parse(x.req.Front, buf.Bytes())
}

func (x *exchange) routingInput() routing.Input {
	text, lastUser := x.in.Text()
	return routing.Input{Tokens: routing.EstimateTokens(text), LastUser: lastUser, Role: x.req.Caller.Role}
}

// admit reserves the worst case of plan against the caller's daily quota,
// or refuses: 429 naming the limit, today's spend and when the window
// resets (Retry-After), or 503 when the quota cannot be checked.
func (x *exchange) admit(ctx context.Context, plan []*upstream.Route) *translate.Error {
	who, policy := x.req.Caller, x.req.Snapshot.Quotas
	if policy.Limits(who.Email).None() {
		return nil // nothing to reserve: spare the request the work
	}
	x.bound = quota.NewBound(x.in.Size(), x.in.Images(), x.in.OutputCap(), x.in.Choices())
	worst := make([]metering.Picodollars, len(plan))
	for i, rt := range plan {
		worst[i] = x.worstCase(rt)
	}
	res, aerr := x.core.admit(ctx, x.req, worst)
	x.res = res
	return aerr
}

// admit asks the caller's quota for worst, the worst case of each route
// of the plan in order.
func (c *Core) admit(ctx context.Context, req Request, worst []metering.Picodollars) (*quota.Reservation, *translate.Error) {
	who := req.Caller
	name := who.EndUser // notifications name the caller as the metrics do, else by the log pseudonym
	if name == "" {
		name = who.Hash
	}
	res, err := c.quota.Admit(ctx, req.Snapshot.Quotas, quota.Ask{User: who.Email, EndUser: who.EndUser, Name: name, RequestID: req.ID, Worst: worst})
	var ex *quota.Exceeded
	switch {
	case errors.As(err, &ex):
		return nil, &translate.Error{Status: http.StatusTooManyRequests, Msg: ex.Error(), Code: "daily_quota_exceeded", RetryAfter: ex.RetryAfter()}
	case err != nil:
		return nil, translate.Errorf(http.StatusServiceUnavailable, "the gateway cannot check your daily quota right now; try again shortly")
	}
	return res, nil
}

// Cover implements upstream.Attempts: a route may be tried when the
// caller's quota covers its worst case.
func (x *exchange) Cover(ctx context.Context, rt *upstream.Route) bool {
	if x.res == nil {
		return true
	}
	return x.res.Cover(ctx, x.worstCase(rt))
}

// worstCase is the most rt can cost for the request.
func (x *exchange) worstCase(rt *upstream.Route) metering.Picodollars {
	return x.bound.WorstCase(rt.Prices, rt.MaxTokens, x.imageTokens(rt))
}

// imageTokens bounds what one image costs on rt's provider.
func (x *exchange) imageTokens(rt *upstream.Route) int64 {
	if rt.Provider.Dialect() == translate.Anthropic {
		return quota.AnthropicImageTokens
	}
	return quota.OpenAIImageTokens
}

// FailedOver implements upstream.Attempts: it counts the failover.
func (x *exchange) FailedOver(from, to *upstream.Route, f *upstream.Failure) {
	x.core.metrics.failovers.WithLabelValues(from.Provider.Name(), to.Provider.Name(), string(f.Class)).Inc()
}

// fail ends the request with e: an HTTP front's caller gets it at once, in
// its dialect; a Conversation's, in End.
func (x *exchange) fail(e *translate.Error) {
	x.err = e
	if x.req.Client == nil {
		x.out.Status = e.Status
		return
	}
	x.out.Status = e.StatusIn(x.req.Front)
	translate.WriteError(x.req.Client, x.req.Front, e)
}
