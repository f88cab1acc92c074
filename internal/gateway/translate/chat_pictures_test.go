package translate

import (
	"bytes"
	"encoding/json"
	"testing"
)

// A Conversation's pictures reach each dialect in its own form, before
// the text of their message: Anthropic base64 image blocks, OpenAI
// image_url parts holding data URLs. A message without pictures stays a
// plain string; Images counts them for the quota.
func TestChatPictures(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\nfake")
	conv := Conversation{Messages: []Message{
		{Role: "user", Text: "what is this?", Pictures: []Picture{{MediaType: "image/png", Data: png}, {MediaType: "image/jpeg", Data: []byte{0xff, 0xd8}}}},
		{Role: "assistant", Text: "two pictures"},
		{Role: "user", Text: "thanks"},
	}, MaxTokens: 64}
	in := NewConversation("m", conv)
	if n := in.Images(); n != 2 {
		t.Errorf("Images() = %d, want 2", n)
	}

	var out bytes.Buffer
	if aerr := in.Translator(Anthropic).Request(in, testTarget, &out); aerr != nil {
		t.Fatal(aerr)
	}
	var a struct {
		Messages []struct {
			Role    string
			Content json.RawMessage
		}
	}
	if err := json.Unmarshal(out.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	const wantAnth = `[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgpmYWtl"}},` +
		`{"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9g="}},{"type":"text","text":"what is this?"}]`
	if got := string(a.Messages[0].Content); got != wantAnth {
		t.Errorf("Anthropic content\n got %s\nwant %s", got, wantAnth)
	}
	if got := string(a.Messages[2].Content); got != `"thanks"` {
		t.Errorf("Anthropic text-only content %s", got)
	}

	out.Reset()
	if aerr := in.Translator(OpenAI).Request(in, testTarget, &out); aerr != nil {
		t.Fatal(aerr)
	}
	var o struct {
		Messages []struct {
			Role    string
			Content json.RawMessage
		}
	}
	if err := json.Unmarshal(out.Bytes(), &o); err != nil {
		t.Fatal(err)
	}
	const wantOAI = `[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgpmYWtl"}},` +
		`{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9g="}},{"type":"text","text":"what is this?"}]`
	if got := string(o.Messages[0].Content); got != wantOAI {
		t.Errorf("OpenAI content\n got %s\nwant %s", got, wantOAI)
	}
	if got := string(o.Messages[1].Content); got != `"two pictures"` {
		t.Errorf("OpenAI text-only content %s", got)
	}
}
