package completion_test

import (
	"context"
	"errors"
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
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// imageRig is a core with an image model, canvas, on the OpenAI-compatible
// simulator; sketch is an image model on the Anthropic one (which has no
// images API), and chat a chat model.
func imageRig(t *testing.T, hard string) (*completion.Core, *completion.Snapshot, *metering.MemoryLedger, *metering.Writer) {
	t.Helper()
	_, anthURL := providersim.Start(t, providersim.Options{})
	_, oaiURL := providersim.Start(t, providersim.Options{})
	timeouts := gatewayconfig.Timeouts{Connect: gatewayconfig.D(2 * time.Second), FirstByte: gatewayconfig.D(5 * time.Second)}
	perImage := gatewayconfig.Pricing{PerImage: []gatewayconfig.ImagePrice{
		{Size: "1024x1024", Quality: "standard", USD: "0.04"}, {Size: "512x512", Quality: "standard", USD: "0.018"}}}
	cfg := &gatewayconfig.Config{
		DefaultModel: "chat",
		Providers: []gatewayconfig.Provider{
			{Name: "anthropic", Type: gatewayconfig.ProviderAnthropic, BaseURL: anthURL, Timeouts: timeouts,
				Models: []gatewayconfig.Model{{Name: "sketch", ID: "sketch-1", Kind: gatewayconfig.KindImage, Pricing: perImage},
					{Name: "chat", ID: sonnet, Pricing: gatewayconfig.Pricing{InputPerMTok: "3", OutputPerMTok: "15", CacheReadPerMTok: "0.3", CacheWritePerMTok: "3.75"}}}},
			{Name: "litellm", Type: gatewayconfig.ProviderOpenAICompatible, BaseURL: oaiURL, Timeouts: timeouts,
				Models: []gatewayconfig.Model{{Name: "canvas", ID: "amazon.nova-canvas-v1:0", Kind: gatewayconfig.KindImage, Pricing: perImage}}},
		},
		Failover:            gatewayconfig.Failover{RetryOn: []string{"ServerError"}, FailureThreshold: 3, Cooldown: gatewayconfig.D(time.Minute), RequestTimeout: gatewayconfig.D(20 * time.Second)},
		Quotas:              gatewayconfig.Quotas{DailyHardUSD: hard},
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
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	charges := store.NewMemoryQuotas()
	keeper := quota.New(quota.Options{Store: charges, Registerer: reg, Log: log, Now: time.Now})
	ledger := &metering.MemoryLedger{}
	writer := metering.NewWriter(metering.MemorySink{Ledger: ledger, Quotas: charges}, metering.WriterOptions{OnCommit: keeper.Committed, Log: log})
	t.Cleanup(func() {
		_ = writer.Close(context.Background())
		keeper.Close(context.Background())
	})
	core := completion.New(completion.Options{Ledger: writer, Quota: keeper, Registerer: reg, Log: log, Now: time.Now})
	return core, snap, ledger, writer
}

func ask(model, prompt string, n int64, size string) translate.ImageRequest {
	return translate.ImageRequest{Model: model, Prompt: &prompt, N: &n, Size: size}
}

// TestGenerate: the typed call the stateful chat makes. The simulator
// answers Nova Canvas with URLs by default: Generate fetches them, so
// its caller always has the bytes, sniffed and measured.
func TestGenerate(t *testing.T) {
	core, snap, ledger, writer := imageRig(t, "0.1")
	req := func(id string) completion.Request {
		return completion.Request{ID: id, Start: time.Now(), Caller: completion.Caller{Email: alice, Hash: "h", Upstream: alice}, Snapshot: snap}
	}
	ctx := context.Background()
	pics, out, err := core.Generate(ctx, req("r1"), ask("canvas", "a heron", 2, "512x512"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pics) != 2 || out.Images != 2 || out.Cost != 36_000_000_000 || out.Provider != "litellm" || out.Status != http.StatusOK {
		t.Fatalf("%d pictures, outcome %+v", len(pics), out)
	}
	for _, p := range pics {
		if p.MediaType != "image/png" || p.Width != 512 || p.Height != 512 || len(p.Data) == 0 {
			t.Fatalf("picture %s %dx%d, %d bytes", p.MediaType, p.Width, p.Height, len(p.Data))
		}
	}
	if err := writer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if e := ledger.Entries(); len(e) != 1 || e[0].Images != 2 || e[0].Cost != out.Cost || e[0].RequestID != "r1" {
		t.Fatalf("ledger %+v", e)
	}

	// Refusals are *translate.Error with a status and a message to show.
	for _, c := range []struct {
		ask    translate.ImageRequest
		status int
		want   string
	}{
		{ask("chat", "a heron", 1, ""), 400, `model "chat" is a chat model`},
		{ask("canvas", "a heron", 1, "2048x2048"), 400, `model canvas has no price for size "2048x2048"`},
		{ask("canvas", "a heron", 11, ""), 400, "n must be from 1 to 10"},
		{ask("canvas", " ", 1, ""), 400, "prompt is required"},
		{ask("sketch", "a heron", 1, ""), 400, "provider anthropic speaks the Messages API, which makes no pictures"},
		// $0.1 - $0.036 leaves $0.064: two at $0.04 do not fit.
		{ask("canvas", "a heron", 2, ""), 429, "daily"},
	} {
		pics, out, err := core.Generate(ctx, req("refused"), c.ask)
		var te *translate.Error
		if !errors.As(err, &te) || te.Status != c.status || !strings.Contains(te.Msg, c.want) || pics != nil || out.Cost != 0 {
			t.Errorf("%s × %d: %v (%+v); want %d with %q", *c.ask.Prompt, *c.ask.N, err, out, c.status, c.want)
		}
	}
	if _, _, err := core.Generate(ctx, req("r2"), ask("canvas", "one more heron", 1, "")); err != nil {
		t.Fatalf("one picture within the quota: %v", err)
	}
}

// TestImagesMeteredBeforeTheBody: an HTTP caller's pictures are metered —
// the quota settled, the ledger's row queued — before the body that
// carries them is written, so a read of spend made as soon as the caller
// has them counts them.
func TestImagesMeteredBeforeTheBody(t *testing.T) {
	core, snap, ledger, writer := imageRig(t, "0.1")
	w := &queuedAtWrite{ResponseRecorder: httptest.NewRecorder(), ledger: ledger, writer: writer, id: "img"}
	core.ServeImages(context.Background(), completion.Request{
		ID: "img", Start: time.Now(), Snapshot: snap, Caller: completion.Caller{Email: alice, Hash: "h", Upstream: alice},
		Body: readCloser(`{"model":"canvas","prompt":"a heron","n":1,"size":"512x512"}`), Client: w,
	})
	if w.Code != http.StatusOK || len(w.queued) == 0 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for i, q := range w.queued {
		if !q {
			t.Errorf("write %d of %d: the request's ledger row was not queued yet", i+1, len(w.queued))
		}
	}
	if err := writer.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := ledger.Entries(); len(e) != 1 || e[0].Images != 1 || e[0].Cost != 18_000_000_000 || e[0].Status != http.StatusOK {
		t.Fatalf("ledger %+v; want one picture at $0.018", e)
	}
}

// queuedAtWrite notes, at every write, whether request id's row is queued.
type queuedAtWrite struct {
	*httptest.ResponseRecorder
	ledger *metering.MemoryLedger
	writer *metering.Writer
	id     string
	queued []bool
}

func (w *queuedAtWrite) Write(b []byte) (int, error) {
	_ = w.writer.Flush(context.Background())
	found := false
	for _, e := range w.ledger.Entries() {
		found = found || e.RequestID == w.id
	}
	w.queued = append(w.queued, found)
	return w.ResponseRecorder.Write(b)
}
