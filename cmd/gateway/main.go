// Command gateway serves the chat traffic of one ChatGateway: it loads the
// config the operator renders and proxies model requests to the providers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		configPath = flag.String("config", filepath.Join(gatewayconfig.ConfigDir, gatewayconfig.ConfigFileName), "path of the rendered gateway.yaml")
		listen     = flag.String("listen", "", "address to serve on (default: the config's listen)")
		metricsAt  = flag.String("metrics-listen", "", "address to serve /metrics on (default: the config's metricsListen)")
		drain      = flag.Duration("shutdown-timeout", 25*time.Second, "how long in-flight requests and streams may run after SIGTERM")
		poll       = flag.Duration("reload-interval", time.Second, "how often to check the config and its files for changes")
		logLevel   = flag.String("log-level", "info", "debug, info, warn or error")
		retention  = flag.Duration("retention-interval", time.Hour, "how often to delete sessions past sessions.retention")
		debug      = flag.String("debug-listen", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off by default, never on the service's port")
	)
	flag.Parse()
	tuneGC()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	out := newLogBuffer(os.Stderr, flushEvery)
	defer out.Close()
	log := slog.New(logHandler{newJSONLines(out, &slog.HandlerOptions{Level: level}), out})

	st, err := gateway.OpenStore(context.Background(), *configPath, time.Now())
	switch {
	case errors.Is(err, gateway.ErrNoMasterKey):
		log.Warn("Serving without the session store: the stateful /api routes are off", slog.String("reason", err.Error()))
	case err != nil:
		return fmt.Errorf("refusing to start: %w", err)
	default:
		defer st.Close()
	}
	g, err := gateway.New(gateway.Options{ConfigPath: *configPath, Logger: log, Store: st})
	if err != nil {
		return fmt.Errorf("refusing to start: %w", err)
	}
	addr, maddr := *listen, *metricsAt
	if addr == "" {
		addr = g.ListenAddr()
	}
	if maddr == "" {
		maddr = g.MetricsListenAddr()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go g.Watch(ctx, *poll)
	go g.RunRetention(ctx, *retention)
	go g.RunAPIKeys(ctx)
	// SIGHUP reloads at once, for people who do not want to wait a poll.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			_, _ = g.Reload() // logged and counted inside
		}
	}()

	if *debug != "" {
		go serveDebug(*debug, log)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: a streamed reply may legitimately run for minutes;
		// the config's failover.requestTimeout bounds every model request.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Metrics have a listener of their own (see Gateway.MetricsHandler).
	mln, err := net.Listen("tcp", maddr)
	if err != nil {
		_ = ln.Close()
		return err
	}
	msrv := &http.Server{
		Handler:           g.MetricsHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	go func() { served <- msrv.Serve(mln) }()
	log.Info("Serving metrics", slog.String("addr", mln.Addr().String()))
	log.Info("Serving", slog.String("addr", ln.Addr().String()))
	out.Flush() // what waits for the gateway to start reads this line

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the default way

	// Fail readiness first so new requests go elsewhere, then let the ones
	// in flight (streams included) finish within the bound.
	g.Drain()
	log.Info("Shutting down", slog.Duration("timeout", *drain))
	sctx, cancel := context.WithTimeout(context.Background(), *drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("Cut off requests still running at the shutdown timeout", slog.String("error", err.Error()))
		_ = srv.Close()
	}
	// Metrics last, so that Prometheus can read what the drain served.
	_ = msrv.Shutdown(sctx)
	for range 2 {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	// The requests are done: commit the spend still queued and return the
	// quota leases, so the quota's spend equals the ledger's.
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if err := g.Close(cctx); err != nil {
		log.Warn("Failed to commit the last spend before exiting", slog.String("error", err.Error()))
	}
	return nil
}

// serveDebug serves the profiler on its own listener, for measuring the
// gateway under load (hack/bench -profile).
func serveDebug(addr string, log *slog.Logger) {
	m := http.NewServeMux()
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("Serving the profiler", slog.String("addr", addr))
	if err := http.ListenAndServe(addr, m); err != nil {
		log.Warn("The profiler stopped", slog.String("error", err.Error()))
	}
}
