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
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
)

// maxResponseSize bounds a non-streaming provider response.
const maxResponseSize = 64 << 20

// attemptResult is how one attempt ended.
type attemptResult struct {
	// failure is set when nothing reached the client: the caller may fail over.
	failure *upstreamFailure
	// unsupported is set when this provider's translate.Dialect cannot express the
	// request; the next provider may.
	unsupported *translate.Error
	// Otherwise the client got a response.
	status int
	usage  metering.Usage
	ttft   time.Duration
	// broken is the provider failure that cut a stream short.
	broken *upstreamFailure
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

	body := getBuffer()
	defer putBuffer(body)
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
			in.Model(), strings.Join(c.snap.aliases, ", "), c.snap.cfg.DefaultModel))
		e.Code = "model_not_found"
		fail(e)
		return
	}
	o.model = alias

	cfg := c.snap.cfg
	ctx, cancel := context.WithTimeout(r.Context(), cfg.Failover.RequestTimeout.Duration)
	defer cancel()
	plan := g.health.order(c.snap.plan(alias), g.now())
	// Every model request is admitted against the caller's daily quota
	// here, before any provider is called; finish settles it.
	res, aerr := g.admit(ctx, c, plan, in)
	if aerr != nil {
		fail(aerr)
		return
	}
	c.quota = res
	t := translate.Target{User: c.snap.upstreamIdentity(c.who.email), CapOutput: res != nil}
	var last *upstreamFailure
	var lastRoute *route
	var unsupported *translate.Error
	for i, rt := range plan {
		if !res.cover(ctx, rt) {
			// Cost-aware fallback: the remaining quota cannot cover this
			// pricier route, so the request ends with the failure so far.
			g.log.LogAttrs(ctx, slog.LevelInfo, "Skipped a fallback the quota cannot cover",
				slog.String("request_id", c.id), slog.String("model", rt.alias), slog.String("provider", rt.provider.Name()))
			break
		}
		attempts++
		res := g.attempt(ctx, r.Context(), w, c, in, rt, t)
		if res.unsupported != nil {
			unsupported = res.unsupported
			g.log.LogAttrs(ctx, slog.LevelDebug, "Skipped a provider that cannot express the request",
				slog.String("request_id", c.id), slog.String("provider", rt.provider.Name()), slog.String("reason", res.unsupported.Msg))
			continue
		}
		if res.failure == nil {
			o.model, o.provider, o.status, o.usage, o.ttft = rt.alias, rt.provider.Name(), res.status, res.usage, res.ttft
			o.cost = rt.prices.Cost(res.usage)
			switch {
			case res.broken != nil:
				g.providerFailed(c.snap, rt, res.broken)
			case res.status == http.StatusOK:
				g.health.success(rt.provider.Name())
			}
			return
		}
		f := res.failure
		switch {
		case r.Context().Err() != nil:
			o.status = statusClientClosed
			return
		case ctx.Err() != nil:
			fail(&translate.Error{Status: http.StatusGatewayTimeout, Msg: fmt.Sprintf("the request took longer than this gateway's limit of %s", cfg.Failover.RequestTimeout.Duration)})
			return
		}
		if f.class == classNone {
			g.health.success(rt.provider.Name()) // it answered; the request was at fault
			fail(f.clientError(rt.provider.Name()))
			return
		}
		g.providerFailed(c.snap, rt, f)
		last, lastRoute = f, rt
		if !c.snap.retryOn[f.class] {
			break
		}
		if i+1 < len(plan) {
			next := plan[i+1]
			g.metrics.failovers.WithLabelValues(rt.provider.Name(), next.provider.Name(), string(f.class)).Inc()
			g.log.LogAttrs(ctx, slog.LevelWarn, "Failed over",
				slog.String("request_id", c.id), slog.String("from", rt.provider.Name()), slog.String("to", next.provider.Name()),
				slog.String("model", rt.alias), slog.String("reason", string(f.class)), slog.String("error", f.Error()))
		}
	}
	switch {
	case last != nil:
		fail(last.clientError(lastRoute.provider.Name()))
	case unsupported != nil:
		fail(unsupported)
	default:
		fail(translate.Errorf(http.StatusBadGateway, "no provider serves model "+alias))
	}
}

// statusClientClosed marks a request whose client went away (nginx's 499).
const statusClientClosed = 499

func (g *Gateway) providerFailed(s *snapshot, rt *route, f *upstreamFailure) {
	cfg := s.cfg
	if g.health.failure(rt.provider.Name(), g.now(), int(cfg.Failover.FailureThreshold), cfg.Failover.Cooldown.Duration, f.retryAfter) {
		g.log.Warn("Benched a provider", slog.String("provider", rt.provider.Name()), slog.String("reason", string(f.class)))
	}
}

// attempt sends the request to one provider. It writes to the client only
// once the provider's answer is known to be good: the whole body for a
// non-streaming request, the first event for a stream. Until then a failure
// leaves the client untouched, so the caller can fail over.
func (g *Gateway) attempt(ctx, clientCtx context.Context, w http.ResponseWriter, c *call, in *translate.Request, rt *route, t translate.Target) attemptResult {
	tr := translate.For(in.Front(), rt.provider.Dialect())
	t.ModelID, t.MaxTokens = rt.modelID, rt.maxTokens
	body := newUpstreamBody()
	defer body.release()
	if aerr := tr.Request(in, t, body.buf); aerr != nil {
		return attemptResult{unsupported: aerr}
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// One timer covers the response headers and, for streams, the first
	// event: a provider that sends headers and then stalls is as dead as one
	// that sends nothing.
	timer := time.AfterFunc(rt.firstByte, func() { cancel(errFirstByteTimeout) })
	defer timer.Stop()

	resp, err := rt.provider.Send(actx, body, in.Stream())
	if err != nil {
		return attemptResult{failure: classifyTransport(actx, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		eb := getBuffer()
		defer putBuffer(eb)
		_, _ = eb.ReadFrom(io.LimitReader(resp.Body, 64<<10))
		return attemptResult{failure: statusFailure(resp.StatusCode, resp.Header, eb.Bytes())}
	}
	if in.Stream() {
		return g.relayStream(actx, clientCtx, timer, w, c, tr.Stream(in), resp.Body)
	}

	// A whole response follows its headers; the overall deadline bounds it.
	timer.Stop()
	up := getBuffer()
	defer putBuffer(up)
	if _, err := up.ReadFrom(io.LimitReader(resp.Body, maxResponseSize)); err != nil {
		return attemptResult{failure: classifyTransport(actx, err)}
	}
	out := getBuffer()
	defer putBuffer(out)
	usage, err := tr.Response(up.Bytes(), out)
	if err != nil {
		return attemptResult{failure: &upstreamFailure{class: classServerError, msg: "the provider's response could not be read", err: err}}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(out.Len()))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(out.Bytes()); err != nil {
		return attemptResult{status: statusClientClosed, usage: usage}
	}
	return attemptResult{status: http.StatusOK, usage: usage}
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
	c.quota.settle(ctx, o.cost)
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
