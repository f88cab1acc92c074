package upstream

import (
	"bytes"
	"context"
	"net/http"
	"strings"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// Provider sends requests, already in its own dialect, to one upstream.
type Provider interface {
	Name() string
	Dialect() translate.Dialect
	// Send posts body and returns once the response headers arrived. The
	// request carries only what the upstream needs: its key, its version
	// header and the body the gateway built; nothing from the caller.
	Send(ctx context.Context, body *Body, stream bool) (*http.Response, error)
}

// ImageSender is a provider that makes pictures: OpenAI's images API,
// POST /v1/images/generations (OpenAI, LiteLLM). The Messages API has none.
type ImageSender interface {
	SendImages(ctx context.Context, body *Body) (*http.Response, error)
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
	// headers are every request's, by whether it streams: built once, in
	// canonical form, and cloned per request (cheaper than a Set each).
	headers [2]http.Header
}

func newEndpoint(name, url, key string, rt http.RoundTripper, extra http.Header) endpoint {
	e := endpoint{name: name, url: url, key: key, transport: rt}
	for i, accept := range [2]string{"application/json", "text/event-stream"} {
		h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {userAgent}, "Accept": {accept}}
		for k, v := range extra {
			h[http.CanonicalHeaderKey(k)] = v
		}
		e.headers[i] = h
	}
	return e
}

// copiedBody is the largest body sent from a copy rather than from the
// pooled buffer itself.
const copiedBody = 64 << 10

func (e *endpoint) newRequest(ctx context.Context, body *Body, stream bool) (*http.Request, error) {
	var req *http.Request
	if body.len() <= copiedBody {
		// The Transport writes the headers and a body it knows is in
		// memory (a *bytes.Reader) in one write; any other body costs a
		// write of its own, after a flush of the headers. A copy is
		// cheaper than that second system call, and the Transport may
		// read it whenever it likes (NewRequest sets GetBody to replay it).
		b, err := body.copyBytes()
		if err != nil {
			return nil, err
		}
		if req, err = http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(b)); err != nil {
			return nil, err
		}
	} else {
		rd, err := body.reader()
		if err != nil {
			return nil, err
		}
		if req, err = http.NewRequestWithContext(ctx, http.MethodPost, e.url, rd); err != nil {
			rd.Close()
			return nil, err
		}
		req.ContentLength = int64(body.len())
		// GetBody lets the Transport replay the body when a reused keep-alive
		// connection turns out dead before anything was written.
		req.GetBody = body.reader
	}
	if stream {
		req.Header = e.headers[1].Clone()
	} else {
		req.Header = e.headers[0].Clone()
	}
	return req, nil
}

// anthropicProvider speaks the Messages API.
type anthropicProvider struct{ endpoint }

func (p *anthropicProvider) Name() string               { return p.name }
func (p *anthropicProvider) Dialect() translate.Dialect { return translate.Anthropic }

func (p *anthropicProvider) Send(ctx context.Context, body *Body, stream bool) (*http.Response, error) {
	req, err := p.newRequest(ctx, body, stream)
	if err != nil {
		return nil, err
	}
	return p.transport.RoundTrip(req)
}

// openaiProvider speaks chat completions (OpenAI, LiteLLM, vLLM, Ollama…)
// and the images API.
type openaiProvider struct {
	endpoint
	imagesURL string
}

func (p *openaiProvider) Name() string               { return p.name }
func (p *openaiProvider) Dialect() translate.Dialect { return translate.OpenAI }

func (p *openaiProvider) Send(ctx context.Context, body *Body, stream bool) (*http.Response, error) {
	req, err := p.newRequest(ctx, body, stream)
	if err != nil {
		return nil, err
	}
	return p.transport.RoundTrip(req)
}

func (p *openaiProvider) SendImages(ctx context.Context, body *Body) (*http.Response, error) {
	e := p.endpoint
	e.url = p.imagesURL
	req, err := e.newRequest(ctx, body, false)
	if err != nil {
		return nil, err
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

// NewProvider is the configured upstream p, authenticating with key over rt.
func NewProvider(p gatewayconfig.Provider, key string, rt http.RoundTripper) Provider {
	if p.Type == gatewayconfig.ProviderAnthropic {
		h := http.Header{"anthropic-version": {anthropicVersion}}
		if key != "" {
			h["x-api-key"] = []string{key}
		}
		return &anthropicProvider{newEndpoint(p.Name, endpointURL(p.BaseURL, "/messages"), key, rt, h)}
	}
	var h http.Header
	if key != "" {
		h = http.Header{"Authorization": {"Bearer " + key}}
	}
	return &openaiProvider{endpoint: newEndpoint(p.Name, endpointURL(p.BaseURL, "/chat/completions"), key, rt, h),
		imagesURL: endpointURL(p.BaseURL, "/images/generations")}
}
