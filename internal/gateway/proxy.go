package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/quota"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
)

// maxResponseSize bounds a non-streaming provider response.
const maxResponseSize = 64 << 20

// attemptResult is what an attempt that reached the client produced.
type attemptResult struct {
	status int
	usage  metering.Usage
	ttft   time.Duration
}

// serveCompletion is the request path: read, resolve, try each provider of
// the plan until one answers, meter.
func (g *Gateway) serveCompletion(w http.ResponseWriter, r *http.Request, c *call) {
	g.metrics.inFlight.Inc()
	defer g.metrics.inFlight.Dec()
	o := &outcome{endUser: c.snap.endUser(c.who.email)}
	attempts := 0
	defer func() { g.finish(r.Context(), c, o, attempts) }()
	fail := func(e *translate.Error) {
		o.status = e.StatusIn(c.front)
		translate.WriteError(w, c.front, e)
	}

	body := upstream.GetBuffer()
	defer upstream.PutBuffer(body)
	if _, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, c.snap.cfg.MaxRequestBodyBytes)); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			fail(translate.Errorf(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than this gateway's limit of %d bytes", mbe.Limit)))
			return
		}
		fail(translate.Errorf(http.StatusBadRequest, "reading the request body: "+err.Error()))
		return
	}
	in, aerr := translate.Parse(c.front, body.Bytes())
	if aerr != nil {
		fail(aerr)
		return
	}
	alias, requested, ok := g.resolveModel(c, in)
	o.requested = requested
	if !ok {
		// The unknown name is not used as a label: callers choose it freely.
		e := translate.Errorf(http.StatusNotFound, fmt.Sprintf("model %q is not served by this gateway; use one of %s (GET /v1/models lists them), or omit model for the default, %s",
			in.Model(), strings.Join(c.snap.models.Aliases(), ", "), c.snap.cfg.DefaultModel))
		e.Code = "model_not_found"
		fail(e)
		return
	}
	o.model = alias

	cfg := c.snap.cfg
	ctx, cancel := context.WithTimeout(r.Context(), cfg.Failover.RequestTimeout.Duration)
	defer cancel()
	plan := g.failover.Order(c.snap.models.Plan(alias))
	// Every model request is admitted against the caller's daily quota
	// here, before any provider is called; finish settles it.
	bound := quota.NewBound(in.Size(), in.OutputCap(), in.Choices())
	res, aerr := g.admit(ctx, c, plan, bound)
	if aerr != nil {
		fail(aerr)
		return
	}
	c.quota = res
	t := translate.Target{User: c.snap.upstreamIdentity(c.who.email), CapOutput: res != nil}
	var served attemptResult
	out := g.failover.Run(ctx, r.Context(), upstream.Plan{
		RequestID: c.id, Alias: alias, Routes: plan, Policy: c.snap.failover,
		Cover: func(ctx context.Context, rt *upstream.Route) bool {
			return res.Cover(ctx, bound.WorstCase(rt.Prices, rt.MaxTokens))
		},
		FailedOver: func(from, to *upstream.Route, f *upstream.Failure) {
			g.metrics.failovers.WithLabelValues(from.Provider.Name(), to.Provider.Name(), string(f.Class)).Inc()
		},
	}, func(ctx context.Context, rt *upstream.Route) upstream.Attempt {
		a, res := g.attempt(ctx, r.Context(), w, c, in, rt, t)
		served = res
		return a
	})
	attempts = out.Attempts
	switch {
	case out.Route != nil:
		rt := out.Route
		o.model, o.provider, o.status, o.usage, o.ttft = rt.Alias, rt.Provider.Name(), served.status, served.usage, served.ttft
		o.cost = rt.Prices.Cost(served.usage)
	case out.Gone:
		o.status = statusClientClosed
	default:
		fail(out.Err)
	}
}

// admit reserves the worst case of plan against the caller's daily quota,
// or refuses: 429 naming the limit, today's spend and when the window
// resets (Retry-After), or 503 when the quota cannot be checked.
func (g *Gateway) admit(ctx context.Context, c *call, plan []*upstream.Route, b quota.Bound) (*quota.Reservation, *translate.Error) {
	if c.snap.quotas.Limits(c.who.email).None() {
		return nil, nil // nothing to reserve: spare the request the work
	}
	worst := make([]metering.Picodollars, len(plan))
	for i, rt := range plan {
		worst[i] = b.WorstCase(rt.Prices, rt.MaxTokens)
	}
	res, err := g.quota.Admit(ctx, c.snap.quotas, quota.Ask{User: c.who.email, EndUser: c.snap.endUser(c.who.email), Name: notifyName(c), RequestID: c.id, Worst: worst})
	var ex *quota.Exceeded
	switch {
	case errors.As(err, &ex):
		return nil, &translate.Error{Status: http.StatusTooManyRequests, Msg: ex.Error(), Code: "daily_quota_exceeded", RetryAfter: ex.RetryAfter()}
	case err != nil:
		return nil, translate.Errorf(http.StatusServiceUnavailable, "the gateway cannot check your daily quota right now; try again shortly")
	}
	return res, nil
}

// statusClientClosed marks a request whose client went away (nginx's 499).
const statusClientClosed = 499

// attempt sends the request to one provider. It writes to the client only
// once the provider's answer is known to be good: the whole body for a
// non-streaming request, the first event for a stream. Until then a failure
// leaves the client untouched, so the caller can fail over.
func (g *Gateway) attempt(ctx, clientCtx context.Context, w http.ResponseWriter, c *call, in *translate.Request, rt *upstream.Route, t translate.Target) (upstream.Attempt, attemptResult) {
	tr := translate.For(in.Front(), rt.Provider.Dialect())
	t.ModelID, t.MaxTokens = rt.ModelID, rt.MaxTokens
	body := upstream.NewBody()
	defer body.Release()
	if aerr := tr.Request(in, t, body.Buffer()); aerr != nil {
		return upstream.Attempt{Unsupported: aerr}, attemptResult{}
	}
	call, f := rt.Send(ctx, body, in.Stream())
	if f != nil {
		return upstream.Attempt{Failure: f}, attemptResult{}
	}
	defer call.Close()
	if in.Stream() {
		return g.relayStream(clientCtx, call, w, c, tr.Stream(in))
	}

	// A whole response follows its headers; the overall deadline bounds it.
	call.FirstByte()
	up := upstream.GetBuffer()
	defer upstream.PutBuffer(up)
	if _, err := up.ReadFrom(io.LimitReader(call.Resp.Body, maxResponseSize)); err != nil {
		return upstream.Attempt{Failure: call.Failure(err)}, attemptResult{}
	}
	out := upstream.GetBuffer()
	defer upstream.PutBuffer(out)
	usage, err := tr.Response(up.Bytes(), out)
	if err != nil {
		return upstream.Attempt{Failure: &upstream.Failure{Class: upstream.ClassServerError, Msg: "the provider's response could not be read", Err: err}}, attemptResult{}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(out.Len()))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(out.Bytes()); err != nil {
		return upstream.Attempt{}, attemptResult{status: statusClientClosed, usage: usage}
	}
	return upstream.Attempt{OK: true}, attemptResult{status: http.StatusOK, usage: usage}
}

// finish meters a request: metrics, the ledger, one log line. Costs are
// recorded with a context that survives the client hanging up.
func (g *Gateway) finish(ctx context.Context, c *call, o *outcome, attempts int) {
	o.duration = time.Since(c.start)
	c.metered = o
	g.metrics.observe(o)
	if o.provider != "" && (o.status == http.StatusOK || !o.usage.IsZero()) {
		e := metering.Entry{Time: c.start, RequestID: c.id, User: c.who.email, Model: o.model, Provider: o.provider, Usage: o.usage, Cost: o.cost, Status: o.status}
		if err := g.ledger.Record(context.WithoutCancel(ctx), e); err != nil {
			g.log.Error("Failed to record spend", slog.String("request_id", c.id), slog.String("error", err.Error()))
		}
	}
	c.quota.Settle(ctx, o.cost)
	level := slog.LevelInfo
	if o.status >= 500 {
		level = slog.LevelWarn
	}
	// Never the email, the prompt or the reply: the user hash, the route and numbers.
	g.log.LogAttrs(ctx, level, "Served request",
		slog.String("request_id", c.id),
		slog.String("user", c.who.hash),
		slog.String("api", c.front.String()),
		slog.String("model", o.model),
		slog.String("provider", o.provider),
		slog.Int("status", o.status),
		slog.Int("attempts", attempts),
		slog.Int64("input_tokens", o.usage.Input),
		slog.Int64("output_tokens", o.usage.Output),
		slog.Int64("cache_read_tokens", o.usage.CacheRead),
		slog.Int64("cache_write_tokens", o.usage.CacheWrite),
		slog.String("cost_usd", o.cost.String()),
		slog.Float64("duration_ms", float64(o.duration.Microseconds())/1000),
		slog.Float64("ttft_ms", float64(o.ttft.Microseconds())/1000),
	)
}
