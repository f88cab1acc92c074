package completion

import (
	"io"
	"net/http"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/quota"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/routing"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// Caller is an identified, allowlisted person, in every form the core
// needs. Only the ledger and the quota see the email.
type Caller struct {
	Email string
	Role  string
	// Hash names the caller in logs (never the email).
	Hash string
	// EndUser is the end_user metric label; "" when metrics name nobody.
	EndUser string
	// Upstream is the caller as providers see them: the email or its keyed hash.
	Upstream string
}

// Snapshot is what the core needs from one config load. A request keeps
// the Snapshot it started with, so a reload never changes it halfway.
type Snapshot struct {
	Models   *routing.Table
	Quotas   *quota.Policy
	Failover upstream.Policy
	// MaxRequestBodyBytes bounds an HTTP front's body.
	MaxRequestBodyBytes int64
}

// NewSnapshot resolves a validated config; providers[i] serves
// c.Providers[i]. Errors name the field at fault.
func NewSnapshot(c *gatewayconfig.Config, providers []upstream.Provider) (*Snapshot, error) {
	models, err := routing.NewTable(c, providers)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{
		Models: models,
		Quotas: quota.NewPolicy(c),
		Failover: upstream.Policy{
			RetryOn:          map[upstream.Class]bool{},
			FailureThreshold: int(c.Failover.FailureThreshold),
			Cooldown:         c.Failover.Cooldown.Duration,
			RequestTimeout:   c.Failover.RequestTimeout.Duration,
		},
		MaxRequestBodyBytes: c.MaxRequestBodyBytes,
	}
	for _, r := range c.Failover.RetryOn {
		s.Failover.RetryOn[upstream.Class(r)] = true
	}
	return s, nil
}

// Request is one completion for an identified caller: either an HTTP
// front's (Front, Body and Client set) or a Conversation the gateway built.
type Request struct {
	// ID is the gateway's own id for the request: it names the request in
	// logs and keys its ledger row.
	ID string
	// ClientID is the caller's X-Request-Id, if sane: kept beside ID in
	// the ledger and logs for correlation only, since callers choose it.
	ClientID string
	Start    time.Time
	Caller   Caller
	Snapshot *Snapshot

	// An HTTP front: the caller's dialect, the body to read (bounded by
	// MaxRequestBodyBytes), and where the answer and errors are written.
	Front  translate.Dialect
	Body   io.ReadCloser
	Client http.ResponseWriter

	// Conversation is a request built inside the gateway, for Model (an
	// alias, a model id or routing.Auto). Its reply reaches the Observer
	// as Text; errors reach End.
	Conversation *translate.Conversation
	Model        string
	// BillWhileStreaming writes the ledger row when the answer begins and
	// revises it as text arrives, so a process killed mid-stream leaves
	// the request billed for what was streamed; a reply cut short is
	// billed at least its estimate.
	BillWhileStreaming bool
}

// Observer hears what happens to a request. The calls come from the
// goroutine that called Complete, in order: at most one Begin, then Text
// and Usage, then one End.
type Observer interface {
	// Begin is called when rt's answer is good and before anything of it
	// reaches the caller; u is what the provider has reported so far. An
	// error ends the request as the caller's failure (the provider is not
	// blamed) and reaches End.
	Begin(rt *upstream.Route, u metering.Usage) error
	// Text is a piece of a Conversation's reply.
	Text(delta string)
	// Usage is the provider's counts whenever they change.
	Usage(u metering.Usage)
	// End is called exactly once, last, after metering and the quota
	// settlement. err is nil for a complete answer; a *translate.Error for
	// a refusal or a provider failure; or the error Begin returned.
	End(o Outcome, err error)
}

// Leaver is an Observer told when its caller went away mid-answer. The
// core reads on to the provider's usage block to bill the request, which
// can take until the request timeout (a stalled provider), and End comes
// only then; Left comes at once, from another goroutine, concurrently
// with the other calls, at most once and always before End: the observer
// orders it with Text and Usage itself.
type Leaver interface {
	Left()
}

// Outcome is what one request did: the metrics, the ledger row and the
// log line say the same.
type Outcome struct {
	// Model is the alias that served, else the one asked for.
	Model string
	// Requested is the alias asked for, routing.Auto, or "" for an unknown
	// name: a label value, so never what the caller typed.
	Requested string
	// Provider answered; empty when none did.
	Provider string
	// Status is the HTTP status as the requests metric counts it: 200, a
	// refusal's or a failure's, 499 when the caller went away, 500 when
	// the Observer failed.
	Status int
	Usage  metering.Usage
	// Images counts the pictures an image model made.
	Images   int64
	Cost     metering.Picodollars
	Duration time.Duration
	// TTFT is zero unless a stream reached the caller.
	TTFT     time.Duration
	Attempts int
}

// StatusClientClosed marks a request whose caller went away (nginx's 499).
const StatusClientClosed = 499

type nopObserver struct{}

func (nopObserver) Begin(*upstream.Route, metering.Usage) error { return nil }
func (nopObserver) Text(string)                                 {}
func (nopObserver) Usage(metering.Usage)                        {}
func (nopObserver) End(Outcome, error)                          {}
