package upstream

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
)

// TestFailoverRun drives the loop with scripted attempts.
func TestFailoverRun(t *testing.T) {
	a, b, c := &Route{Alias: "m", Provider: fakeProvider("a")}, &Route{Alias: "m", Provider: fakeProvider("b")}, &Route{Alias: "fb", Provider: fakeProvider("c")}
	policy := Policy{RetryOn: map[Class]bool{ClassServerError: true, ClassRateLimited: true}, FailureThreshold: 3, Cooldown: time.Minute, RequestTimeout: time.Second}
	fail := func(cl Class, status int) Attempt {
		return Attempt{Failure: &Failure{Class: cl, Status: status, Msg: "boom"}}
	}
	cases := []struct {
		name      string
		script    map[string]Attempt // by provider; absent: OK
		cover     func(*Route) bool
		served    string
		attempts  int
		status    int
		failovers string
	}{
		{"first answers", nil, nil, "a", 1, 0, ""},
		{"fails over on a retried class", map[string]Attempt{"a": fail(ClassServerError, 500)}, nil, "b", 2, 0, "a>b:ServerError"},
		{"into the fallback", map[string]Attempt{"a": fail(ClassServerError, 503), "b": fail(ClassRateLimited, 429)}, nil, "c", 3, 0, "a>b:ServerError b>c:RateLimited"},
		{"not on other classes", map[string]Attempt{"a": fail(ClassOverloaded, 529)}, nil, "", 1, 529, ""},
		{"never on the request's fault", map[string]Attempt{"a": fail(ClassNone, 400)}, nil, "", 1, 400, ""},
		{"everything failed", map[string]Attempt{"a": fail(ClassServerError, 500), "b": fail(ClassServerError, 500), "c": fail(ClassRateLimited, 429)}, nil, "", 3, 429, "a>b:ServerError b>c:ServerError"},
		{"an unsupported provider is skipped", map[string]Attempt{"a": {Unsupported: translate.Errorf(400, "no tools here")}}, nil, "b", 2, 0, ""},
		{"only unsupported", map[string]Attempt{"a": {Unsupported: translate.Errorf(400, "x")}, "b": {Unsupported: translate.Errorf(400, "x")}, "c": {Unsupported: translate.Errorf(400, "no tools here")}}, nil, "", 3, 400, ""},
		{"cover ends the plan", map[string]Attempt{"a": fail(ClassServerError, 500)}, func(rt *Route) bool { return rt != b }, "", 1, 502, "a>b:ServerError"},
		{"a broken stream is served", map[string]Attempt{"a": {Broken: &Failure{Class: ClassConnectionError}}}, nil, "a", 1, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFailover(slog.New(slog.DiscardHandler), time.Now)
			sc := &script{attempts: tc.script, cover: tc.cover}
			p := Plan{RequestID: "r", Alias: "m", Routes: []*Route{a, b, c}, Policy: policy}
			res := f.Run(context.Background(), context.Background(), p, sc)
			failovers := sc.failovers
			served := ""
			if res.Route != nil {
				served = res.Route.Provider.Name()
			}
			status := 0
			if res.Err != nil {
				status = res.Err.Status
			}
			if served != tc.served || res.Attempts != tc.attempts || status != tc.status || strings.Join(failovers, " ") != tc.failovers {
				t.Errorf("served %q after %d attempts, status %d, failovers %q; want %q, %d, %d, %q",
					served, res.Attempts, status, failovers, tc.served, tc.attempts, tc.status, tc.failovers)
			}
		})
	}
}

// TestFailoverRunEnds: a caller that left, or a request past its deadline,
// stops the plan at once.
func TestFailoverRunEnds(t *testing.T) {
	rts := []*Route{{Alias: "m", Provider: fakeProvider("a")}, {Alias: "m", Provider: fakeProvider("b")}}
	p := Plan{Alias: "m", Routes: rts, Policy: Policy{RetryOn: map[Class]bool{ClassTimeout: true}, FailureThreshold: 3, RequestTimeout: time.Second}}
	f := NewFailover(slog.New(slog.DiscardHandler), time.Now)
	gone, leave := context.WithCancel(context.Background())
	res := f.Run(context.Background(), gone, p, &script{try: func() Attempt {
		leave()
		return Attempt{Failure: &Failure{Class: ClassTimeout}}
	}})
	if !res.Gone || res.Err != nil || res.Attempts != 1 {
		t.Errorf("caller gone: %+v", res)
	}
	late, cancel := context.WithCancel(context.Background())
	res = f.Run(late, context.Background(), p, &script{try: func() Attempt {
		cancel()
		return Attempt{Failure: &Failure{Class: ClassTimeout}}
	}})
	if res.Err == nil || res.Err.Status != http.StatusGatewayTimeout || res.Attempts != 1 {
		t.Errorf("past the deadline: %+v", res)
	}
}

// script plays a request's part in a plan: scripted attempts by provider
// (absent: OK), an optional cover check, and a record of the failovers.
type script struct {
	attempts  map[string]Attempt
	try       func() Attempt
	cover     func(*Route) bool
	failovers []string
}

func (s *script) Try(_ context.Context, rt *Route) Attempt {
	if s.try != nil {
		return s.try()
	}
	if a, ok := s.attempts[rt.Provider.Name()]; ok {
		return a
	}
	return Attempt{OK: true}
}

func (s *script) Cover(_ context.Context, rt *Route) bool { return s.cover == nil || s.cover(rt) }

func (s *script) FailedOver(from, to *Route, f *Failure) {
	s.failovers = append(s.failovers, from.Provider.Name()+">"+to.Provider.Name()+":"+string(f.Class))
}
