package completion_test

import (
	"bytes"
	"context"
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
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// TestEventsThatArriveTogetherLeaveTogether: a provider's events that the
// gateway reads at once reach the caller in one flush, and an event is
// never held back while the gateway waits for the provider's next one.
func TestEventsThatArriveTogetherLeaveTogether(t *testing.T) {
	chunk := func(delta string) string {
		return `data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":` + delta + `,"finish_reason":null}]}` + "\n\n"
	}
	more := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		// Two events in one write, then nothing until the caller has them.
		_, _ = w.Write([]byte(chunk(`{"role":"assistant","content":""}`) + chunk(`{"content":"Hello"}`)))
		w.(http.Flusher).Flush()
		select {
		case <-more:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte(chunk(`{"content":" world"}`) +
			`data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}` + "\n\n" +
			"data: [DONE]\n\n"))
	}))
	defer up.Close()

	timeouts := gatewayconfig.Timeouts{Connect: gatewayconfig.D(2 * time.Second), FirstByte: gatewayconfig.D(5 * time.Second)}
	cfg := &gatewayconfig.Config{
		DefaultModel: "m",
		Providers: []gatewayconfig.Provider{{Name: "p", Type: gatewayconfig.ProviderOpenAICompatible, BaseURL: up.URL, Timeouts: timeouts,
			Models: []gatewayconfig.Model{{Name: "m", ID: "m", Pricing: gatewayconfig.Pricing{InputPerMTok: "1", OutputPerMTok: "1", CacheReadPerMTok: "1", CacheWritePerMTok: "1"}}}}},
		Failover:            gatewayconfig.Failover{FailureThreshold: 3, Cooldown: gatewayconfig.D(time.Minute), RequestTimeout: gatewayconfig.D(20 * time.Second)},
		MaxRequestBodyBytes: 1 << 20,
	}
	p := cfg.Providers[0]
	snap, err := completion.NewSnapshot(cfg, []upstream.Provider{upstream.NewProvider(p, "", (&upstream.Transports{}).Get(p))})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	keeper := quota.New(quota.Options{Store: store.NewMemoryQuotas(), Registerer: reg, Log: log, Now: time.Now})
	defer keeper.Close(context.Background())
	writer := metering.NewWriter(metering.MemorySink{}, metering.WriterOptions{OnCommit: keeper.Committed, Log: log})
	defer func() { _ = writer.Close(context.Background()) }()
	core := completion.New(completion.Options{Ledger: writer, Quota: keeper, Registerer: reg, Log: log, Now: time.Now})

	w := &batchWriter{h: http.Header{}, flushed: make(chan string, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		core.Complete(context.Background(), completion.Request{
			ID: "r", Start: time.Now(), Snapshot: snap, Caller: completion.Caller{Email: alice},
			Front: translate.OpenAI, Body: readCloser(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`), Client: w,
		}, nil)
	}()
	var first string
	select {
	case first = <-w.flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("the first events were held back while the gateway waited for more")
	}
	if !strings.Contains(first, `"role":"assistant"`) || !strings.Contains(first, `"content":"Hello"`) {
		t.Fatalf("first flush %q: want both events read together", first)
	}
	close(more)
	<-done
	close(w.flushed)
	var rest strings.Builder
	for b := range w.flushed {
		rest.WriteString(b)
	}
	rest.Write(w.buf.Bytes()) // what net/http writes as the handler returns
	if got := rest.String(); !strings.Contains(got, `"content":" world"`) || !strings.HasSuffix(got, "data: [DONE]\n\n") || strings.Contains(got, "usage") {
		t.Fatalf("the rest of the stream: %q", got)
	}
}

// batchWriter is a caller's connection: what is written is sent when flushed.
type batchWriter struct {
	h       http.Header
	buf     bytes.Buffer
	flushed chan string
}

func (w *batchWriter) Header() http.Header         { return w.h }
func (w *batchWriter) WriteHeader(int)             {}
func (w *batchWriter) Write(b []byte) (int, error) { return w.buf.Write(b) }
func (w *batchWriter) Flush() {
	w.flushed <- w.buf.String()
	w.buf.Reset()
}
