package upstream

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"30":                            30 * time.Second,
		"1.5":                           1500 * time.Millisecond,
		"0":                             0,
		"soon":                          0,
		"Thu, 01 Jan 2026 00:01:00 GMT": time.Minute,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

func TestClassifyStatus(t *testing.T) {
	for status, want := range map[int]Class{
		400: ClassNone, 401: ClassNone, 404: ClassNone, 413: ClassNone, 422: ClassNone,
		429: ClassRateLimited, 500: ClassServerError, 501: ClassNone, 502: ClassServerError,
		503: ClassServerError, 504: ClassServerError, 529: ClassOverloaded,
	} {
		if got := ClassifyStatus(status); got != want {
			t.Errorf("%d: %q, want %q", status, got, want)
		}
	}
}

// fakeProvider is a provider that is only a name: what health and the
// failover loop look at.
type fakeProvider string

func (p fakeProvider) Name() string             { return string(p) }
func (fakeProvider) Dialect() translate.Dialect { return translate.OpenAI }
func (fakeProvider) Send(context.Context, *Body, bool) (*http.Response, error) {
	return nil, io.EOF
}

func TestHealth(t *testing.T) {
	h := NewHealth()
	now := time.Unix(1000, 0)
	plan := []*Route{{Provider: fakeProvider("a")}, {Provider: fakeProvider("b")}}
	for i := range 2 {
		if h.Failure("a", now, 3, time.Minute, 0) {
			t.Fatalf("benched after %d failures", i+1)
		}
	}
	h.Success("a") // a success resets the run
	for range 2 {
		h.Failure("a", now, 3, time.Minute, 0)
	}
	if !h.Failure("a", now, 3, time.Minute, 0) {
		t.Fatal("not benched after 3 consecutive failures")
	}
	if got := h.Order(plan, now.Add(59*time.Second)); len(got) != 1 || got[0].Provider.Name() != "b" {
		t.Errorf("during cooldown: %d routes", len(got))
	}
	if got := h.Order(plan, now.Add(time.Minute)); len(got) != 2 {
		t.Errorf("after cooldown: %d routes", len(got))
	}
	// Retry-After benches at once, for its own duration.
	h.Failure("b", now, 3, time.Minute, 5*time.Minute)
	if got := h.Order(plan, now.Add(4*time.Minute)); len(got) != 1 || got[0].Provider.Name() != "a" {
		t.Errorf("b benched by Retry-After: %d routes", len(got))
	}
	h.Failure("a", now.Add(3*time.Minute), 3, time.Minute, time.Hour)
	if got := h.Order(plan, now.Add(4*time.Minute)); len(got) != 2 {
		t.Errorf("everything benched: the plan must stay whole, got %d", len(got))
	}
	if !h.cooling("b", now.Add(4*time.Minute)) || h.cooling("b", now.Add(5*time.Minute)) {
		t.Error("Retry-After cooldown has the wrong length")
	}
}

func TestUpstreamBodyRelease(t *testing.T) {
	u := NewBody()
	u.buf.WriteString("hello")
	r1, _ := u.reader()
	r2, _ := u.reader() // a GetBody replay
	if b, _ := io.ReadAll(r1); string(b) != "hello" {
		t.Fatalf("%q", b)
	}
	r1.Close()
	u.Release() // the attempt is over, r2 still open
	if b, _ := io.ReadAll(r2); string(b) != "hello" {
		t.Fatalf("replay %q", b)
	}
	r2.Close()
	if _, err := r2.Read(make([]byte, 1)); err == nil {
		t.Error("read after close succeeded")
	}
	if _, err := u.reader(); err == nil {
		t.Error("reader after release succeeded")
	}
}

func TestEndpointURL(t *testing.T) {
	for base, want := range map[string]string{
		"https://api.anthropic.com":  "https://api.anthropic.com/v1/messages",
		"https://api.openai.com/v1/": "https://api.openai.com/v1/messages",
		"http://litellm:4000/":       "http://litellm:4000/v1/messages",
	} {
		if got := endpointURL(base, "/messages"); got != want {
			t.Errorf("%s: %s", base, got)
		}
	}
}
