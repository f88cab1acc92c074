package gateway

import (
	"sync"
	"time"
)

// maxRetryAfter caps how long one Retry-After can bench a provider, so a
// bogus header cannot take it out of service for a day.
const maxRetryAfter = time.Hour

// health is passive health per provider, kept across config reloads: a
// provider that failed failureThreshold times in a row, or asked to be left
// alone with Retry-After, sits out until its cooldown ends.
type health struct {
	mu sync.Mutex
	m  map[string]*providerHealth
}

type providerHealth struct {
	failures     int
	coolingUntil time.Time
}

func newHealth() *health { return &health{m: map[string]*providerHealth{}} }

func (h *health) get(name string) *providerHealth {
	p := h.m[name]
	if p == nil {
		p = &providerHealth{}
		h.m[name] = p
	}
	return p
}

// success resets the provider's count of consecutive failures.
func (h *health) success(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(name).failures = 0
}

// failure counts a failure; it reports whether the provider now cools down.
func (h *health) failure(name string, now time.Time, threshold int, cooldown, retryAfter time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.get(name)
	p.failures++
	until := time.Time{}
	if p.failures >= threshold {
		until = now.Add(cooldown)
		p.failures = 0
	}
	if retryAfter > 0 {
		if t := now.Add(min(retryAfter, maxRetryAfter)); t.After(until) {
			until = t
		}
	}
	if until.After(p.coolingUntil) {
		p.coolingUntil = until
		return true
	}
	return false
}

func (h *health) cooling(name string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.m[name]
	return p != nil && now.Before(p.coolingUntil)
}

// order drops the routes whose provider cools down, unless that would
// leave nothing: a benched provider is still better than no answer.
func (h *health) order(plan []*route, now time.Time) []*route {
	ready := plan[:0:0]
	for _, r := range plan {
		if !h.cooling(r.provider.Name(), now) {
			ready = append(ready, r)
		}
	}
	if len(ready) == 0 {
		return plan
	}
	return ready
}
