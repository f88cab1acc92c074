package translate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// validSeeds: JSON at the edges of the grammar, for validEvent against
// jsontext.
var validSeeds = []string{
	``, ` `, `{}`, `[]`, `""`, `0`, `-0`, `-0.0e-0`, `1E+2`, `1e`, `1e+`, `1.`, `.1`, `01`, `-01`, `-`, `+1`,
	`00`, `1.5e300`, `123456789012345678901234567890`, `0x1`, `1_0`, `Infinity`, `NaN`, `-Infinity`,
	`true`, `false`, `null`, `tru`, `nul`, `nulll`, `True`, `truex`, `[truex]`, `[true,]`, `[,]`, `[1 2]`,
	` {} `, "\t{\n}\r\n", "\v{}", "\f{}", "\u00a0{}", "\ufeff{}", `{} {}`, `{}x`, `{}}`, `{`, `}`, `[`, `]`, `[}`, `{]`,
	`{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{,"a":1}`, `{"a":1,"a":2}`, `{a:1}`, `{'a':1}`, `{1:1}`, `{null:1}`,
	`{"a" : 1 , "b" : [ 1 , { } ] }`, `[[[[]]]]`, `[[[[]]]`, `{"a":{"b":{"c":[]}}}`,
	`"\""`, `"\\"`, `"\/"`, `"\b\f\n\r\t"`, `"\a"`, `"\x41"`, `"\'"`, `"\u0041"`, `"\u00e9\u00E9"`, `"\u12"`, `"\u12g4"`, `"\U0041"`,
	`"\ud800"`, `"\udc00\ud800"`, `"\ud83d\ude00"`, `"\ud800\u0041"`, `"\ud800\"`, `"\`, `"\u"`, `"abc`, `"abc\"`,
	"\"\x00\"", "\"\x1f\"", "\"\x7f\"", "\"\t\"", "\"\n\"", "\"\xff\"", "\"\xc3\xa9\"", "\"\xe2\x82\"", "\"\xe2\x82", "\"\xed\xa0\x80\"",
	"{\"\xff\":1}", `{"usage":null}`, `{"usage":{}}`, `{"USAGE":1,"Error":"x"}`, `{"error":null,"error":{}}`,
	`{"\u0075sage":{}}`, "{\"u\u017fage\":{}}", `{"x":{"usage":{}}}`, `[{"usage":{}}]`, `{"usage":nul}`,
	`{"usages":{}}`, `{"usag":{}}`, `{"error":false}`, `{"error":"usage"}`, `{"a":"\"usage\":{}"}`,
	// Strings whose special bytes fall at each place of an 8-byte word.
	`"0123456\"`, `"01234567\"`, `"012345678\"`, "\"0123456\x01789\"", "\"012345678901234\\n567\"", `"0123456789abcdef"`,
	"\"\x80\x80\x80\x80\x80\x80\x80\x80\x80\"", "\"\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\x1f\"", "\"\xdc\xdc\xdc\xdc\xdc\xdc\xdc\xdc\"",
	"\"\xa2\xa2\xa2\xa2\xa2\xa2\xa2\xa2\"", "\"\x22\"",
	// Nesting at jsontext's limit and one past it; beyond 64 levels the
	// validator keeps its stack differently.
	nested("[", "]", 64), nested("[", "]", 65), nested(`{"a":`, "}", 65) + "x",
	nested("[", "]", maxNestingDepth), nested("[", "]", maxNestingDepth+1),
	nested(`{"a":`, "}", maxNestingDepth), nested(`{"a":`, "}", maxNestingDepth+1),
	nested(`[{"a":`, "}]", 70), nested(`[{"a":`, "]}", 70), strings.Repeat("[", 100) + strings.Repeat("]", 99) + "}",
}

func nested(open, close string, n int) string {
	return strings.Repeat(open, n) + "0" + strings.Repeat(close, n)
}

// streamSeeds are the events of the provider streams in testdata and the
// tests' seeds.
func streamSeeds(t testing.TB) []string {
	var seeds []string
	for _, f := range []string{"testdata/providersim-openai.sse", "testdata/providersim-anthropic.sse"} {
		seeds = append(seeds, eventData(t, mustRead(t, f))...)
	}
	return append(seeds, append(eventData(t, openaiStreamSeed), eventData(t, anthropicStreamSeed)...)...)
}

func eventData(t testing.TB, stream string) []string {
	rd := NewReader(strings.NewReader(stream))
	var out []string
	for {
		var ev Event
		err := rd.Next(&ev)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(ev.Data))
	}
}

func TestValidEventAsJSONText(t *testing.T) {
	for _, s := range append(validSeeds, streamSeeds(t)...) {
		checkValidEvent(t, []byte(s))
	}
}

func FuzzValidEvent(f *testing.F) {
	for _, s := range append(validSeeds, streamSeeds(f)...) {
		if len(s) < 1000 { // the deepest nestings, mutated, only slow the fuzzer
			f.Add([]byte(s))
		}
	}
	f.Fuzz(checkValidEvent)
}

// checkValidEvent: validEvent accepts what jsontext accepts under the
// lenient rules, and of an object's top-level members it misses no usage
// or error that is not null; it reports one only when it is there or its
// name needs unescaping or folding to tell.
func checkValidEvent(t *testing.T, b []byte) {
	ok, members := validEvent(b)
	if want := validLenient(b); ok != want {
		t.Fatalf("%.200q: validEvent %v, jsontext %v", b, ok, want)
	}
	if !ok {
		return
	}
	want, plain, err := topMembers(b)
	if err != nil {
		t.Fatal(err)
	}
	if members&want != want || plain && members != want {
		t.Fatalf("%.200q: members %b, want %b", b, members, want)
	}
}

// topMembers reads the top-level members of the valid b with jsontext,
// and matches their names by unmarshalLenient: which are usage and error
// and not null. plain is whether every name is ASCII without escapes.
func topMembers(b []byte) (members uint8, plain bool, err error) {
	dec := jsontext.NewDecoder(bytes.NewReader(b), validOpts...)
	if dec.PeekKind() != '{' {
		return 0, true, nil
	}
	if _, err := dec.ReadToken(); err != nil {
		return 0, false, err
	}
	plain = true
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue() // the raw name
		if err != nil {
			return 0, false, err
		}
		name = bytes.Clone(name) // the next read reuses the decoder's buffer
		for _, c := range name {
			if c == '\\' || c >= 0x80 {
				plain = false
			}
		}
		v, err := dec.ReadValue()
		if err != nil {
			return 0, false, err
		}
		if v.Kind() == 'n' {
			continue
		}
		var m struct {
			Usage *int `json:"usage"`
			Error *int `json:"error"`
		}
		if err := jsonv1.Unmarshal(append(append([]byte("{"), name...), ":1}"...), &m); err != nil {
			return 0, false, fmt.Errorf("%q: %w", name, err)
		}
		if m.Usage != nil {
			members |= memberUsage
		}
		if m.Error != nil {
			members |= memberError
		}
	}
	return members, plain, nil
}

func BenchmarkValidEvent(b *testing.B) {
	var (
		events [][]byte
		size   int
	)
	for _, f := range []string{"testdata/providersim-openai.sse", "testdata/providersim-anthropic.sse"} {
		for _, e := range eventData(b, mustRead(b, f)) {
			if e != "[DONE]" {
				events, size = append(events, []byte(e)), size+len(e)
			}
		}
	}
	b.Run("validEvent", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			for _, e := range events {
				if ok, _ := validEvent(e); !ok {
					b.Fatal(e)
				}
			}
		}
	})
	b.Run("jsontext", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			for _, e := range events {
				if !validLenient(e) {
					b.Fatal(e)
				}
			}
		}
	})
}

func mustRead(t testing.TB, name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
