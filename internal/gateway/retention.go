package gateway

import (
	"context"
	"log/slog"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// RunRetention deletes, every interval until ctx ends, the sessions last
// active longer ago than sessions.retention (none when it is zero); the
// spend ledger and the audit log stay. With several replicas on
// PostgreSQL it also marks incomplete the replies whose writer died (see
// recoverCutoff); on one replica start-up already did.
func (g *Gateway) RunRetention(ctx context.Context, interval time.Duration) {
	if g.store == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		g.retentionPass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *Gateway) retentionPass(ctx context.Context) {
	cfg := g.snap.Load().cfg
	now := g.now()
	if keep := cfg.Sessions.Retention.Duration; keep > 0 {
		n, err := g.store.DeleteSessionsOlderThan(ctx, now.Add(-keep))
		switch {
		case err != nil && ctx.Err() == nil:
			g.log.Error("Retention failed", slog.String("error", err.Error()))
		case n > 0:
			g.log.Info("Deleted sessions past retention", slog.Int64("sessions", n), slog.Duration("retention", keep))
		}
	}
	if cfg.Sessions.Store.Type == gatewayconfig.StorePostgres {
		if n, err := g.store.RecoverIncomplete(ctx, recoverCutoff(cfg, now)); err != nil && ctx.Err() == nil {
			g.log.Error("Recovering abandoned replies failed", slog.String("error", err.Error()))
		} else if n > 0 {
			g.log.Info("Marked abandoned replies incomplete", slog.Int64("messages", n))
		}
	}
}
