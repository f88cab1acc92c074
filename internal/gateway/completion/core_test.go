package completion_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/completion"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/quota"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

const (
	alice   = "alice@example.com"
	sonnet  = "claude-sonnet-4-5-20250929"
	gptID   = "gpt-4o-mini"
	hardUSD = "1"
)

// rig is a core in front of two simulators: "both" is served by the
// Anthropic one, then the OpenAI-compatible one.
type rig struct {
	core    *completion.Core
	snap    *completion.Snapshot
	ledger  *metering.MemoryLedger
	writer  *metering.Writer
	keeper  *quota.Keeper
	reg     *prometheus.Registry
	anth    *providersim.Server
	oai     *providersim.Server
	timeout time.Duration
}

func newRig(t *testing.T, sim providersim.Options) *rig {
	t.Helper()
	r := &rig{ledger: &metering.MemoryLedger{}, reg: prometheus.NewRegistry()}
	var anthURL, oaiURL string
	r.anth, anthURL = providersim.Start(t, sim)
	r.oai, oaiURL = providersim.Start(t, sim)
	price := gatewayconfig.Pricing{InputPerMTok: "3", OutputPerMTok: "15", CacheReadPerMTok: "0.3", CacheWritePerMTok: "3.75"}
	timeouts := gatewayconfig.Timeouts{Connect: gatewayconfig.D(2 * time.Second), FirstByte: gatewayconfig.D(5 * time.Second)}
	cfg := &gatewayconfig.Config{
		DefaultModel: "both",
		Providers: []gatewayconfig.Provider{
			{Name: "anthropic", Type: gatewayconfig.ProviderAnthropic, BaseURL: anthURL, Timeouts: timeouts,
				Models: []gatewayconfig.Model{{Name: "both", ID: sonnet, Pricing: price}}},
			{Name: "openai", Type: gatewayconfig.ProviderOpenAICompatible, BaseURL: oaiURL, Timeouts: timeouts,
				Models: []gatewayconfig.Model{{Name: "both", ID: gptID, Pricing: price}}},
		},
		Failover: gatewayconfig.Failover{RetryOn: []string{"ServerError", "Overloaded", "ConnectionError"}, FailureThreshold: 3,
			Cooldown: gatewayconfig.D(time.Minute), RequestTimeout: gatewayconfig.D(20 * time.Second)},
		Quotas:              gatewayconfig.Quotas{DailyHardUSD: hardUSD},
		MaxRequestBodyBytes: 1 << 20,
	}
	var providers []upstream.Provider
	tr := &upstream.Transports{}
	for _, p := range cfg.Providers {
		providers = append(providers, upstream.NewProvider(p, "", tr.Get(p)))
	}
	snap, err := completion.NewSnapshot(cfg, providers)
	if err != nil {
		t.Fatal(err)
	}
	r.snap = snap
	log := slog.New(slog.DiscardHandler)
	charges := store.NewMemoryQuotas()
	r.keeper = quota.New(quota.Options{Store: charges, Registerer: r.reg, Log: log, Now: time.Now})
	r.writer = metering.NewWriter(metering.MemorySink{Ledger: r.ledger, Quotas: charges}, metering.WriterOptions{OnCommit: r.keeper.Committed, Log: log})
	t.Cleanup(func() {
		_ = r.writer.Close(context.Background())
		r.keeper.Close(context.Background())
	})
	r.core = completion.New(completion.Options{Ledger: r.writer, Quota: r.keeper, Registerer: r.reg, Log: log, Now: time.Now})
	return r
}

// recorder is an Observer that writes down every call, checking the
// contract as it goes: Begin at most once and first, End exactly once and
// last, and by End the request metered and its quota settled.
type recorder struct {
	t        *testing.T
	r        *rig
	id       string
	calls    []string
	text     strings.Builder
	begins   int
	ends     int
	failWith error // Begin fails with it
	outcome  completion.Outcome
	err      error
}

func (o *recorder) Begin(rt *upstream.Route, u metering.Usage) error {
	o.begins++
	if o.ends > 0 || o.text.Len() > 0 || o.begins > 1 {
		o.t.Errorf("Begin out of order: %v", o.calls)
	}
	o.calls = append(o.calls, fmt.Sprintf("begin %s/%s", rt.Provider.Name(), rt.Alias))
	return o.failWith
}

func (o *recorder) Text(d string) {
	if o.begins == 0 || o.ends > 0 {
		o.t.Errorf("Text outside Begin…End: %v", o.calls)
	}
	if o.text.Len() == 0 {
		o.calls = append(o.calls, "text")
	}
	o.text.WriteString(d)
}

func (o *recorder) Usage(metering.Usage) {
	if o.ends > 0 {
		o.t.Error("Usage after End")
	}
}

// Left is a Leaver's: told at once when the caller goes away.
func (o *recorder) Left() {
	if o.ends > 0 {
		o.t.Error("Left after End")
	}
	o.calls = append(o.calls, "left")
}

func (o *recorder) End(out completion.Outcome, err error) {
	o.ends++
	o.calls = append(o.calls, fmt.Sprintf("end %d", out.Status))
	o.outcome, o.err = out, err
	// By End, the request's final row (when it billed) is queued for the
	// ledger writer, and the quota holds nothing for it once committed.
	if err := o.r.writer.Flush(context.Background()); err != nil {
		o.t.Error(err)
	}
	var final bool
	for _, e := range o.r.ledger.Entries() {
		final = final || e.RequestID == o.id && !e.Provisional
	}
	if wantRow := out.Provider != "" && (out.Status == http.StatusOK || !out.Usage.IsZero()); final != wantRow {
		o.t.Errorf("at End the ledger has a final row: %v, want %v", final, wantRow)
	}
	st, serr := o.r.keeper.Status(context.Background(), o.r.snap.Quotas, alice)
	if serr != nil || st.ReservedPicodollars != 0 {
		o.t.Errorf("at End the quota still holds %d: %v", st.ReservedPicodollars, serr)
	}
}

func (r *rig) converse(t *testing.T, text string, obs *recorder) {
	t.Helper()
	obs.t, obs.r, obs.id = t, r, fmt.Sprintf("turn-%d", time.Now().UnixNano())
	r.core.Complete(context.Background(), completion.Request{
		ID: obs.id, Start: time.Now(), Snapshot: r.snap,
		Caller:       completion.Caller{Email: alice, EndUser: alice, Hash: "h", Upstream: alice},
		Conversation: &translate.Conversation{MaxTokens: 100, Messages: []translate.Message{{Role: "user", Text: text}}},
		Model:        "both", BillWhileStreaming: true,
	}, obs)
	if obs.ends != 1 {
		t.Fatalf("End called %d times", obs.ends)
	}
}

// TestCoreObserver drives a Conversation through the core with a recording
// observer.
func TestCoreObserver(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		r := newRig(t, providersim.Options{ReplyWords: 20, Chunks: 5})
		obs := &recorder{}
		r.converse(t, "hello there", obs)
		if got := strings.Join(obs.calls, ", "); got != "begin anthropic/both, text, end 200" || obs.err != nil {
			t.Fatalf("calls %q, err %v", got, obs.err)
		}
		if !strings.HasPrefix(obs.text.String(), "Simulated reply from "+sonnet) {
			t.Errorf("text %q", obs.text.String())
		}
		o := obs.outcome
		if o.Provider != "anthropic" || o.Model != "both" || o.Attempts != 1 || o.Usage.Input != 2 || o.Usage.Output != 20 || o.Cost != metering.Picodollars(2*3_000_000+20*15_000_000) {
			t.Errorf("outcome %+v", o)
		}
		entries := r.ledger.Entries()
		if len(entries) != 1 || entries[0].Provisional || entries[0].Cost != o.Cost || entries[0].Status != 200 {
			t.Errorf("ledger %+v", entries)
		}
		if n := requests(t, r, alice, "anthropic", "200"); n != 1 {
			t.Errorf("requests metric %v", n)
		}
	})

	t.Run("failover", func(t *testing.T) {
		r := newRig(t, providersim.Options{})
		r.anth.Enqueue(providersim.Fault{Status: 503})
		obs := &recorder{}
		r.converse(t, "hello", obs)
		if got := strings.Join(obs.calls, ", "); got != "begin openai/both, text, end 200" || obs.err != nil {
			t.Fatalf("calls %q, err %v", got, obs.err)
		}
		if !strings.HasPrefix(obs.text.String(), "Simulated reply from "+gptID) || obs.outcome.Attempts != 2 || obs.outcome.Provider != "openai" {
			t.Errorf("text %q outcome %+v", obs.text.String(), obs.outcome)
		}
		if n := counter(t, r.reg, metricnames.Failovers, map[string]string{metricnames.LabelFrom: "anthropic", metricnames.LabelTo: "openai", metricnames.LabelReason: "ServerError"}); n != 1 {
			t.Errorf("failovers %v", n)
		}
	})

	t.Run("mid-stream cut", func(t *testing.T) {
		r := newRig(t, providersim.Options{ReplyWords: 40, Chunks: 8})
		r.anth.Enqueue(providersim.Fault{ResetAfterEvents: 6})
		obs := &recorder{}
		r.core.Complete(context.Background(), completion.Request{
			ID: "cut", Start: time.Now(), Snapshot: r.snap, Caller: completion.Caller{Email: alice, Upstream: alice},
			Conversation: &translate.Conversation{MaxTokens: 100, Messages: []translate.Message{{Role: "user", Text: "hello"}}},
			Model:        "both", BillWhileStreaming: true,
		}, withT(obs, t, r, "cut"))
		var aerr *translate.Error
		if got := strings.Join(obs.calls, ", "); got != "begin anthropic/both, text, end 502" || !errors.As(obs.err, &aerr) || !strings.Contains(aerr.Msg, "mid-stream") {
			t.Fatalf("calls %q, err %v", got, obs.err)
		}
		// Output tokens come only in the stream's last events: the cut
		// stream is billed its estimate, at least what reached the caller,
		// and the input tokens message_start reported.
		o := obs.outcome
		if want := int64(len(obs.text.String())+3) / 4; obs.text.Len() == 0 || o.Usage.Output < want || o.Usage.Input != 1 || o.Cost == 0 {
			t.Errorf("outcome %+v, want at least %d output tokens", o, want)
		}
		entries := r.ledger.Entries()
		if len(entries) != 1 || entries[0].Status != 502 || entries[0].Provisional || entries[0].Usage != o.Usage {
			t.Errorf("ledger %+v", entries)
		}
	})

	t.Run("store failure", func(t *testing.T) {
		r := newRig(t, providersim.Options{})
		storeDown := errors.New("database is locked")
		obs := &recorder{failWith: storeDown}
		r.converse(t, "hello", obs)
		if got := strings.Join(obs.calls, ", "); got != "begin anthropic/both, end 500" || !errors.Is(obs.err, storeDown) {
			t.Fatalf("calls %q, err %v", got, obs.err)
		}
		// A store failure is the gateway's (500), not a caller who went
		// away (499), and the provider is not blamed: it serves the next.
		if n := requests(t, r, alice, "anthropic", "500"); n != 1 {
			t.Errorf("requests{status=500} = %v", n)
		}
		// The provider answered, so the row written when it began bills it.
		if e := r.ledger.Entries(); len(e) != 1 || e[0].Status != 500 || e[0].Usage.Input == 0 {
			t.Errorf("ledger %+v", e)
		}
		next := &recorder{}
		r.converse(t, "again", next)
		if next.outcome.Provider != "anthropic" || next.outcome.Status != 200 {
			t.Errorf("after a store failure: %+v", next.outcome)
		}
	})

	t.Run("an HTTP front relays bytes through the same core", func(t *testing.T) {
		r := newRig(t, providersim.Options{})
		obs := &recorder{}
		w := httptest.NewRecorder()
		body := `{"model":"both","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`
		r.core.Complete(context.Background(), completion.Request{
			ID: "http", Start: time.Now(), Snapshot: r.snap, Caller: completion.Caller{Email: alice, Upstream: alice},
			Front: translate.Anthropic, Body: http.NoBody, Client: w,
		}, withT(obs, t, r, "http"))
		// An empty body is the caller's error, answered in its dialect.
		if w.Code != 400 || !strings.Contains(w.Body.String(), `"type":"invalid_request_error"`) || strings.Join(obs.calls, ", ") != "end 400" {
			t.Fatalf("%d %s, calls %v", w.Code, w.Body, obs.calls)
		}
		obs, w = &recorder{}, httptest.NewRecorder()
		r.core.Complete(context.Background(), completion.Request{
			ID: "http2", Start: time.Now(), Snapshot: r.snap, Caller: completion.Caller{Email: alice, Upstream: alice},
			Front: translate.Anthropic, Body: readCloser(body), Client: w,
		}, withT(obs, t, r, "http2"))
		if w.Code != 200 || !strings.Contains(w.Body.String(), "event: message_stop") || strings.Join(obs.calls, ", ") != "begin anthropic/both, end 200" {
			t.Fatalf("%d %s, calls %v", w.Code, w.Body, obs.calls)
		}
	})
}

// TestCallerLeaves: a caller who closes as soon as the stream's terminal
// event reached it had the whole answer (200); one who leaves before
// that did not (499). Both are billed the whole answer the provider gave,
// and the observer hears at once that the caller left.
func TestCallerLeaves(t *testing.T) {
	for _, tc := range []struct {
		leaveAfter string
		status     string
	}{
		{"event: message_stop", "200"},
		{"event: content_block_delta", "499"},
	} {
		t.Run(tc.leaveAfter, func(t *testing.T) {
			r := newRig(t, providersim.Options{ReplyWords: 20, Chunks: 5})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := &leavingWriter{ResponseRecorder: httptest.NewRecorder(), after: tc.leaveAfter, leave: cancel}
			obs := &recorder{}
			body := `{"model":"both","stream":true,"max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`
			r.core.Complete(ctx, completion.Request{
				ID: "leave", Start: time.Now(), Snapshot: r.snap, Caller: completion.Caller{Email: alice, EndUser: alice, Upstream: alice},
				Front: translate.Anthropic, Body: readCloser(body), Client: w,
			}, withT(obs, t, r, "leave"))
			if got := strings.Join(obs.calls, ", "); got != "begin anthropic/both, left, end "+tc.status {
				t.Errorf("calls %q", got)
			}
			if o := obs.outcome; o.Usage.Output != 20 || o.Cost != metering.Picodollars(1*3_000_000+20*15_000_000) {
				t.Errorf("billed %+v; want the whole answer", o)
			}
		})
	}
}

// leavingWriter cancels the request's context once it has written after.
type leavingWriter struct {
	*httptest.ResponseRecorder
	after string
	leave func()
}

func (w *leavingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseRecorder.Write(b)
	if strings.Contains(string(b), w.after) {
		w.leave()
	}
	return n, err
}

func withT(o *recorder, t *testing.T, r *rig, id string) *recorder {
	o.t, o.r, o.id = t, r, id
	return o
}

func readCloser(s string) *readCloserString { return &readCloserString{strings.NewReader(s)} }

type readCloserString struct{ *strings.Reader }

func (readCloserString) Close() error { return nil }

// counter is the value of name's series with exactly these labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func requests(t *testing.T, r *rig, endUser, provider, status string) float64 {
	return counter(t, r.reg, metricnames.Requests, map[string]string{
		metricnames.LabelEndUser: endUser, metricnames.LabelModel: "both", metricnames.LabelRequestedModel: "both",
		metricnames.LabelProvider: provider, metricnames.LabelStatus: status,
	})
}

// TestAnswerMeteredBeforeItsLastBytes: the write that carries the last
// bytes of an HTTP caller's answer — a stream's terminal event, a plain
// reply's body — finds the request's final ledger row queued, on both
// fronts from both providers; every write before it finds none.
func TestAnswerMeteredBeforeItsLastBytes(t *testing.T) {
	for _, tc := range []struct {
		front    translate.Dialect
		provider string
		stream   bool
		last     string // in the write that ends the answer
	}{
		{translate.OpenAI, "openai", true, "data: [DONE]"},
		{translate.Anthropic, "anthropic", true, "event: message_stop"},
		{translate.OpenAI, "anthropic", true, "data: [DONE]"},
		{translate.Anthropic, "openai", true, "event: message_stop"},
		{translate.OpenAI, "openai", false, `"usage"`},
		{translate.Anthropic, "anthropic", false, `"usage"`},
	} {
		t.Run(fmt.Sprintf("%s from %s stream %t", tc.front, tc.provider, tc.stream), func(t *testing.T) {
			r := newRig(t, providersim.Options{ReplyWords: 20, Chunks: 5})
			if tc.provider == "openai" {
				r.anth.Enqueue(providersim.Fault{Disconnect: true}) // "both" fails over to openai
			}
			w := &meteredWriter{ResponseRecorder: httptest.NewRecorder(), t: t, r: r, id: "req"}
			body := fmt.Sprintf(`{"model":"both","stream":%t,"max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`, tc.stream)
			r.core.Complete(context.Background(), completion.Request{
				ID: "req", Start: time.Now(), Snapshot: r.snap, Caller: completion.Caller{Email: alice, EndUser: alice, Upstream: alice},
				Front: tc.front, Body: readCloser(body), Client: w,
			}, nil)
			if w.Code != 200 || len(w.writes) == 0 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if err := r.writer.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if e := r.ledger.Entries(); len(e) != 1 || e[0].Provider != tc.provider || e[0].Status != 200 {
				t.Fatalf("ledger %+v; want one row, from %s", e, tc.provider)
			}
			lastWrite := len(w.writes) - 1
			if !strings.Contains(w.writes[lastWrite].bytes, tc.last) {
				t.Fatalf("the last write %q does not end the answer", w.writes[lastWrite].bytes)
			}
			for i, wr := range w.writes {
				if wr.metered != (i == lastWrite) {
					t.Errorf("write %d of %d (%.40q…): final row queued %t", i+1, len(w.writes), wr.bytes, wr.metered)
				}
			}
		})
	}
}

// meteredWriter notes, at every write, whether the request's final ledger
// row is queued by then.
type meteredWriter struct {
	*httptest.ResponseRecorder
	t      *testing.T
	r      *rig
	id     string
	writes []meteredWrite
}

type meteredWrite struct {
	bytes   string
	metered bool
}

func (w *meteredWriter) Write(b []byte) (int, error) {
	if err := w.r.writer.Flush(context.Background()); err != nil {
		w.t.Error(err)
	}
	var final bool
	for _, e := range w.r.ledger.Entries() {
		final = final || e.RequestID == w.id && !e.Provisional
	}
	w.writes = append(w.writes, meteredWrite{string(b), final})
	return w.ResponseRecorder.Write(b)
}
