package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// TestPicturesThroughTheGateway drives the real binary with openai-go's
// Images.Generate against nova-canvas (an Image model on the
// OpenAI-compatible simulator, as the seed serves Bedrock's Nova Canvas
// through LiteLLM): the pictures decode as PNGs; the ledger, /api/me/usage
// and the spend and pictures counters say n × the price to the
// picodollar; the quota refuses a request whose n × price is more than
// what is left, and a person whose dailyHardUSD is "0" gets nothing.
func TestPicturesThroughTheGateway(t *testing.T) {
	const carol = "carol@example.com"
	g := startSpendGateway(t, providersim.Options{}, func(c *gatewayconfig.Config) {
		c.Providers[1].Models = append(c.Providers[1].Models, gatewayconfig.Model{
			Name: "nova-canvas", ID: "amazon.nova-canvas-v1:0", Kind: gatewayconfig.KindImage,
			Pricing: gatewayconfig.Pricing{PerImage: []gatewayconfig.ImagePrice{
				{Size: "1024x1024", Quality: "standard", USD: "0.04"},
				{Size: "1024x1024", Quality: "premium", USD: "0.06"},
				{Size: "1280x720", Quality: "standard", USD: "0.000007"},
			}},
		})
		c.Quotas.DailyHardUSD = "0.25"
		c.Users = append(c.Users, gatewayconfig.User{Email: carol, Role: gatewayconfig.RoleUser, DailyHardUSD: "0"})
		c.Identity.MetricsEndUser = gatewayconfig.IdentityEmail
	})
	client := func(who string) *openai.Client {
		c := openai.NewClient(ooption.WithBaseURL(g.base+"/v1/"), ooption.WithAPIKey(token),
			ooption.WithHeader("X-Forwarded-Email", who), ooption.WithMaxRetries(0))
		return &c
	}
	ctx := context.Background()
	alice := client(email)

	// Three premium pictures ($0.18) and one wide one ($0.000007).
	res, err := alice.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a lighthouse at dusk", Model: "nova-canvas", N: openai.Int(3),
		Quality: "premium", ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Data) != 3 {
		t.Fatalf("%d pictures", len(res.Data))
	}
	for i, d := range res.Data {
		b, err := base64.StdEncoding.DecodeString(d.B64JSON)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != 1024 || img.Bounds().Dy() != 1024 {
			t.Fatalf("picture %d does not decode as a 1024x1024 PNG: %v", i, err)
		}
	}
	if bytes.Equal(mustB64(t, res.Data[0].B64JSON), mustB64(t, res.Data[1].B64JSON)) {
		t.Error("two pictures of one request are the same")
	}
	wide, err := alice.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a wide lighthouse", Model: "nova-canvas", Size: "1280x720"})
	if err != nil {
		t.Fatal(err)
	}
	if len(wide.Data) != 1 || wide.Data[0].URL == "" {
		t.Fatalf("url answer %+v", wide.Data)
	}
	resp, err := http.Get(wide.Data[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	pic, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cfg, err := png.DecodeConfig(bytes.NewReader(pic)); err != nil || cfg.Width != 1280 || cfg.Height != 720 {
		t.Fatalf("the url's picture: %+v %v", cfg, err)
	}

	// $0.25 - $0.180007 leaves $0.069993: one standard picture ($0.04)
	// fits, two ($0.08) do not, and nothing reaches the provider for them.
	before := len(g.oai.Requests())
	_, err = alice.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "two more", Model: "nova-canvas", N: openai.Int(2)})
	var ae *openai.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests || ae.Code != "daily_quota_exceeded" || ae.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("two pictures past the quota: %v", err)
	}
	if n := len(g.oai.Requests()); n != before {
		t.Fatalf("a refused request reached the provider (%d requests, was %d)", n, before)
	}
	if _, err := alice.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "one more", Model: "nova-canvas"}); err != nil {
		t.Fatalf("one picture within the quota: %v", err)
	}

	// dailyHardUSD "0": nothing, not even the cheapest picture.
	_, err = client(carol).Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a cat", Model: "nova-canvas", Size: "1280x720"})
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("carol at a zero quota: %v", err)
	}

	// The ledger, as /api/me/usage shows it: 5 pictures in 3 requests,
	// 3 × 0.06 + 0.000007 + 0.04 dollars, to the picodollar.
	const want = 3*60_000_000_000 + 7_000_000 + 40_000_000_000
	var u struct {
		Days []struct {
			Model           string
			Requests        int64
			Images          int64
			CostPicodollars int64
			CostUSD         string
		}
		Quota struct{ SpentUSD, ReservedUSD string }
	}
	// The ledger's writer commits a batch a few milliseconds after a request.
	eventually(t, "the ledger to have the pictures", func() error {
		get(t, g.base+"/api/me/usage", &u)
		if len(u.Days) != 1 || u.Days[0].Model != "nova-canvas" || u.Days[0].Requests != 3 || u.Days[0].Images != 5 ||
			u.Days[0].CostPicodollars != want || u.Days[0].CostUSD != "0.220007000000" {
			return fmt.Errorf("/api/me/usage days %+v; want 5 pictures in 3 requests costing %d picodollars", u.Days, want)
		}
		return nil
	})
	if u.Quota.SpentUSD != "0.220007000000" {
		t.Errorf("the quota counts %s spent", u.Quota.SpentUSD)
	}
	var admin struct {
		Users []struct {
			User            string
			Images          int64
			CostPicodollars int64
		}
	}
	get(t, g.base+"/api/admin/usage", &admin)
	if len(admin.Users) != 1 || admin.Users[0].User != email || admin.Users[0].Images != 5 || admin.Users[0].CostPicodollars != want {
		t.Fatalf("/api/admin/usage %+v", admin.Users)
	}

	// The counters.
	metrics := scrape(t, "http://"+g.proc.metricsAddr) // the metrics listener, not the API port
	for _, line := range []string{
		`chatgateway_images_total{end_user="alice@example.com",model="nova-canvas",provider="litellm"} 5`,
		`chatgateway_spend_usd_total{end_user="alice@example.com",model="nova-canvas",provider="litellm"} 0.220007`,
		`chatgateway_requests_total{end_user="alice@example.com",model="nova-canvas",provider="",requested_model="nova-canvas",status="429"} 1`,
		`chatgateway_requests_total{end_user="carol@example.com",model="nova-canvas",provider="",requested_model="nova-canvas",status="429"} 1`,
	} {
		if !strings.Contains(metrics, "\n"+line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
