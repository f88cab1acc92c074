package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// readiness answers ready only once the informer caches have synced and the
// controllers have started: the manager starts its probe server first, so a
// ping would say ready while nothing reconciles yet. A standby replica
// (leader election, not the leader) is ready once its caches are synced: it
// can take over at once, and a rolling update must not wait for it to lead.
func readiness(mgr ctrl.Manager, leaderElection bool) healthz.Checker {
	return func(req *http.Request) error {
		if !leaderElection {
			select {
			case <-mgr.Elected(): // closed once every controller was started
			default:
				return errors.New("the controllers have not started yet")
			}
		}
		// Checked after the controllers started, so that it covers the
		// informers they asked for.
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("the informer caches have not synced yet")
		}
		return nil
	}
}
