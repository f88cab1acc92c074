package providersim_test

import (
	"context"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// markdownReply has the line breaks, indentation and runs of spaces that
// Markdown depends on and that a word-by-word reply would lose.
const markdownReply = "# Title\n\n| a  | b |\n|----|---|\n| 1  | 2 |\n\n- one\n  - nested\n\n```go\nfunc main() {\n\tprintln(\"hi\")\n}\n```\n"

// TestEchoMarker: [[echo]] makes the reply exactly the text after it, on
// both dialects, streamed or not, in pieces that join back to it.
func TestEchoMarker(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{APIKey: testKey, Chunks: 5})
	ctx := context.Background()
	prompt := "Please answer with this.\n[[echo]]\n" + markdownReply
	words := len(strings.Fields(markdownReply))

	t.Run("anthropic", func(t *testing.T) {
		client := anthropicClient(url)
		params := anthropic.MessageNewParams{Model: claudeModel, MaxTokens: 1024, Messages: []anthropic.MessageParam{userMsg(prompt)}}
		msg, err := client.Messages.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Content[0].Text; got != markdownReply {
			t.Fatalf("reply %q, want %q", got, markdownReply)
		}
		if msg.Usage.OutputTokens != int64(words) {
			t.Errorf("output tokens %d, want %d (words)", msg.Usage.OutputTokens, words)
		}
		stream := client.Messages.NewStreaming(ctx, params)
		defer stream.Close()
		var pieces []string
		for stream.Next() {
			if ev := stream.Current(); ev.Type == "content_block_delta" {
				pieces = append(pieces, ev.Delta.Text)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if len(pieces) != 5 || strings.Join(pieces, "") != markdownReply {
			t.Fatalf("streamed %d pieces %q, want 5 joining to the reply", len(pieces), pieces)
		}
	})

	t.Run("openai", func(t *testing.T) {
		client := openaiClient(url)
		acc, _, err := collectOpenAI(t, client, ctx, openai.ChatCompletionNewParams{
			Model: gptModel, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := acc.Choices[0].Message.Content; got != markdownReply {
			t.Fatalf("reply %q, want %q", got, markdownReply)
		}
	})

	t.Run("max_tokens keeps the text's own spacing up to the last word", func(t *testing.T) {
		client := anthropicClient(url)
		msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: claudeModel, MaxTokens: 5, Messages: []anthropic.MessageParam{userMsg(prompt)}})
		if err != nil {
			t.Fatal(err)
		}
		if want := "# Title\n\n| a  |"; msg.Content[0].Text != want || msg.StopReason != anthropic.StopReasonMaxTokens {
			t.Fatalf("reply %q stop %q, want %q max_tokens", msg.Content[0].Text, msg.StopReason, want)
		}
	})

	t.Run("only the last user message counts", func(t *testing.T) {
		client := anthropicClient(url)
		msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: claudeModel, MaxTokens: 64, Messages: []anthropic.MessageParam{
			userMsg(prompt), anthropic.NewAssistantMessage(anthropic.NewTextBlock(markdownReply)), userMsg("and now?"),
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(msg.Content[0].Text, "Simulated reply from") {
			t.Fatalf("a marker in the history still echoed: %q", msg.Content[0].Text)
		}
	})
}
