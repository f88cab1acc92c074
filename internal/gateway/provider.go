package gateway

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// Provider sends requests, already in its own translate.Dialect, to one upstream.
type Provider interface {
	Name() string
	Dialect() translate.Dialect
	// Send posts body and returns once the response headers arrived. The
	// request carries only what the upstream needs: its key, its version
	// header and the body the gateway built; nothing from the caller.
	Send(ctx context.Context, body *upstreamBody, stream bool) (*http.Response, error)
}

// anthropicVersion is the Messages API version the translators speak.
const anthropicVersion = "2023-06-01"

const userAgent = "chatgateway"

// endpoint is an upstream URL with its key and connection pool.
type endpoint struct {
	name      string
	url       string
	key       string
	transport http.RoundTripper
}

func (e *endpoint) newRequest(ctx context.Context, body *upstreamBody, stream bool) (*http.Request, error) {
	rd, err := body.reader()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, rd)
	if err != nil {
		rd.Close()
		return nil, err
	}
	req.ContentLength = int64(body.len())
	// GetBody lets the Transport replay the body when a reused keep-alive
	// connection turns out dead before anything was written.
	req.GetBody = body.reader
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", userAgent)
	if stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	return req, nil
}

// anthropicProvider speaks the Messages API.
type anthropicProvider struct{ endpoint }

func (p *anthropicProvider) Name() string               { return p.name }
func (p *anthropicProvider) Dialect() translate.Dialect { return translate.Anthropic }

func (p *anthropicProvider) Send(ctx context.Context, body *upstreamBody, stream bool) (*http.Response, error) {
	req, err := p.newRequest(ctx, body, stream)
	if err != nil {
		return nil, err
	}
	req.Header.Set("anthropic-version", anthropicVersion)
	if p.key != "" {
		req.Header.Set("x-api-key", p.key)
	}
	return p.transport.RoundTrip(req)
}

// openaiProvider speaks chat completions (OpenAI, LiteLLM, vLLM, Ollama…).
type openaiProvider struct{ endpoint }

func (p *openaiProvider) Name() string               { return p.name }
func (p *openaiProvider) Dialect() translate.Dialect { return translate.OpenAI }

func (p *openaiProvider) Send(ctx context.Context, body *upstreamBody, stream bool) (*http.Response, error) {
	req, err := p.newRequest(ctx, body, stream)
	if err != nil {
		return nil, err
	}
	if p.key != "" {
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
	return p.transport.RoundTrip(req)
}

// endpointURL appends the API path to a base URL that may or may not end in
// /v1 (https://api.openai.com/v1 and http://litellm:4000 are both common).
func endpointURL(base, path string) string {
	base = strings.TrimRight(base, "/")
	if strings.HasSuffix(base, "/v1") {
		return base + path
	}
	return base + "/v1" + path
}

func newProvider(p gatewayconfig.Provider, key string, rt http.RoundTripper) Provider {
	if p.Type == gatewayconfig.ProviderAnthropic {
		return &anthropicProvider{endpoint{name: p.Name, url: endpointURL(p.BaseURL, "/messages"), key: key, transport: rt}}
	}
	return &openaiProvider{endpoint{name: p.Name, url: endpointURL(p.BaseURL, "/chat/completions"), key: key, transport: rt}}
}

// transports keeps one tuned Transport per upstream across config reloads,
// so a reload does not throw away warm connections.
type transports struct {
	mu sync.Mutex
	m  map[string]*http.Transport
}

func transportKey(p gatewayconfig.Provider) string {
	return p.Name + "\x00" + p.BaseURL + "\x00" + strconv.FormatInt(int64(p.Timeouts.Connect.Duration), 10)
}

func (t *transports) get(p gatewayconfig.Provider) *http.Transport {
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

// retain closes the pools of upstreams that left the config. Requests in
// flight on them finish: only idle connections are closed.
func (t *transports) retain(ps []gatewayconfig.Provider) {
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
