package translate

import (
	"bytes"
	"encoding/json"
	"testing"
)

// upstreamBody translates body from front to upstream for target and
// decodes what the provider would receive.
func upstreamBody(t *testing.T, front, upstream Dialect, body string, tg Target) map[string]any {
	t.Helper()
	in, aerr := Parse(front, []byte(body))
	if aerr != nil {
		t.Fatalf("parse: %v", aerr)
	}
	var out bytes.Buffer
	if aerr := For(front, upstream).Request(in, tg, &out); aerr != nil {
		t.Fatalf("request: %d %s", aerr.Status, aerr.Msg)
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("upstream body %s: %v", out.Bytes(), err)
	}
	return v
}

// refused translates body and returns the caller's error, failing when the
// translation went through.
func refused(t *testing.T, front, upstream Dialect, body string) *Error {
	t.Helper()
	in, aerr := Parse(front, []byte(body))
	if aerr != nil {
		return aerr
	}
	var out bytes.Buffer
	aerr = For(front, upstream).Request(in, Target{ModelID: "id", MaxTokens: 9}, &out)
	if aerr == nil {
		t.Fatalf("%s went through: %s", body, out.Bytes())
	}
	return aerr
}

// jsonPath reads a value from decoded JSON by keys and indexes.
func jsonPath(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

var testTarget = Target{ModelID: "upstream-id", MaxTokens: 321, User: "u@example.com"}

// withUsage is an OpenAI request whose caller did (or did not) ask for
// the usage chunk.
func withUsage(include bool) *Request {
	return &Request{oai: &openaiRequest{StreamOptions: &openaiStreamOptions{IncludeUsage: include}}}
}
