package completion

import (
	"context"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/quota"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/routing"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
)

// A request billed while it streams revises its ledger row every
// billInterval or billEvents pieces of text, whichever comes first.
const (
	billInterval = time.Second
	billEvents   = 64
)

// checkpoint revises the provisional row when enough text has streamed.
func (x *exchange) checkpoint(rt *upstream.Route, reported metering.Usage) {
	if !x.billed || x.sinceBill == 0 || x.metered {
		return
	}
	if x.sinceBill >= billEvents || time.Since(x.lastBill) >= billInterval {
		x.bill(rt, reported)
	}
}

// bill writes the request's provisional ledger row: what it has cost so far.
func (x *exchange) bill(rt *upstream.Route, reported metering.Usage) {
	u := x.streamed(rt, reported)
	e := metering.Entry{Time: x.req.Start, RequestID: x.req.ID, ClientRequestID: x.req.ClientID, User: x.req.Caller.Email,
		Model: rt.Alias, Requested: x.out.Requested, Provider: rt.Provider.Name(), Usage: u, Cost: rt.Prices.Cost(u), Provisional: true}
	x.core.record(x.ctx, e)
	x.billed, x.sinceBill, x.lastBill = true, 0, time.Now()
}

// record queues a ledger row with a context that survives the caller
// hanging up; a failure is logged by the request's id, never its content.
func (c *Core) record(ctx context.Context, e metering.Entry) {
	if err := c.ledger.Record(context.WithoutCancel(ctx), e); err != nil {
		c.log.LogAttrs(ctx, slog.LevelError, "Failed to record spend", slog.String("request_id", e.RequestID), slog.String("error", err.Error()))
	}
}

// streamed is what an answer has cost so far, or what a cut one is billed:
// the provider's counts, and where it has not reported them (an
// OpenAI-compatible stream reports usage only at its end) the input's
// bound — the request's bytes and overheads, which its tokens never
// exceed, so the estimate is never below the input's cost — and the
// output streamed so far (at four bytes a token of a Conversation's text,
// or a token per event relayed).
func (x *exchange) streamed(rt *upstream.Route, u metering.Usage) metering.Usage {
	if u.Input+u.CacheRead+u.CacheWrite == 0 {
		b := quota.NewBound(x.in.Size(), x.in.Images(), 0, 1)
		u.Input = int64(satAdd(b.Input, b.Images*x.imageTokens(rt)))
	}
	u.Output = max(u.Output, routing.EstimateTokens(x.text), int64(x.events))
	return u
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// finish meters the request, if the answer's end has not already, and
// writes its metrics and one log line; then it tells the Observer it
// ended. The writes use a context that survives the caller hanging up.
func (x *exchange) finish(ctx context.Context) {
	o := &x.out
	o.Duration = time.Since(x.req.Start)
	x.meter(ctx)
	x.core.metrics.observe(x.req.Caller.EndUser, o)
	level := slog.LevelInfo
	if o.Status >= 500 {
		level = slog.LevelWarn
	}
	if x.core.log.Enabled(ctx, level) {
		x.logServed(ctx, level)
	}
	x.obs.End(*o, x.err)
}

// meter prices the outcome, settles the quota's charge and queues the
// ledger's final row, once. An HTTP caller's answer is metered as its last
// bytes are written (its terminal event, a whole reply's body), so a read
// of spend made as soon as the caller has the answer counts it; anything
// else at finish. From then the outcome is fixed: the metrics and the log
// line say what the ledger does.
func (x *exchange) meter(ctx context.Context) {
	if x.metered {
		return
	}
	x.metered = true
	o := &x.out
	if x.served != nil {
		if x.cut || x.billed && o.Status != http.StatusOK {
			// A cut answer bills at least what reached the caller, and
			// never nothing once the provider took the request.
			o.Usage = x.streamed(x.served, o.Usage)
		}
		o.Cost = x.served.Prices.Cost(o.Usage)
	}
	// The quota's settlement and the ledger's final row are one entry,
	// committed in one transaction: they cannot disagree.
	x.res.Settle(o.Cost)
	if o.Provider != "" && (o.Status == http.StatusOK || !o.Usage.IsZero() || x.billed) {
		e := metering.Entry{Time: x.req.Start, RequestID: x.req.ID, ClientRequestID: x.req.ClientID, User: x.req.Caller.Email,
			Model: o.Model, Requested: o.Requested, Provider: o.Provider, Usage: o.Usage, Cost: o.Cost, Status: o.Status, Lease: x.res.Lease()}
		x.core.record(ctx, e)
	}
}

// logServed writes the request's one log line: never the email, the
// prompt or the reply; the user hash, the route and numbers.
func (x *exchange) logServed(ctx context.Context, level slog.Level) {
	o := &x.out
	api := "chat"
	if x.req.Conversation == nil {
		api = x.req.Front.String()
	}
	attrs := []slog.Attr{
		slog.String("request_id", x.req.ID),
		slog.String("user", x.req.Caller.Hash),
		slog.String("api", api),
		slog.String("model", o.Model),
		slog.String("provider", o.Provider),
		slog.Int("status", o.Status),
		slog.Int("attempts", o.Attempts),
		slog.Int64("input_tokens", o.Usage.Input),
		slog.Int64("output_tokens", o.Usage.Output),
		slog.Int64("cache_read_tokens", o.Usage.CacheRead),
		slog.Int64("cache_write_tokens", o.Usage.CacheWrite),
		slog.String("cost_usd", o.Cost.String()),
		slog.Float64("duration_ms", float64(o.Duration.Microseconds())/1000),
		slog.Float64("ttft_ms", float64(o.TTFT.Microseconds())/1000),
	}
	if x.req.ClientID != "" {
		attrs = append(attrs, slog.String("client_request_id", x.req.ClientID))
	}
	if o.Status == http.StatusInternalServerError && x.err != nil {
		// The gateway's own failure (its store): the error names ids, never content.
		attrs = append(attrs, slog.String("error", x.err.Error()))
	}
	// Built by hand rather than with LogAttrs, which walks the stack for
	// the caller's PC on every call: the gateway's handler prints no
	// source, and this line is written once per request.
	r := slog.NewRecord(time.Now(), level, "Served request", 0)
	r.AddAttrs(attrs...)
	_ = x.core.log.Handler().Handle(ctx, r)
}
