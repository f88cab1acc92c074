package upstream

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
type Health struct {
	mu sync.Mutex
	m  map[string]*providerHealth
}

type providerHealth struct {
	failures     int
	coolingUntil time.Time
}

func NewHealth() *Health { return &Health{m: map[string]*providerHealth{}} }

func (h *Health) get(name string) *providerHealth {
	p := h.m[name]
	if p == nil {
		p = &providerHealth{}
		h.m[name] = p
	}
	return p
}

// success resets the provider's count of consecutive failures.
func (h *Health) Success(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(name).failures = 0
}

// failure counts a failure; it reports whether the provider now cools down.
func (h *Health) Failure(name string, now time.Time, threshold int, cooldown, retryAfter time.Duration) bool {
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

func (h *Health) cooling(name string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.m[name]
	return p != nil && now.Before(p.coolingUntil)
}

// order drops the routes whose provider cools down, unless that would
// leave nothing: a benched provider is still better than no answer.
func (h *Health) Order(plan []*Route, now time.Time) []*Route {
	ready := plan[:0:0]
	for _, r := range plan {
		if !h.cooling(r.Provider.Name(), now) {
			ready = append(ready, r)
		}
	}
	if len(ready) == 0 {
		return plan
	}
	return ready
}
