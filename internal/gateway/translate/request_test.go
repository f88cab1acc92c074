package translate

import "testing"

// TestRequestBound: what the quota reads of a request, in each dialect.
func TestRequestBound(t *testing.T) {
	for _, tc := range []struct {
		front      Dialect
		body       string
		cap, n     int64
		text       int
		lastUser   string
		wantStream bool
	}{
		{Anthropic, `{"max_tokens":100,"system":"abc","messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"hi"},{"role":"user","content":[{"type":"text","text":"again"},{"type":"tool_result","content":"12345"}]}]}`, 100, 1, 20, "again", false},
		{OpenAI, `{"max_completion_tokens":10,"max_tokens":10,"n":3,"stream":true,"messages":[{"role":"system","content":"abc"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`, 10, 3, 6, "a\nb", true},
		{OpenAI, `{"max_tokens":null,"n":null,"messages":[]}`, 0, 1, 0, "", false}, // null is no cap
		{Anthropic, `{"max_tokens":null,"messages":[]}`, 0, 1, 0, "", false},
	} {
		in, aerr := Parse(tc.front, []byte(tc.body))
		if aerr != nil {
			t.Fatal(aerr)
		}
		text, last := in.Text()
		if in.OutputCap() != tc.cap || in.Choices() != tc.n || text != tc.text || last != tc.lastUser || in.Stream() != tc.wantStream || in.Size() != len(tc.body) {
			t.Errorf("%s: cap %d n %d text %d %q stream %v size %d", tc.body, in.OutputCap(), in.Choices(), text, last, in.Stream(), in.Size())
		}
	}
}
