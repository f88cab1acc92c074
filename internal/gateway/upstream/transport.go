package upstream

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// Transports keeps one tuned Transport per upstream across config reloads,
// so a reload does not throw away warm connections.
type Transports struct {
	mu sync.Mutex
	m  map[string]*http.Transport
}

func transportKey(p gatewayconfig.Provider) string {
	return p.Name + "\x00" + p.BaseURL + "\x00" + strconv.FormatInt(int64(p.Timeouts.Connect.Duration), 10)
}

// Get is p's Transport, made on first use.
func (t *Transports) Get(p gatewayconfig.Provider) *http.Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := transportKey(p)
	if tr, ok := t.m[key]; ok {
		return tr
	}
	if t.m == nil {
		t.m = map[string]*http.Transport{}
	}
	tr := newTransport(p.Timeouts.Connect.Duration)
	t.m[key] = tr
	return tr
}

// Retain closes the pools of upstreams that left the config. Requests in
// flight on them finish: only idle connections are closed.
func (t *Transports) Retain(ps []gatewayconfig.Provider) {
	keep := map[string]bool{}
	for _, p := range ps {
		keep[transportKey(p)] = true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, tr := range t.m {
		if !keep[k] {
			tr.CloseIdleConnections()
			delete(t.m, k)
		}
	}
}

// newTransport is tuned for a few upstreams carrying many long requests:
// a deep idle pool per host, HTTP/2 where offered, and a connect timeout
// that makes a dead upstream fail fast. The first-byte timeout is applied
// per attempt (see attempt), so it also covers the first SSE event.
func newTransport(connect time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   connect,
		ExpectContinueTimeout: time.Second,
		ReadBufferSize:        32 << 10,
		WriteBufferSize:       32 << 10,
	}
}
