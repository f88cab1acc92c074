package chatapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/completion"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/quota"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// Completer serves completions and pictures; the completion core does.
type Completer interface {
	Complete(ctx context.Context, req completion.Request, obs completion.Observer)
	// Generate makes pictures with an image model (see completion.Core.Generate).
	Generate(ctx context.Context, req completion.Request, ask translate.ImageRequest) ([]completion.Picture, completion.Outcome, error)
}

// Quotas reports a caller's standing against their daily quota.
type Quotas interface {
	Status(ctx context.Context, p *quota.Policy, email string) (quota.Status, error)
}

// Call is one identified /api request.
type Call struct {
	// ID names the request in logs.
	ID     string
	Caller completion.Caller
	// Config and Snapshot are the config the request started with.
	Config   *gatewayconfig.Config
	Snapshot *completion.Snapshot
	// KeyID is the personal API key the caller used; "" when they came
	// through the sidecar, signed in.
	KeyID string
}

// IsAdmin reports whether the caller has the Admin role.
func (c *Call) IsAdmin() bool { return c.Caller.Role == gatewayconfig.RoleAdmin }

// Handler serves an identified /api request.
type Handler func(w http.ResponseWriter, r *http.Request, c *Call)

// Options are what an API is given.
type Options struct {
	Store     store.Store
	Completer Completer
	Quotas    Quotas
	// Authed wraps a Handler with the gateway's identity check, answering
	// refusals with WriteError.
	Authed func(Handler) http.HandlerFunc
	// Current is the config in use now, for the privacy toggles (a route
	// whose toggle is off answers 404 before anyone is identified).
	Current func() *gatewayconfig.Config
	Log     *slog.Logger
	Now     func() time.Time
	// Keys is told of key changes made here; nil without keys.
	Keys KeyCache
}

// API serves the stateful chat: sessions, turns, privacy routes,
// export/import, usage and retention.
type API struct {
	store     store.Store
	completer Completer
	quotas    Quotas
	authed    func(Handler) http.HandlerFunc
	current   func() *gatewayconfig.Config
	log       *slog.Logger
	now       func() time.Time
	keys      KeyCache
}

// New returns the API over o.Store.
func New(o Options) *API {
	return &API{store: o.Store, completer: o.Completer, quotas: o.Quotas, authed: o.Authed, current: o.Current, log: o.Log, now: o.Now, keys: o.Keys}
}
