package providersim_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

func testPNG(t *testing.T, w, h int) string {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// TestPictures: both SDKs' picture forms are read, measured by their
// API's sizing, listed on [[pictures]], checked against their media type,
// and refused by a text-only model.
func TestPictures(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{APIKey: testKey, TextOnlyModels: []string{"claude-haiku-4-5-20251001", "gpt-3.5-turbo"}})
	ctx := context.Background()
	pic := testPNG(t, 1500, 750) // Anthropic: 1500×750/750 = 1500 tokens; OpenAI: no scaling, 3×2 tiles: 85 + 170×6 = 1105

	t.Run("anthropic", func(t *testing.T) {
		c := anthropicClient(url)
		msg, err := c.Messages.New(ctx, anthropic.MessageNewParams{Model: claudeModel, MaxTokens: 100, Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(anthropic.NewImageBlockBase64("image/png", pic), anthropic.NewTextBlock("[[pictures]]")),
		}})
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Content[0].Text; got != "Pictures: image/png 1500x750." || msg.Usage.InputTokens != 1+1500 {
			t.Errorf("reply %q, %d input tokens", got, msg.Usage.InputTokens)
		}
		_, err = c.Messages.New(ctx, anthropic.MessageNewParams{Model: claudeModel, MaxTokens: 100, Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(anthropic.NewImageBlockBase64("image/jpeg", pic), anthropic.NewTextBlock("hi")),
		}})
		var aerr *anthropic.Error
		if !errors.As(err, &aerr) || aerr.StatusCode != http.StatusBadRequest || !strings.Contains(aerr.Error(), "does not match the provided media type") {
			t.Errorf("a PNG sent as JPEG: %v", err)
		}
		_, err = c.Messages.New(ctx, anthropic.MessageNewParams{Model: "claude-haiku-4-5-20251001", MaxTokens: 100, Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(anthropic.NewImageBlockBase64("image/png", pic), anthropic.NewTextBlock("hi")),
		}})
		if !errors.As(err, &aerr) || aerr.StatusCode != http.StatusBadRequest {
			t.Errorf("a text-only model: %v", err)
		}
	})
	t.Run("openai", func(t *testing.T) {
		c := openaiClient(url)
		part := openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64," + pic})
		cc, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: gptModel, Messages: []openai.ChatCompletionMessageParamUnion{
			openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{part, openai.TextContentPart("[[pictures]]")}),
		}})
		if err != nil {
			t.Fatal(err)
		}
		if got := cc.Choices[0].Message.Content; got != "Pictures: image/png 1500x750." || cc.Usage.PromptTokens != 1+85+170*6 {
			t.Errorf("reply %q, %d prompt tokens", got, cc.Usage.PromptTokens)
		}
		_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-3.5-turbo", Messages: []openai.ChatCompletionMessageParamUnion{
			openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{part, openai.TextContentPart("hi")}),
		}})
		var oerr *openai.Error
		if !errors.As(err, &oerr) || oerr.StatusCode != http.StatusBadRequest || !strings.Contains(oerr.Message, "image_url is only supported by certain models") {
			t.Errorf("a text-only model: %v", err)
		}
	})
}
