package chatapi

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
// RecoverCutoff); on one replica start-up already did.
func (a *API) RunRetention(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		a.retentionPass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *API) retentionPass(ctx context.Context) {
	cfg := a.current()
	now := a.now()
	if keep := cfg.Sessions.Retention.Duration; keep > 0 {
		n, err := a.store.DeleteSessionsOlderThan(ctx, now.Add(-keep))
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Error("Retention failed", slog.String("error", err.Error()))
		case n > 0:
			a.log.Info("Deleted sessions past retention", slog.Int64("sessions", n), slog.Duration("retention", keep))
		}
	}
	if cfg.Sessions.Store.Type == gatewayconfig.StorePostgres {
		if n, err := a.store.RecoverIncomplete(ctx, RecoverCutoff(cfg, now)); err != nil && ctx.Err() == nil {
			a.log.Error("Recovering abandoned replies failed", slog.String("error", err.Error()))
		} else if n > 0 {
			a.log.Info("Marked abandoned replies incomplete", slog.Int64("messages", n))
		}
	}
}

// RecoverCutoff is the last-save time before which a streaming reply is
// taken for dead. One replica (SQLite) owns every stream, so at start-up
// all of them are dead. Replicas sharing PostgreSQL must leave each
// other's live streams alone: no model request outlives
// failover.requestTimeout, so a reply not saved for longer than that, plus
// a minute of slack, has no writer.
func RecoverCutoff(cfg *gatewayconfig.Config, now time.Time) time.Time {
	if cfg.Sessions.Store.Type != gatewayconfig.StorePostgres {
		return now
	}
	return now.Add(-cfg.Failover.RequestTimeout.Duration - time.Minute)
}
