package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/chatapi"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/completion"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/quota"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// Options configure a Gateway.
type Options struct {
	// ConfigPath is the rendered gateway.yaml.
	ConfigPath string
	// Logger receives structured logs; the default discards them.
	Logger *slog.Logger
	// Ledger, for tests, keeps the spend rows of a gateway without a
	// Store; by default such a gateway keeps none (its spend is in the
	// metrics and the request log), so its memory does not grow with
	// every request.
	Ledger *metering.MemoryLedger
	// Now is the clock, for tests of the token grace period.
	Now func() time.Time
	// Store keeps sessions, the spend ledger and the audit log (see
	// OpenStore). Without one the /api routes are absent; with one and no
	// Ledger, spend goes to the store's ledger.
	Store store.Store
	// Quotas holds the quota leases and settled spend; the default is
	// Store's, else in memory (right for one replica only).
	Quotas store.Quotas
	// LedgerLinger is how long the ledger writer waits to gather a batch
	// (default metering.DefaultLinger); tests lengthen it to show that
	// every read of spend commits the queue first.
	LedgerLinger time.Duration
}

// Gateway is the HTTP server's handler and its config holder.
type Gateway struct {
	configPath string
	log        *slog.Logger
	ledger     *metering.Writer
	now        func() time.Time
	store      store.Store

	quota *quota.Keeper
	core  *completion.Core
	chat  *chatapi.API // nil without a store
	keys  *keyCache    // nil without a store

	snap       atomic.Pointer[snapshot]
	reloadMu   sync.Mutex
	lastInputs *inputs
	broken     bool   // the last inputs read did not load
	tokenErr   string // the last failure of refreshTokens, logged once
	transports *upstream.Transports
	metrics    *metrics
	draining   atomic.Bool
	mux        *http.ServeMux
	handler    http.Handler // mux behind the surface checks (surface.go)
}

// New loads the config and the files it names. It fails, naming the field
// or file at fault, when they are not usable: a gateway that cannot
// authenticate or reach a provider must not start.
func New(opts Options) (*Gateway, error) {
	g := &Gateway{
		configPath: opts.ConfigPath,
		log:        opts.Logger,
		now:        opts.Now,
		store:      opts.Store,
		transports: &upstream.Transports{},
		metrics:    newMetrics(),
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	charges := opts.Quotas
	if charges == nil && g.store != nil {
		charges = g.store
	}
	if charges == nil {
		charges = store.NewMemoryQuotas()
	}
	// Every request's spend goes through one group-committed writer: its
	// ledger row and its quota settlement in one transaction per batch.
	var sink metering.Sink = metering.StoreSink{Store: charges}
	if g.store == nil {
		sink = metering.MemorySink{Ledger: opts.Ledger, Quotas: charges}
	} else if opts.Quotas == nil {
		sink = metering.StoreSink{Store: g.store}
	}
	// The writer reports commits to the keeper, made just below; it makes
	// none before a request has been admitted by it.
	g.ledger = metering.NewWriter(sink, metering.WriterOptions{
		OnCommit: func(b []metering.Entry, err error) { g.quota.Committed(b, err) }, Log: g.log, Linger: opts.LedgerLinger})
	// Reads of spend commit the queued ledger first (spendreads.go).
	g.quota = quota.New(quota.Options{Store: committedQuotas{charges, g.ledger.Flush}, Registerer: g.metrics.reg, Log: g.log, Now: g.now})
	g.core = completion.New(completion.Options{Ledger: g.ledger, Quota: g.quota, Registerer: g.metrics.reg, Log: g.log, Now: g.now})
	if _, err := g.Reload(); err != nil {
		return nil, err
	}
	g.routes()
	return g, nil
}

func (g *Gateway) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	m.HandleFunc("GET /readyz", g.serveReady)
	m.HandleFunc("POST /v1/messages", g.authed(translate.Anthropic, g.serveCompletion))
	m.HandleFunc("POST /v1/messages/count_tokens", g.authed(translate.Anthropic, g.serveCountTokens))
	m.HandleFunc("POST /v1/chat/completions", g.authed(translate.OpenAI, g.serveCompletion))
	m.HandleFunc("POST /v1/images/generations", g.authed(translate.OpenAI, g.serveImages))
	m.HandleFunc("GET /v1/models", g.authedModels(g.serveModels))
	m.HandleFunc("GET /v1/models/{id}", g.authedModels(g.serveModels))
	if g.store != nil {
		g.keys = newKeyCache(g.store, g.now, g.log)
		g.chat = chatapi.New(chatapi.Options{
			Store: committedStore{g.store, g.ledger.Flush}, Completer: g.core, Quotas: g.quota, Authed: g.apiAuthed,
			Current: func() *gatewayconfig.Config { return g.snap.Load().cfg }, Log: g.log, Now: g.now,
			Keys: g.keys,
		})
		g.chat.Mount(m)
	}
	chatapi.MountPage(m, g.apiAuthed)
	m.HandleFunc("/", g.serveNotFound)
	g.mux = m
	g.handler = g.guard(m)
}

// Handler serves the API, the page and the health checks: every route but
// /metrics, which answers 404 here like any unknown path.
func (g *Gateway) Handler() http.Handler { return g.handler }

// MetricsHandler serves GET /metrics, for the metrics listener alone: the
// metrics name people (end_user) and what they spend, which is for
// Prometheus, not for everyone who can sign in to the page.
func (g *Gateway) MetricsHandler() http.Handler {
	m := http.NewServeMux()
	m.Handle("GET /metrics", g.metrics.handler())
	return m
}

// ListenAddr is the address from the config (a restart applies a change).
func (g *Gateway) ListenAddr() string { return g.snap.Load().cfg.Listen }

// MetricsListenAddr is the metrics listener's address from the config.
func (g *Gateway) MetricsListenAddr() string { return g.snap.Load().cfg.MetricsListen }

// Drain makes /readyz fail so that load balancers stop sending new requests
// while the server finishes the ones in flight.
func (g *Gateway) Drain() { g.draining.Store(true) }

func (g *Gateway) serveReady(w http.ResponseWriter, _ *http.Request) {
	if g.draining.Load() || g.snap.Load() == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Reload re-reads the config and the files it names, and swaps in a new
// snapshot when they changed and load cleanly. A bad change keeps the last
// good snapshot, is logged and counted; changed reports whether anything
// differed from the last attempt.
func (g *Gateway) Reload() (changed bool, err error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	in := readInputs(g.configPath, g.lastInputs)
	if g.lastInputs != nil && in.digest == g.lastInputs.digest {
		if g.broken {
			// The inputs that fail may hide a token change from the
			// digest (a config that does not parse names no files).
			g.refreshTokens()
		}
		return false, nil
	}
	g.lastInputs = in
	s, err := buildSnapshot(in, g.transports, g.now())
	g.broken = err != nil
	if err != nil {
		if g.snap.Load() != nil {
			g.metrics.reloadErrors.Inc()
			g.log.Error("Kept the last good config: the changed config does not load", slog.String("error", err.Error()))
			g.refreshTokens()
		}
		return true, err
	}
	if prev := g.snap.Load(); prev != nil && (prev.cfg.Listen != s.cfg.Listen || prev.cfg.MetricsListen != s.cfg.MetricsListen) {
		g.log.Warn("Ignored the changed listen addresses until the next restart", slog.String("listen", prev.cfg.Listen), slog.String("metrics_listen", prev.cfg.MetricsListen))
	}
	g.snap.Store(s)
	g.transports.Retain(s.cfg.Providers)
	endUsers := make([]string, 0, len(s.users))
	for email := range s.users {
		endUsers = append(endUsers, s.endUser(email))
	}
	g.core.Precreate(endUsers, s.core)
	g.metrics.reloads.Inc()
	g.metrics.lastReload.Set(float64(s.loadedAt.UnixNano()) / 1e9)
	g.log.Info("Loaded config", slog.String("gateway", s.cfg.Gateway.Namespace+"/"+s.cfg.Gateway.Name),
		slog.Int("providers", len(s.cfg.Providers)), slog.Int("models", len(s.core.Models.Aliases())), slog.Int("users", len(s.users)))
	return true, nil
}

// refreshTokens applies a change of the gateway token files to the last
// good snapshot while the rest of the inputs fail to load: a revoked token
// (the kill switch) must not stay valid because, say, a provider's key file
// is broken. The token files read are the ones the snapshot in force names.
// Called with reloadMu held.
func (g *Gateway) refreshTokens() {
	prev := g.snap.Load()
	t, err := readTokenFiles(prev.cfg.Auth)
	if err != nil {
		// The token's own failure: the rotation that writes it must fix
		// it; the current token stays rather than locking everyone out.
		if err.Error() != g.tokenErr {
			g.log.Error("Kept the gateway token in force: its files do not load", slog.String("error", err.Error()))
		}
		g.tokenErr = err.Error()
		return
	}
	g.tokenErr = ""
	if t.equal(prev.tokens) {
		return
	}
	next := *prev
	next.tokens = t
	g.snap.Store(&next)
	g.log.Warn("Applied the changed gateway token; the rest of the changed config still does not load")
}

// Watch polls the config and its files every interval until ctx ends.
// Polling content rather than watching inotify events needs no watch to
// re-arm after Kubernetes' atomic volume updates (a "..data" symlink swap);
// a poll reads each volume through one resolution of its "..data"
// (volumeReader), so it sees an update whole or not at all.
func (g *Gateway) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = g.Reload() // logged and counted inside
		}
	}
}

// QuotaStatus returns email's spend today (settled charges), live
// reservations and limits, under the current config.
func (g *Gateway) QuotaStatus(ctx context.Context, email string) (quota.Status, error) {
	return g.quota.Status(ctx, g.snap.Load().core.Quotas, email)
}

// RunRetention deletes, every interval until ctx ends, the sessions past
// sessions.retention (see chatapi.API.RunRetention); nothing without a store.
func (g *Gateway) RunRetention(ctx context.Context, interval time.Duration) {
	if g.chat != nil {
		g.chat.RunRetention(ctx, interval)
	}
}

// Flush commits the spend queued so far and returns the quota leases that
// are idle; tests call it to see the store settle.
func (g *Gateway) Flush(ctx context.Context) error {
	err := g.ledger.Flush(ctx)
	g.quota.Flush(ctx)
	return err
}

// Close commits the spend still queued and returns the quota leases, so
// that after a SIGTERM the quota's spend equals the ledger's. Call it once
// the server has finished the requests in flight; the Gateway must not
// serve after.
func (g *Gateway) Close(ctx context.Context) error {
	err := g.ledger.Close(ctx)
	g.quota.Close(ctx)
	return err
}

// RunAPIKeys keeps the personal API keys' cache fresh and writes when keys
// were last used (apikeys.go), until ctx ends; nothing without a store.
// Without it the cache is refreshed by the requests that find it stale.
func (g *Gateway) RunAPIKeys(ctx context.Context) {
	if g.keys != nil {
		g.keys.run(ctx)
	}
}

// Ledger returns the spend ledger.
func (g *Gateway) Ledger() metering.Ledger { return g.ledger }
