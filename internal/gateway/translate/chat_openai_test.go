package translate

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

func TestChatOpenAIRequest(t *testing.T) {
	in := NewConversation("gpt", conversation)
	var out bytes.Buffer
	if aerr := in.Translator(OpenAI).Request(in, testTarget, &out); aerr != nil {
		t.Fatal(aerr)
	}
	v := map[string]any{}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v["model"] != "upstream-id" || v["user"] != "u@example.com" || v["max_tokens"] != 64.0 || v["stream"] != true ||
		jsonPath(v, "stream_options", "include_usage") != true || jsonPath(v, "messages", 0, "content") != `hi <b> & "you"` ||
		jsonPath(v, "messages", 1, "role") != "assistant" {
		t.Errorf("upstream body %s", out.Bytes())
	}
}

func TestChatOpenAIStream(t *testing.T) {
	st := NewConversation("m", conversation).Translator(OpenAI).Stream(nil)
	text, begunAt, err := readConversation(st, openaiStreamSeed)
	if err != nil || text != "Hi" || begunAt != 0 {
		t.Fatalf("text %q begun at %d: %v", text, begunAt, err)
	}
	if u := st.Usage(); u != (metering.Usage{Input: 5, Output: 3, CacheRead: 4}) {
		t.Errorf("usage %+v", u)
	}
	// Without [DONE], a stream that sent its finish_reason is complete;
	// one cut before it is not.
	noDone := strings.TrimSuffix(openaiStreamSeed, "data: [DONE]\n\n")
	if _, _, err := readConversation(NewConversation("m", conversation).Translator(OpenAI).Stream(nil), noDone); err != nil {
		t.Errorf("no [DONE]: %v", err)
	}
	cut := openaiStreamSeed[:strings.Index(openaiStreamSeed, `"finish_reason":"tool_calls"`)-60]
	cut = cut[:strings.LastIndex(cut, "data:")]
	if text, _, err := readConversation(NewConversation("m", conversation).Translator(OpenAI).Stream(nil), cut); text != "Hi" || !isFault(err, FaultTruncated) {
		t.Errorf("cut: %q %v", text, err)
	}
	if _, _, err := readConversation(NewConversation("m", conversation).Translator(OpenAI).Stream(nil), "data: {\"error\":{\"message\":\"busy\"}}\n\n"); !isFault(err, FaultReported) {
		t.Errorf("error chunk: %v", err)
	}
	if _, _, err := readConversation(NewConversation("m", conversation).Translator(OpenAI).Stream(nil), "data: [DONE]\n\n"); !isFault(err, FaultTruncated) {
		t.Errorf("[DONE] alone: %v", err)
	}
}
