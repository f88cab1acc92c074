package providersim_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	_ "image/jpeg"
	"image/png"
	"io"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

func decodePicture(t *testing.T, b []byte) (image.Image, string) {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a picture: %v", err)
	}
	return img, format
}

func b64Picture(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("b64_json does not decode: %v", err)
	}
	return b
}

// TestImagesGenerate drives POST /v1/images/generations with the official
// SDK's Images.Generate, in both answer formats and both model families.
func TestImagesGenerate(t *testing.T) {
	sim, url := providersim.Start(t, providersim.Options{APIKey: testKey})
	client := openaiClient(url)
	ctx := context.Background()

	t.Run("a GPT image model answers b64_json pictures of the size asked, with usage", func(t *testing.T) {
		params := openai.ImageGenerateParams{
			Prompt: "a lighthouse at dusk", Model: "gpt-image-1", N: openai.Int(2),
			Size: "1024x1536", Quality: openai.ImageGenerateParamsQualityHigh,
		}
		res, err := client.Images.Generate(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 2 || res.Created == 0 {
			t.Fatalf("%d pictures, created %d", len(res.Data), res.Created)
		}
		first := b64Picture(t, res.Data[0].B64JSON)
		img, format := decodePicture(t, first)
		if format != "png" || img.Bounds().Dx() != 1024 || img.Bounds().Dy() != 1536 || res.Data[0].URL != "" {
			t.Errorf("picture is %s %v, url %q", format, img.Bounds(), res.Data[0].URL)
		}
		if bytes.Equal(first, b64Picture(t, res.Data[1].B64JSON)) {
			t.Error("the two pictures of one request are the same")
		}
		if res.Size != "1024x1536" || res.Quality != "high" || res.OutputFormat != "png" || res.Background != "opaque" {
			t.Errorf("size %q quality %q output_format %q background %q", res.Size, res.Quality, res.OutputFormat, res.Background)
		}
		// 4 words in; 4160 tokens per 1024x1024 at high quality, 1.5 times the area, twice.
		if u := res.Usage; u.InputTokens != 4 || u.InputTokensDetails.TextTokens != 4 || u.OutputTokens != 12480 || u.TotalTokens != 12484 {
			t.Errorf("usage %s", u.RawJSON())
		}
		again, err := client.Images.Generate(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if again.Data[0].B64JSON != res.Data[0].B64JSON {
			t.Error("the same request painted another picture")
		}
		if last, _ := sim.LastRequest(); last.Path != "/v1/images/generations" || last.Header.Get("Authorization") != "Bearer "+testKey {
			t.Errorf("recorded %s with %q", last.Path, last.Header.Get("Authorization"))
		}
	})

	t.Run("output_format jpeg", func(t *testing.T) {
		res, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a cat", Model: "gpt-image-1", OutputFormat: openai.ImageGenerateParamsOutputFormatJPEG})
		if err != nil {
			t.Fatal(err)
		}
		if _, format := decodePicture(t, b64Picture(t, res.Data[0].B64JSON)); format != "jpeg" || res.OutputFormat != "jpeg" {
			t.Errorf("format %q, output_format %q", format, res.OutputFormat)
		}
	})

	t.Run("other models answer a URL by default, fetched without the key", func(t *testing.T) {
		res, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a red bicycle", Model: "dall-e-2", Size: "512x512"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 1 || res.Data[0].URL == "" || res.Data[0].B64JSON != "" || res.JSON.Usage.Valid() {
			t.Fatalf("answer %s", res.RawJSON())
		}
		resp, err := http.Get(res.Data[0].URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET %s: %d %s", res.Data[0].URL, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		img, err := png.Decode(bytes.NewReader(body))
		if err != nil || img.Bounds().Dx() != 512 {
			t.Fatalf("the URL holds %v (%v)", img.Bounds(), err)
		}
	})

	t.Run("Nova Canvas behind LiteLLM: b64_json when asked, any multiple-of-16 size", func(t *testing.T) {
		res, err := client.Images.Generate(ctx, openai.ImageGenerateParams{
			Prompt: "a quiet harbour", Model: "nova-canvas", Size: "1280x720",
			Quality: openai.ImageGenerateParamsQualityStandard, ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON,
		})
		if err != nil {
			t.Fatal(err)
		}
		img, _ := decodePicture(t, b64Picture(t, res.Data[0].B64JSON))
		if img.Bounds().Dx() != 1280 || img.Bounds().Dy() != 720 {
			t.Errorf("picture %v", img.Bounds())
		}
	})

	t.Run("dall-e-3 revises the prompt and paints one picture at a time", func(t *testing.T) {
		res, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a fox", Model: "dall-e-3", ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON})
		if err != nil {
			t.Fatal(err)
		}
		if res.Data[0].RevisedPrompt == "" {
			t.Error("no revised_prompt")
		}
		_, err = client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a fox", Model: "dall-e-3", N: openai.Int(2)})
		if e := asOpenAIError(t, err); e.StatusCode != 400 || e.Param != "n" {
			t.Errorf("n=2 on dall-e-3: %d param %q", e.StatusCode, e.Param)
		}
	})

	t.Run("bad requests are refused in OpenAI's error shape", func(t *testing.T) {
		for name, tc := range map[string]struct {
			params openai.ImageGenerateParams
			param  string
		}{
			"no prompt":                    {openai.ImageGenerateParams{Model: "gpt-image-1"}, "prompt"},
			"a size that is not WxH":       {openai.ImageGenerateParams{Prompt: "x", Size: "huge"}, "size"},
			"a side not a multiple of 16":  {openai.ImageGenerateParams{Prompt: "x", Size: "1000x1000"}, "size"},
			"too many":                     {openai.ImageGenerateParams{Prompt: "x", N: openai.Int(11)}, "n"},
			"none":                         {openai.ImageGenerateParams{Prompt: "x", N: openai.Int(0)}, "n"},
			"an unknown quality":           {openai.ImageGenerateParams{Prompt: "x", Quality: "ultra"}, "quality"},
			"response_format on GPT image": {openai.ImageGenerateParams{Prompt: "x", Model: "gpt-image-1", ResponseFormat: openai.ImageGenerateParamsResponseFormatURL}, "response_format"},
			"output_format on dall-e-2":    {openai.ImageGenerateParams{Prompt: "x", Model: "dall-e-2", OutputFormat: openai.ImageGenerateParamsOutputFormatPNG}, "output_format"},
			"Nova's premium on dall-e-3":   {openai.ImageGenerateParams{Prompt: "x", Model: "dall-e-3", Quality: "premium"}, "quality"},
		} {
			_, err := client.Images.Generate(ctx, tc.params)
			if e := asOpenAIError(t, err); e.StatusCode != 400 || e.Type != "invalid_request_error" || e.Param != tc.param || e.Message == "" {
				t.Errorf("%s: %d type %q param %q %q", name, e.StatusCode, e.Type, e.Param, e.Message)
			}
		}
		wrong := openaiClient(url, option.WithAPIKey("sk-wrong-key-000000"))
		_, err := wrong.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "x"})
		if e := asOpenAIError(t, err); e.StatusCode != 401 || e.Code != "invalid_api_key" {
			t.Errorf("a wrong key: %d %q", e.StatusCode, e.Code)
		}
	})

	t.Run("Nova Canvas behind LiteLLM takes premium", func(t *testing.T) {
		res, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a fox", Model: "amazon.nova-canvas-v1:0", Quality: "premium",
			ResponseFormat: openai.ImageGenerateParamsResponseFormatB64JSON})
		if err != nil || len(res.Data) != 1 || res.Data[0].B64JSON == "" || res.Usage.TotalTokens != 0 {
			t.Fatalf("%+v %v", res, err)
		}
	})

	t.Run("faults from markers in the prompt", func(t *testing.T) {
		var raw *http.Response
		_, err := client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a storm [[fault:status=429,retry-after=3]]"}, option.WithResponseInto(&raw))
		if e := asOpenAIError(t, err); e.StatusCode != 429 || e.Response.Header.Get("Retry-After") != "3" {
			t.Errorf("%d Retry-After %q", e.StatusCode, e.Response.Header.Get("Retry-After"))
		}
		sim.Enqueue(providersim.Fault{Status: 503})
		_, err = client.Images.Generate(ctx, openai.ImageGenerateParams{Prompt: "a calm sea"})
		if e := asOpenAIError(t, err); e.StatusCode != 503 {
			t.Errorf("a queued 503 gave %d", e.StatusCode)
		}
	})
}
