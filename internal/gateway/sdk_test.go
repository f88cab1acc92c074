package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

func (e *env) anthropicClient(who string) anthropic.Client {
	return anthropic.NewClient(
		aoption.WithBaseURL(e.url+"/"),
		aoption.WithAPIKey(currentToken),
		aoption.WithHeader("X-Forwarded-Email", who),
		aoption.WithMaxRetries(0),
	)
}

func (e *env) openaiClient(who string) openai.Client {
	return openai.NewClient(
		ooption.WithBaseURL(e.url+"/v1/"),
		ooption.WithAPIKey(currentToken),
		ooption.WithHeader("X-Forwarded-Email", who),
		ooption.WithMaxRetries(0),
	)
}

// The simulator answers "Simulated reply from <model id> to <N> input tokens."
func simReply(modelID string, inputTokens int) string {
	return fmt.Sprintf("Simulated reply from %s to %d input tokens.", modelID, inputTokens)
}

// TestSDKs drives both official SDKs through both fronts to both provider
// types, streaming and not.
func TestSDKs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cases := []struct {
		alias, modelID, provider string
	}{
		{"sonnet", sonnetID, "anthropic"},
		{"gpt", gptID, "openai"},
	}
	const prompt = "hello there gateway" // 3 words; +2 for the system prompt
	for _, c := range cases {
		want := simReply(c.modelID, 5)
		t.Run("anthropic-front/"+c.provider, func(t *testing.T) {
			client := e.anthropicClient(alice)
			params := anthropic.MessageNewParams{
				Model:     c.alias,
				MaxTokens: 100,
				System:    []anthropic.TextBlockParam{{Text: "be brief"}},
				Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
			}
			msg, err := client.Messages.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := msg.Content[0].Text; got != want {
				t.Errorf("text = %q, want %q", got, want)
			}
			if msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.InputTokens != 5 || msg.Usage.OutputTokens != 8 {
				t.Errorf("stop %q usage %+v", msg.StopReason, msg.Usage)
			}

			stream := client.Messages.NewStreaming(ctx, params)
			var acc anthropic.Message
			for stream.Next() {
				if err := acc.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if got := acc.Content[0].Text; got != want {
				t.Errorf("streamed text = %q, want %q", got, want)
			}
			if acc.StopReason != anthropic.StopReasonEndTurn || acc.Usage.InputTokens != 5 || acc.Usage.OutputTokens != 8 {
				t.Errorf("streamed stop %q usage %+v", acc.StopReason, acc.Usage)
			}
		})
		t.Run("openai-front/"+c.provider, func(t *testing.T) {
			client := e.openaiClient(alice)
			params := openai.ChatCompletionNewParams{
				Model:    c.alias,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage(prompt)},
			}
			cc, err := client.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := cc.Choices[0].Message.Content; got != want {
				t.Errorf("content = %q, want %q", got, want)
			}
			if cc.Choices[0].FinishReason != "stop" || cc.Usage.PromptTokens != 5 || cc.Usage.CompletionTokens != 8 {
				t.Errorf("finish %q usage %+v", cc.Choices[0].FinishReason, cc.Usage)
			}

			for _, includeUsage := range []bool{false, true} {
				p := params
				if includeUsage {
					p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
				}
				stream := client.Chat.Completions.NewStreaming(ctx, p)
				var acc openai.ChatCompletionAccumulator
				chunks, usageChunks := 0, 0
				for stream.Next() {
					chunk := stream.Current()
					chunks++
					if len(chunk.Choices) == 0 {
						usageChunks++
					}
					acc.AddChunk(chunk)
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				if got := acc.Choices[0].Message.Content; got != want {
					t.Errorf("include_usage=%v: streamed content = %q, want %q", includeUsage, got, want)
				}
				if acc.Choices[0].FinishReason != "stop" {
					t.Errorf("include_usage=%v: finish %q", includeUsage, acc.Choices[0].FinishReason)
				}
				wantUsageChunks := 0
				if includeUsage {
					wantUsageChunks = 1
					if acc.Usage.PromptTokens != 5 || acc.Usage.CompletionTokens != 8 {
						t.Errorf("streamed usage %+v", acc.Usage)
					}
				}
				if usageChunks != wantUsageChunks {
					t.Errorf("include_usage=%v: %d usage-only chunks, want %d", includeUsage, usageChunks, wantUsageChunks)
				}
			}
		})
	}

	// Every upstream request carried the provider's key and the caller's
	// identity, and nothing of the caller's credentials.
	for name, reqs := range map[string][]providersim.Recorded{"anthropic": e.anth.Requests(), "openai": e.oai.Requests()} {
		for _, r := range reqs {
			for _, h := range []string{"X-Forwarded-Email", "X-Gateway-Token", "Cookie"} {
				if v := r.Header.Get(h); v != "" {
					t.Errorf("%s: upstream got %s: %q", name, h, v)
				}
			}
			if strings.Contains(r.Header.Get("Authorization"), currentToken) || r.Header.Get("X-Api-Key") == currentToken {
				t.Errorf("%s: the gateway token reached the upstream", name)
			}
			if !strings.Contains(string(r.Body), alice) {
				t.Errorf("%s: upstream body lacks the caller's identity: %s", name, r.Body)
			}
		}
	}
}
