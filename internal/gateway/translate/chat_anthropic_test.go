package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

func TestChatAnthropicRequest(t *testing.T) {
	in := NewConversation("sonnet", conversation)
	var out bytes.Buffer
	if aerr := in.Translator(Anthropic).Request(in, testTarget, &out); aerr != nil {
		t.Fatal(aerr)
	}
	var v struct {
		Model     string        `json:"model"`
		MaxTokens int64         `json:"max_tokens"`
		Stream    bool          `json:"stream"`
		Messages  []textMessage `json:"messages"`
		Metadata  struct {
			UserID string `json:"user_id"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Model != "upstream-id" || v.MaxTokens != 64 || !v.Stream || v.Metadata.UserID != "u@example.com" ||
		len(v.Messages) != 3 || v.Messages[0] != (textMessage{"user", `hi <b> & "you"`}) || v.Messages[2].Content != "again" {
		t.Errorf("upstream body %s", out.Bytes())
	}
	if !in.Stream() || in.OutputCap() != 64 || in.Choices() != 1 || in.Size() != len(`hi <b> & "you"`)+len("hello")+len("again")+3*messageFramingBytes {
		t.Errorf("stream %v cap %d n %d size %d", in.Stream(), in.OutputCap(), in.Choices(), in.Size())
	}
	if text, last := in.Text(); text != 24 || last != "again" {
		t.Errorf("text %d %q", text, last)
	}
}

func TestChatAnthropicStream(t *testing.T) {
	st := NewConversation("m", conversation).Translator(Anthropic).Stream(nil)
	text, begunAt, err := readConversation(st, anthropicStreamSeed)
	if err != nil || text != "Hi" || begunAt != 0 {
		t.Fatalf("text %q begun at %d: %v", text, begunAt, err)
	}
	if u := st.Usage(); u != (metering.Usage{Input: 5, Output: 7, CacheRead: 2}) {
		t.Errorf("usage %+v", u)
	}
	// Cut short, and an error event: faults, with the text so far read.
	st = NewConversation("m", conversation).Translator(Anthropic).Stream(nil)
	cut := anthropicStreamSeed[:bytes.Index([]byte(anthropicStreamSeed), []byte("event: content_block_stop"))]
	if text, _, err := readConversation(st, cut); text != "Hi" || !isFault(err, FaultTruncated) {
		t.Errorf("cut: %q %v", text, err)
	}
	st = NewConversation("m", conversation).Translator(Anthropic).Stream(nil)
	if _, _, err := readConversation(st, cut+"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n"); !isFault(err, FaultReported) {
		t.Errorf("error event: %v", err)
	}
}

func isFault(err error, k FaultKind) bool {
	var f *Fault
	return errors.As(err, &f) && f.Kind == k
}
