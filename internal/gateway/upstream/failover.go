package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
)

// Policy is one config snapshot's failover settings.
type Policy struct {
	// RetryOn are the classes that move a request to the next route.
	RetryOn          map[Class]bool
	FailureThreshold int
	Cooldown         time.Duration
	// RequestTimeout bounds a whole request, every attempt included.
	RequestTimeout time.Duration
}

// Plan is one request's routes, in the order to try them.
type Plan struct {
	// RequestID names the request in logs.
	RequestID string
	// Alias is the model the routes serve (fallbacks may serve others).
	Alias  string
	Routes []*Route
	Policy Policy
}

// Attempts is what running a plan needs from the request it serves: the
// attempts themselves, and the hooks through which the rest of the
// gateway takes part (the quota, the failover metric).
type Attempts interface {
	// Try makes one attempt of rt under ctx, the request's deadline.
	Try(ctx context.Context, rt *Route) Attempt
	// Cover reports whether rt may be tried at all (the caller's quota
	// can pay for it); the first route it refuses ends the plan.
	Cover(ctx context.Context, rt *Route) bool
	// FailedOver is told when an attempt failed and the next route is tried.
	FailedOver(from, to *Route, f *Failure)
}

// Attempt is how one try of a route ended.
type Attempt struct {
	// Failure is set when nothing reached the caller: the plan may go on.
	Failure *Failure
	// Unsupported is set when this provider's dialect cannot express the
	// request; the next provider's may.
	Unsupported *translate.Error
	// Otherwise the caller got an answer. OK: all of it, from a provider
	// that did its part; Broken: the provider failed after the first byte.
	OK     bool
	Broken *Failure
}

// Result is how a plan ended.
type Result struct {
	// Route is the route whose answer reached the caller; nil when none did.
	Route    *Route
	Attempts int
	// Err is the caller's error when no route answered and the caller is
	// still there.
	Err *translate.Error
	// Gone: the caller went away before an answer.
	Gone bool
}

// Failover runs plans. It keeps the providers' passive health across config
// reloads.
type Failover struct {
	health *Health
	now    func() time.Time
	log    *slog.Logger
}

// NewFailover runs plans with a health record of its own.
func NewFailover(log *slog.Logger, now func() time.Time) *Failover {
	return &Failover{health: NewHealth(), now: now, log: log}
}

// Order drops the routes whose provider cools down, unless that would
// leave nothing.
func (f *Failover) Order(routes []*Route) []*Route { return f.health.Order(routes, f.now()) }

// Run tries the plan's routes in order until one answers; ctx is the
// request's deadline, callerCtx the caller's connection. Failover happens
// only before the first byte has reached the caller (Try says so by
// returning a Failure), only on the policy's classes, and never past a
// route Cover refuses.
func (f *Failover) Run(ctx, callerCtx context.Context, p Plan, at Attempts) Result {
	var (
		res         Result
		last        *Failure
		lastRoute   *Route
		unsupported *translate.Error
	)
	for i, rt := range p.Routes {
		if !at.Cover(ctx, rt) {
			// Cost-aware fallback: the remaining quota cannot cover this
			// pricier route, so the request ends with the failure so far.
			f.log.LogAttrs(ctx, slog.LevelInfo, "Skipped a fallback the quota cannot cover",
				slog.String("request_id", p.RequestID), slog.String("model", rt.Alias), slog.String("provider", rt.Provider.Name()))
			break
		}
		res.Attempts++
		a := at.Try(ctx, rt)
		if a.Unsupported != nil {
			unsupported = a.Unsupported
			f.log.LogAttrs(ctx, slog.LevelDebug, "Skipped a provider that cannot express the request",
				slog.String("request_id", p.RequestID), slog.String("provider", rt.Provider.Name()), slog.String("reason", a.Unsupported.Msg))
			continue
		}
		if a.Failure == nil {
			res.Route = rt
			switch {
			case a.Broken != nil:
				f.failed(p, rt, a.Broken)
			case a.OK:
				f.health.Success(rt.Provider.Name())
			}
			return res
		}
		fl := a.Failure
		switch {
		case callerCtx.Err() != nil:
			res.Gone = true
			return res
		case ctx.Err() != nil:
			res.Err = &translate.Error{Status: http.StatusGatewayTimeout, Msg: fmt.Sprintf("the request took longer than this gateway's limit of %s", p.Policy.RequestTimeout)}
			return res
		}
		if fl.Class == ClassNone {
			f.health.Success(rt.Provider.Name()) // it answered; the request was at fault
			res.Err = fl.ClientError(rt.Provider.Name())
			return res
		}
		f.failed(p, rt, fl)
		last, lastRoute = fl, rt
		if !p.Policy.RetryOn[fl.Class] {
			break
		}
		if i+1 < len(p.Routes) {
			next := p.Routes[i+1]
			at.FailedOver(rt, next, fl)
			f.log.LogAttrs(ctx, slog.LevelWarn, "Failed over",
				slog.String("request_id", p.RequestID), slog.String("from", rt.Provider.Name()), slog.String("to", next.Provider.Name()),
				slog.String("model", rt.Alias), slog.String("reason", string(fl.Class)), slog.String("error", fl.Error()))
		}
	}
	switch {
	case last != nil:
		res.Err = last.ClientError(lastRoute.Provider.Name())
	case unsupported != nil:
		res.Err = unsupported
	default:
		res.Err = translate.Errorf(http.StatusBadGateway, "no provider serves model "+p.Alias)
	}
	return res
}

// failed counts a provider failure toward its cooldown.
func (f *Failover) failed(p Plan, rt *Route, fl *Failure) {
	if f.health.Failure(rt.Provider.Name(), f.now(), p.Policy.FailureThreshold, p.Policy.Cooldown, fl.RetryAfter) {
		f.log.Warn("Benched a provider", slog.String("provider", rt.Provider.Name()), slog.String("reason", string(fl.Class)))
	}
}
