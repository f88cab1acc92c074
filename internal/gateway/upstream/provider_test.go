package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// What each provider is sent: its key and version, the body's type, what
// it should answer in, nothing else; and no request shares its header map
// with the next.
func TestProviderHeaders(t *testing.T) {
	var got []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Del("Content-Length")
		h.Del("Accept-Encoding") // the Transport's own
		got = append(got, h)
	}))
	defer srv.Close()
	base := http.Header{"Content-Type": {"application/json"}, "User-Agent": {userAgent}}
	with := func(extra http.Header) http.Header {
		h := base.Clone()
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	for _, c := range []struct {
		typ    string
		key    string
		stream bool
		want   http.Header
	}{
		{gatewayconfig.ProviderAnthropic, "sk-ant", false, with(http.Header{"Accept": {"application/json"}, "Anthropic-Version": {anthropicVersion}, "X-Api-Key": {"sk-ant"}})},
		{gatewayconfig.ProviderAnthropic, "", true, with(http.Header{"Accept": {"text/event-stream"}, "Anthropic-Version": {anthropicVersion}})},
		{gatewayconfig.ProviderOpenAICompatible, "sk-oai", true, with(http.Header{"Accept": {"text/event-stream"}, "Authorization": {"Bearer sk-oai"}})},
		{gatewayconfig.ProviderOpenAICompatible, "", false, with(http.Header{"Accept": {"application/json"}})},
	} {
		p := NewProvider(gatewayconfig.Provider{Name: "p", Type: c.typ, BaseURL: srv.URL}, c.key, http.DefaultTransport)
		for range 2 {
			got = nil
			body := NewBody()
			body.Buffer().WriteString(`{}`)
			resp, err := p.Send(context.Background(), body, c.stream)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			body.Release()
			if len(got) != 1 || !reflect.DeepEqual(got[0], c.want) {
				t.Errorf("%s key %q stream %v: sent %v, want %v", c.typ, c.key, c.stream, got, c.want)
			}
		}
	}
	// A request's headers are its own: changing them leaves the next alone.
	p := NewProvider(gatewayconfig.Provider{Name: "p", Type: gatewayconfig.ProviderOpenAICompatible, BaseURL: srv.URL}, "k", http.DefaultTransport).(*openaiProvider)
	body := NewBody()
	defer body.Release()
	req, err := p.newRequest(context.Background(), body, false)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "changed")
	req.Header.Add("Accept", "text/plain")
	if req2, _ := p.newRequest(context.Background(), body, false); req2.Header.Get("Authorization") != "Bearer k" || len(req2.Header["Accept"]) != 1 {
		t.Errorf("a request's header change reached the next: %v", req2.Header)
	}
}
