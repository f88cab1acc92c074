package upstream

import (
	"bytes"
	"context"
	"net/http"
)

// TokenCounter is a Provider that counts a request's input tokens itself:
// Anthropic's POST /v1/messages/count_tokens, which is free and is not a
// completion. OpenAI-compatible providers have no such endpoint.
type TokenCounter interface {
	// CountTokens posts body, a count_tokens request naming the provider's
	// model id, and returns once the response headers arrived.
	CountTokens(ctx context.Context, body []byte) (*http.Response, error)
}

func (p *anthropicProvider) CountTokens(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/count_tokens", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("User-Agent", userAgent)
	h.Set("anthropic-version", anthropicVersion)
	if p.key != "" {
		h.Set("x-api-key", p.key)
	}
	return p.transport.RoundTrip(req)
}
