package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image/png"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

const canvasID = "amazon.nova-canvas-v1:0"

// withCanvas adds an image model, canvas, served by the OpenAI-compatible
// simulator and, failing that, by a second OpenAI-compatible provider (the
// other simulator), at its own prices.
func withCanvas(c *gatewayconfig.Config) {
	canvas := func(prices ...gatewayconfig.ImagePrice) gatewayconfig.Model {
		return gatewayconfig.Model{Name: "canvas", ID: canvasID, Kind: gatewayconfig.KindImage, Pricing: gatewayconfig.Pricing{PerImage: prices}}
	}
	c.Providers[1].Models = append(c.Providers[1].Models, canvas(
		gatewayconfig.ImagePrice{Size: "1024x1024", Quality: "standard", USD: "0.04"},
		gatewayconfig.ImagePrice{Size: "1024x1024", Quality: "premium", USD: "0.06"},
		gatewayconfig.ImagePrice{Size: "1280x720", Quality: "standard", USD: "0.000001"},
	))
	second := c.Providers[1]
	second.Name, second.BaseURL = "litellm-b", c.Providers[0].BaseURL
	second.APIKeyFile = filepath.Join(filepath.Dir(c.Providers[0].APIKeyFile), "anthropic")
	second.Models = []gatewayconfig.Model{canvas(
		gatewayconfig.ImagePrice{Size: "1024x1024", Quality: "standard", USD: "0.05"},
	)}
	c.Providers = append(c.Providers, second)
}

func generate(e *env, who string, p openai.ImageGenerateParams) (*openai.ImagesResponse, error) {
	c := e.openaiClient(who)
	return c.Images.Generate(context.Background(), p)
}

// TestImagesThroughTheSDK: openai-go's Images.Generate against an image
// model: the pictures are PNGs of the size priced; each is billed at its
// size and quality's price, exactly; the provider is asked for that size
// and quality and told the caller; the metrics count the pictures and the
// spend.
func TestImagesThroughTheSDK(t *testing.T) {
	e := newEnv(t, withCanvas)
	// Each person's pictures series exist at zero before their first
	// picture, so its first increase is seen.
	wantMetric(t, e, `chatgateway_images_total{end_user="bob@example.com",model="canvas",provider="litellm-b"} 0`)
	res, err := generate(e, alice, openai.ImageGenerateParams{Prompt: "a red fox", Model: "canvas", N: openai.Int(2),
		ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 2 || res.Created == 0 {
		t.Fatalf("answer %+v", res)
	}
	for i, d := range res.Data {
		b, err := base64.StdEncoding.DecodeString(d.B64JSON)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width != 1024 || cfg.Height != 1024 {
			t.Fatalf("picture %d: %+v %v", i, cfg, err)
		}
	}
	last, _ := e.oai.LastRequest()
	var sent map[string]any
	if err := json.Unmarshal(last.Body, &sent); err != nil {
		t.Fatal(err)
	}
	if last.Path != "/v1/images/generations" || sent["model"] != canvasID || sent["size"] != "1024x1024" || sent["quality"] != "standard" ||
		sent["n"] != 2.0 || sent["user"] != alice || sent["response_format"] != "b64_json" {
		t.Fatalf("the provider was sent %s %v", last.Path, sent)
	}

	// A named size and quality, and the url form.
	res, err = generate(e, alice, openai.ImageGenerateParams{Prompt: "a wide fox", Model: "canvas", Size: "1280x720"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 1 || !strings.Contains(res.Data[0].URL, "/_sim/images/") {
		t.Fatalf("url answer %+v", res.Data)
	}

	e.settle()
	entries := e.ledger.Entries()
	if len(entries) != 2 {
		t.Fatalf("ledger %+v", entries)
	}
	if g := entries[0]; g.Images != 2 || g.Cost != 80_000_000_000 || g.Model != "canvas" || g.Provider != "openai" || g.Status != 200 || !g.Usage.IsZero() {
		t.Errorf("first row %+v, want 2 pictures at $0.04", g)
	}
	if g := entries[1]; g.Images != 1 || g.Cost != 1_000_000 {
		t.Errorf("second row %+v, want 1 picture at $0.000001", g)
	}
	wantMetric(t, e, `chatgateway_images_total{end_user="alice@example.com",model="canvas",provider="openai"} 3`)
	wantMetric(t, e, `chatgateway_spend_usd_total{end_user="alice@example.com",model="canvas",provider="openai"} 0.080001`)
	wantMetric(t, e, `chatgateway_requests_total{end_user="alice@example.com",model="canvas",provider="openai",requested_model="canvas",status="200"} 2`)
	if m := e.metric(`chatgateway_tokens_total{end_user="alice@example.com",model="canvas"`); len(m) != 0 {
		t.Errorf("an image model has token series: %v", m)
	}
}

func wantMetric(t *testing.T, e *env, line string) {
	t.Helper()
	name, _, _ := strings.Cut(line, "{")
	for _, l := range e.metric(name) {
		if l == line {
			return
		}
	}
	t.Errorf("no %s in\n%s", line, strings.Join(e.metric(name), "\n"))
}

func apiError(t *testing.T, err error) *openai.Error {
	t.Helper()
	var ae *openai.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error", err)
	}
	return ae
}

// TestImagesRefused: what cannot be made or priced is a 400 in OpenAI's
// shape naming the member, and nothing reaches a provider or the ledger.
func TestImagesRefused(t *testing.T) {
	e := newEnv(t, withCanvas)
	for _, c := range []struct {
		name   string
		body   string
		status int
		param  string
		want   string
	}{
		{"unpriced size", `{"prompt":"a fox","model":"canvas","size":"512x512"}`, 400, "size",
			`model canvas has no price for size "512x512", so this gateway does not make it; it makes 1024x1024 at standard, 1024x1024 at premium, 1280x720 at standard`},
		{"unpriced pair", `{"prompt":"a fox","model":"canvas","size":"1280x720","quality":"premium"}`, 400, "size", `no price for size "1280x720" at quality "premium"`},
		{"unpriced quality", `{"prompt":"a fox","model":"canvas","quality":"hd"}`, 400, "quality", `no price for quality "hd"`},
		{"chat model", `{"prompt":"a fox","model":"gpt"}`, 400, "model", `model "gpt" is a chat model`},
		{"auto", `{"prompt":"a fox","model":"auto"}`, 400, "model", `is a chat model`},
		{"no model", `{"prompt":"a fox"}`, 400, "model", "model is required: name an image model (this gateway's are canvas)"},
		{"unknown model", `{"prompt":"a fox","model":"dall-e-3"}`, 404, "model", "the model is not served by this gateway"},
		{"too many", `{"prompt":"a fox","model":"canvas","n":11}`, 400, "n", "n must be from 1 to 10"},
		{"unknown member", `{"prompt":"a fox","model":"canvas","partial_images":2}`, 400, "", "partial_images is not a member of the images API"},
		{"case variant", `{"prompt":"a fox","Model":"canvas"}`, 400, "", `use "model"`},
		{"duplicate", `{"prompt":"a fox","model":"canvas","n":1,"n":9}`, 400, "", "n more than once"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := e.do("POST", "/v1/images/generations", authHeader(alice), c.body)
			var env struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &env); err != nil || resp.StatusCode != c.status || !strings.Contains(env.Error.Message, c.want) ||
				env.Error.Type != "invalid_request_error" {
				t.Fatalf("%d %s; want %d with %q", resp.StatusCode, body, c.status, c.want)
			}
			if got := ""; env.Error.Param != nil {
				if got = *env.Error.Param; got != c.param {
					t.Fatalf("param %q, want %q", got, c.param)
				}
			} else if c.param != "" {
				t.Fatalf("no param, want %q", c.param)
			}
		})
	}
	if n := len(e.oai.Requests()); n != 0 {
		t.Fatalf("%d requests reached the provider", n)
	}
	// An image model on the chat routes.
	resp, body := e.do("POST", "/v1/chat/completions", authHeader(alice), `{"model":"canvas","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 400 || !strings.Contains(body, `model \"canvas\" makes pictures and answers no messages: ask it with POST /v1/images/generations`) {
		t.Fatalf("chat with an image model: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("POST", "/v1/messages", authHeader(alice), `{"model":"canvas","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 400 || !strings.Contains(body, `"invalid_request_error"`) || !strings.Contains(body, "makes pictures") {
		t.Fatalf("messages with an image model: %d %s", resp.StatusCode, body)
	}
	// Unauthenticated callers are refused as on the other routes.
	resp, _ = e.do("POST", "/v1/images/generations", http.Header{"Content-Type": {"application/json"}}, `{"prompt":"a fox","model":"canvas"}`)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", resp.StatusCode)
	}
	e.settle()
	if got := e.ledger.Entries(); len(got) != 0 {
		t.Fatalf("refusals billed: %+v", got)
	}
}

// TestImagesFailover: the first provider fails; the second makes the
// picture and its price is the one billed.
func TestImagesFailover(t *testing.T) {
	e := newEnv(t, withCanvas)
	e.oai.Enqueue(providersim.Fault{Status: 503})
	res, err := generate(e, bob, openai.ImageGenerateParams{Prompt: "a fox", Model: "canvas", ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 1 || res.Data[0].B64JSON == "" {
		t.Fatalf("%+v", res)
	}
	e.settle()
	entries := e.ledger.Entries()
	if len(entries) != 1 || entries[0].Provider != "litellm-b" || entries[0].Cost != 50_000_000_000 || entries[0].Images != 1 {
		t.Fatalf("ledger %+v; want one picture at litellm-b's $0.05", entries)
	}
	wantMetric(t, e, `chatgateway_failovers_total{from="openai",reason="ServerError",to="litellm-b"} 1`)
	wantMetric(t, e, `chatgateway_images_total{end_user="bob@example.com",model="canvas",provider="litellm-b"} 1`)
}

// TestImagesQuota: the quota reserves n × the price before any provider is
// asked: a request it cannot cover is a 429 and reaches no provider, one it
// can is settled at what was made.
func TestImagesQuota(t *testing.T) {
	e := newEnv(t, withCanvas, withQuota("", "0.10"))
	// Three at $0.04 is $0.12: more than the $0.10 a day.
	_, err := generate(e, alice, openai.ImageGenerateParams{Prompt: "a fox", Model: "canvas", N: openai.Int(3)})
	if ae := apiError(t, err); ae.StatusCode != http.StatusTooManyRequests || !strings.Contains(ae.Message, "0.10") {
		t.Fatalf("three pictures over the quota: %d %s", ae.StatusCode, ae.Message)
	}
	if n := len(e.oai.Requests()); n != 0 {
		t.Fatalf("%d requests reached the provider", n)
	}
	// Two at $0.04 fit, and leave $0.02: not enough for one more.
	if _, err := generate(e, alice, openai.ImageGenerateParams{Prompt: "a fox", Model: "canvas", N: openai.Int(2)}); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if _, err := generate(e, alice, openai.ImageGenerateParams{Prompt: "a fox", Model: "canvas"}); apiError(t, err).StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a picture past the quota: %v", err)
	}
	// The $0.000001 picture still fits.
	if _, err := generate(e, alice, openai.ImageGenerateParams{Prompt: "a fox", Model: "canvas", Size: "1280x720"}); err != nil {
		t.Fatal(err)
	}
	e.settle()
	var total metering.Picodollars
	for _, en := range e.ledger.Entries() {
		total += en.Cost
	}
	if total != 80_001_000_000 {
		t.Fatalf("billed %s", total)
	}
	st, err := e.gw.QuotaStatus(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if st.SpentPicodollars != 80_001_000_000 || st.ReservedPicodollars != 0 {
		t.Fatalf("quota %+v", st)
	}
}

// TestImagesCallerHangsUp: a caller who gives up while the provider paints
// is billed the pictures the provider made (it bills them), as a 499.
func TestImagesCallerHangsUp(t *testing.T) {
	e := newEnv(t, withCanvas)
	e.oai.Enqueue(providersim.Fault{DelayFirstByte: 400 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c := e.openaiClient(alice)
	if _, err := c.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a slow fox", Model: "canvas", N: openai.Int(2)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the caller's deadline: %v", err)
	}
	waitFor(t, "the request to be billed", func() bool {
		e.settle()
		return len(e.ledger.Entries()) == 1
	})
	if got := e.ledger.Entries()[0]; got.Status != 499 || got.Images != 2 || got.Cost != 80_000_000_000 {
		t.Fatalf("ledger %+v; want 2 pictures at $0.04 as a 499", got)
	}
	wantMetric(t, e, `chatgateway_images_total{end_user="alice@example.com",model="canvas",provider="openai"} 2`)
}
