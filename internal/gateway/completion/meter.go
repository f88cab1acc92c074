package completion

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
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
	if !x.billed || x.sinceBill == 0 {
		return
	}
	if x.sinceBill >= billEvents || time.Since(x.lastBill) >= billInterval {
		x.bill(rt, reported)
	}
}

// bill writes the request's provisional ledger row: what it has cost so far.
func (x *exchange) bill(rt *upstream.Route, reported metering.Usage) {
	u := x.streamed(reported)
	e := metering.Entry{Time: x.req.Start, RequestID: x.req.ID, User: x.req.Caller.Email, Model: rt.Alias, Provider: rt.Provider.Name(),
		Usage: u, Cost: rt.Prices.Cost(u), Provisional: true}
	if err := x.core.ledger.Record(context.WithoutCancel(x.ctx), e); err != nil {
		x.core.log.LogAttrs(x.ctx, slog.LevelError, "Failed to record spend", slog.String("request_id", x.req.ID), slog.String("error", err.Error()))
	}
	x.billed, x.sinceBill, x.lastBill = true, 0, time.Now()
}

// streamed is what the answer has cost so far: the provider's counts, or
// estimates where it has not reported yet (OpenAI-compatible streams
// report usage only at their end).
func (x *exchange) streamed(u metering.Usage) metering.Usage {
	if u.Input+u.CacheRead+u.CacheWrite == 0 {
		u.Input = routing.EstimateTokens(x.in.Size()) + routing.MessageOverheadTokens
	}
	u.Output = max(u.Output, routing.EstimateTokens(x.text))
	return u
}

// finish meters the request — metrics, the ledger, the quota settlement,
// one log line — and then tells the Observer it ended. The writes use a
// context that survives the caller hanging up.
func (x *exchange) finish(ctx context.Context) {
	o := &x.out
	o.Duration = time.Since(x.req.Start)
	if x.served != nil {
		if x.billed && o.Status != http.StatusOK {
			// A cut answer billed while streaming bills at least what
			// reached the caller.
			o.Usage = x.streamed(o.Usage)
		}
		o.Cost = x.served.Prices.Cost(o.Usage)
	}
	who := x.req.Caller
	x.core.metrics.observe(who.EndUser, o)
	if o.Provider != "" && (o.Status == http.StatusOK || !o.Usage.IsZero() || x.billed) {
		e := metering.Entry{Time: x.req.Start, RequestID: x.req.ID, User: who.Email, Model: o.Model, Provider: o.Provider, Usage: o.Usage, Cost: o.Cost, Status: o.Status}
		if err := x.core.ledger.Record(context.WithoutCancel(ctx), e); err != nil {
			x.core.log.LogAttrs(ctx, slog.LevelError, "Failed to record spend", slog.String("request_id", x.req.ID), slog.String("error", err.Error()))
		}
	}
	x.res.Settle(ctx, o.Cost)
	level := slog.LevelInfo
	if o.Status >= 500 {
		level = slog.LevelWarn
	}
	api := "chat"
	if x.req.Conversation == nil {
		api = x.req.Front.String()
	}
	// Never the email, the prompt or the reply: the user hash, the route and numbers.
	attrs := []slog.Attr{
		slog.String("request_id", x.req.ID),
		slog.String("user", who.Hash),
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
	if o.Status == http.StatusInternalServerError && x.err != nil {
		// The gateway's own failure (its store): the error names ids, never content.
		attrs = append(attrs, slog.String("error", x.err.Error()))
	}
	x.core.log.LogAttrs(ctx, level, "Served request", attrs...)
	x.obs.End(*o, x.err)
}
