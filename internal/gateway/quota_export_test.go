package gateway

import "time"

// SetNotifyRetry shortens the notification retries for tests. Call it
// before the gateway serves.
func SetNotifyRetry(g *Gateway, attempts int, backoff time.Duration) {
	g.quota.SetNotifyRetry(attempts, backoff)
}
