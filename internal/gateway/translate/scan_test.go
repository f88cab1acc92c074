package translate

import (
	"bytes"
	"errors"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// The readings the scanning Response replaced: the whole reply unmarshalled
// into the few fields the gateway needs. The scan must agree with them on
// every input: refuse what they refuse, meter what they meter.
func unmarshalOpenAIReply(body []byte) (metering.Usage, error) {
	var c struct {
		Choices []struct{}   `json:"choices"`
		Usage   *openaiUsage `json:"usage"`
	}
	if err := unmarshalLenient(body, &c); err != nil {
		return metering.Usage{}, err
	}
	if c.Choices == nil {
		return metering.Usage{}, errors.New("the response has no choices")
	}
	if c.Usage == nil {
		return metering.Usage{}, nil
	}
	return c.Usage.usage(), nil
}

func unmarshalAnthropicReply(body []byte) (metering.Usage, error) {
	var m struct {
		Type  string         `json:"type"`
		Usage anthropicUsage `json:"usage"`
	}
	if err := unmarshalLenient(body, &m); err != nil {
		return metering.Usage{}, err
	}
	if m.Type != "message" {
		return metering.Usage{}, errors.New(`the response is not a "message"`)
	}
	return m.Usage.usage(), nil
}

var replySeeds = []string{
	`{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":10,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":4}}}`,
	`{"id":"m","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":2,"cache_creation_input_tokens":1}}`,
	// Case variants and duplicates: the last wins, merged into the first.
	`{"CHOICES":[],"Usage":{"prompt_tokens":1},"usage":{"completion_tokens":2},"TYPE":"message","Type":"message"}`,
	`{"choices":[],"usage":{"prompt_tokens":7},"usage":null}`,
	`{"choices":[],"choices":null}`,
	`{"choices":null,"choices":[{}]}`,
	`{"ch\u006fices":[null,{}],"\u0075sage":{"prompt_tokens":3},"typ\u0065":"messag\u0065"}`,
	`{"choices":[1]}`,
	`{"choices":{}}`,
	`{"choices":"x"}`,
	`{"choices":[],"usage":{"prompt_tokens":"1"}}`,
	`{"choices":[],"usage":{"prompt_tokens":null,"completion_tokens":1.0}}`,
	`{"choices":[],"usage":5}`,
	`{"type":"message","usage":{"input_tokens":-1}}`,
	`{"type":5,"usage":{}}`,
	`{"type":null}`,
	"{\"choices\":[],\"x\":\"\xff\"}",
	"{\"type\":\"message\",\"usage\":{\"input_tokens\":1},\"\xffname\":1}",
	`{"choices":[]} `,
	`{"choices":[]} {}`,
	`{"choices":[]}x`,
	`{"choices":[],}`,
	`{"choices":[{"a":1,}]}`,
	`{"choices":[{"a":tru}]}`,
	`{"type":"message","type":"error"}`,
	`[]`, `null`, `"message"`, ``, ` `, `{`, `{"choices"`, `{"choices":`,
	// Usage blocks: nested details, duplicates that merge or clear, counts
	// that are not integers, at the edges of int64.
	`{"choices":[],"usage":{"prompt_tokens":10,"prompt_tokens_details":{"cached_tokens":4,"cache_creation_tokens":2},"cache_creation_input_tokens":3}}`,
	`{"choices":[],"usage":{"prompt_tokens_details":{"cached_tokens":4},"PROMPT_TOKENS_DETAILS":{"Cache_Creation_Tokens":2},"prompt_tokens":9}}`,
	`{"choices":[],"usage":{"prompt_tokens_details":{"cached_tokens":4},"prompt_tokens_details":null,"prompt_tokens":9}}`,
	`{"choices":[],"usage":{"prompt_tokens":9},"usage":null,"usage":{"completion_tokens":1}}`,
	`{"choices":[],"usage":{"prompt_tokens_details":[],"prompt_tokens":9}}`,
	`{"choices":[],"usage":{"prompt_tokens_details":{"cached_tokens":"4"}}}`,
	`{"choices":[],"usage":{"prompt_tokens":1e2}}`,
	`{"choices":[],"usage":{"prompt_tokens":-0,"completion_tokens":-5}}`,
	`{"choices":[],"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":-9223372036854775808}}`,
	`{"choices":[],"usage":{"prompt_tokens":9223372036854775808}}`,
	`{"choices":[],"usage":{"prompt_tokens":-9223372036854775809}}`,
	`{"choices":[],"usage":{"prompt_tokens":99999999999999999999999}}`,
	`{"choices":[],"usage":{"prompt_tokens":true}}`,
	`{"choices":[],"usage":{"other":{"nested":[1,2,{"x":null}]},"prompt_tokens":2}}`,
	`{"type":"message","usage":{"input_tokens":3},"usage":{"output_tokens":4},"usage":null}`,
	`{"type":"message","usage":{"input_tokens":1.5}}`,
	`{"type":"message","usage":[]}`,
	`{"type":"messag\u0065","usage":{"INPUT_TOKENS":7,"cache_read_input_tokens":null}}`,
	`{"type":"message ","usage":{}}`,
	// Escaped quotes and backslashes inside strings, brackets in strings.
	`{"x":"a\"b\\","choices":[{"m":"}]\\\"{["}],"usage":{"prompt_tokens":3}}`,
	`{"x":"\\","usage":{"prompt_tokens":"\"},\"prompt_tokens\":1"},"choices":[]}`,
	`{ "choices" : [ { } , null ] , "usage" : { "prompt_tokens" : 4 } }`,
	// Names that fold to a field's from another length: the Kelvin sign, the long s.
	"{\"choices\":[],\"usage\":{\"prompt_to\u212aens\":5,\"completion_tokens\":1}}",
	"{\"choices\":[],\"u\u017fage\":{\"prompt_tokens\":5}}",
	"{\"choices\":[],\"u\xc5\xbfage\":{\"prompt_tokens\":5}}",
}

func TestScannedRepliesReadAsUnmarshalled(t *testing.T) {
	for _, body := range replySeeds {
		checkScannedReply(t, []byte(body))
	}
}

func FuzzScannedReply(f *testing.F) {
	for _, s := range replySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkScannedReply)
}

func checkScannedReply(t *testing.T, body []byte) {
	for _, c := range []struct {
		name string
		scan func([]byte, *bytes.Buffer) (metering.Usage, error)
		full func([]byte) (metering.Usage, error)
	}{
		{"openai", openaiOpenAI{}.Response, unmarshalOpenAIReply},
		{"anthropic", anthropicAnthropic{}.Response, unmarshalAnthropicReply},
	} {
		var out bytes.Buffer
		got, gerr := c.scan(body, &out)
		want, werr := c.full(body)
		if (gerr == nil) != (werr == nil) || got != want {
			t.Errorf("%s %q: scanned %+v, %v; unmarshalled %+v, %v", c.name, body, got, gerr, want, werr)
		}
		if gerr == nil && !bytes.Equal(out.Bytes(), body) {
			t.Errorf("%s %q: passed on as %q", c.name, body, out.Bytes())
		}
		if gerr != nil && out.Len() > 0 {
			t.Errorf("%s %q: refused, yet %q written", c.name, body, out.Bytes())
		}
	}
}

func BenchmarkSameDialectReply(b *testing.B) {
	body := []byte(`{"id":"chatcmpl-0123456789","object":"chat.completion","created":1764567890,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Once upon a time a gateway stood between the people and the models. It counted every token that passed, wrote each one in its ledger, and never told anyone what was said. The people trusted it, and the models answered through it day and night, until the gateway knew the cost of every word."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":17,"completion_tokens":64,"total_tokens":81,"prompt_tokens_details":{"cached_tokens":0}},"system_fingerprint":"fp_0123"}`)
	var out bytes.Buffer
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out.Reset()
			if _, err := (openaiOpenAI{}).Response(body, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := unmarshalOpenAIReply(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
