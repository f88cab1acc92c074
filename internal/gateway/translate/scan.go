package translate

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// A same-dialect reply passes through as the provider sent it; the gateway
// needs only a few of its members (the usage). The reply is validated
// whole with the lenient decoder's rules (duplicate names, invalid UTF-8
// allowed; validEvent is jsontext's check, quicker), so a reply
// unmarshalLenient would refuse is refused; then
// objScanner walks the members of the valid object by their delimiters,
// and only the few needed are read. Names match as unmarshalLenient
// matches them (case-insensitively), and a repeated member is read again
// over the first, as it would be.
type objScanner struct {
	b    []byte // a valid JSON object
	i    int    // where the next member (or the end) starts
	name []byte // an unquoted name with escapes
}

var errNotObject = errors.New("not a JSON object")

// scanObject starts reading body's top-level object, after checking that
// body is valid JSON.
func scanObject(body []byte) (objScanner, error) {
	if ok, _ := validEvent(body); !ok {
		return objScanner{}, errors.New("invalid JSON")
	}
	return scanValid(body)
}

// scanValid starts reading v, a valid JSON value, as an object.
func scanValid(v []byte) (objScanner, error) {
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return objScanner{}, errNotObject
	}
	return objScanner{b: v, i: i + 1}, nil
}

// next reads the next member's name, unquoted; ok is false after the last
// member.
func (s *objScanner) next() (name []byte, ok bool) {
	i := skipSpace(s.b, s.i)
	if i < len(s.b) && s.b[i] == ',' {
		i = skipSpace(s.b, i+1)
	}
	if i >= len(s.b) || s.b[i] != '"' {
		s.i = i
		return nil, false // the closing brace: the input is valid
	}
	end := skipString(s.b, i)
	raw := s.b[i:end]
	i = skipSpace(s.b, end)
	s.i = skipSpace(s.b, i+1) // past the colon, at the value
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], true
	}
	// The name is valid; AppendUnquote's only complaint left is invalid
	// UTF-8, which the lenient rules take (replaced).
	s.name, _ = jsontext.AppendUnquote(s.name[:0], raw)
	return s.name, true
}

// value reads the current member's value.
func (s *objScanner) value() jsontext.Value {
	end := skipValue(s.b, s.i)
	v := s.b[s.i:end]
	s.i = end
	return v
}

// skip reads past the current member's value.
func (s *objScanner) skip() { s.i = skipValue(s.b, s.i) }

// The skips below read valid JSON only (what validEvent passed): they
// find where a value ends by its delimiters, and stop at the end of the
// input rather than run past it.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the end of the string starting at b[i] (a quote):
// the next quote not escaped, that is after an even run of backslashes.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			break
		}
		i += j
		k := i
		for b[k-1] == '\\' { // the opening quote stops this
			k--
		}
		if (i-k)%2 == 0 {
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the end of the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) { // a number, true, false or null
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// isName reports whether a member's name matches a field's as
// unmarshalLenient's (encoding/json's) case-insensitive matching does.
func isName(name []byte, field string) bool {
	if len(name) != len(field) {
		// Only a name with a non-ASCII letter (the Kelvin sign folds to k,
		// the long s to s) matches a field of another length.
		for _, c := range name {
			if c >= utf8.RuneSelf {
				return strings.EqualFold(string(name), field)
			}
		}
		return false
	}
	return string(name) == field || strings.EqualFold(string(name), field)
}

// objectArray reads the current member's value as unmarshalling it into a
// []struct{} would: an array of objects (or nulls) is there, with n
// elements; null is not; anything else is an error.
func (s *objScanner) objectArray() (present bool, n int, err error) {
	v := s.value()
	switch v.Kind() {
	case 'n':
		return false, 0, nil
	case '[':
	default:
		return false, 0, errors.New("not an array")
	}
	for i := skipSpace(v, 1); i < len(v) && v[i] != ']'; n++ {
		if v[i] != '{' && v[i] != 'n' {
			return false, 0, errors.New("an array element is not an object")
		}
		i = skipSpace(v, skipValue(v, i))
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return true, n, nil
}

// A reply's usage block is a few counts; reading it member by member costs
// a fraction of unmarshalling it by reflection. readCounts reads the
// object v into x as unmarshalLenient reads it into a struct of int64
// fields: counts are the members it fills (matched in order), null leaves
// x as it was, anything but an integer that fits is an error. nested,
// when set, is given every other member.
func readCounts[T any](v jsontext.Value, x *T, counts []count[T], nested func(x *T, name []byte, v jsontext.Value) error) error {
	if v.Kind() == 'n' {
		return nil
	}
	s, err := scanValid(v)
	if err != nil {
		return err
	}
members:
	for {
		name, ok := s.next()
		if !ok {
			return nil
		}
		for _, c := range counts {
			if isName(name, c.name) {
				if err := readCount(s.value(), c.field(x)); err != nil {
					return err
				}
				continue members
			}
		}
		if nested == nil {
			s.skip()
		} else if err := nested(x, name, s.value()); err != nil {
			return err
		}
	}
}

// count is a member read as a count: its name and the field it fills.
type count[T any] struct {
	name  string
	field func(*T) *int64
}

// readCountsInto reads v into *p, as unmarshalLenient reads it into a
// pointer to a struct: null sets it nil; an object fills it, merging
// into what an earlier duplicate left.
func readCountsInto[T any](v jsontext.Value, p **T, counts []count[T], nested func(x *T, name []byte, v jsontext.Value) error) error {
	switch v.Kind() {
	case 'n':
		*p = nil
		return nil
	case '{':
	default:
		return errNotObject
	}
	if *p == nil {
		*p = new(T)
	}
	return readCounts(v, *p, counts, nested)
}

var errNotCount = errors.New("a token count is not an integer")

// readCount sets *p to the integer v, as unmarshalling into an int64 does:
// a fraction or an exponent, even 1.0, is not one.
func readCount(v jsontext.Value, p *int64) error {
	switch v.Kind() {
	case 'n':
		return nil
	case '0':
	default:
		return errNotCount
	}
	neg := v[0] == '-'
	digits := v
	if neg {
		digits = v[1:]
	}
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return errNotCount
		}
		if n > (math.MaxUint64-9)/10 {
			return errNotCount
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case !neg && n <= math.MaxInt64:
		*p = int64(n)
	case neg && n <= 1<<63:
		*p = int64(-n) // wraps to MinInt64 at 1<<63, as it should
	default:
		return errNotCount
	}
	return nil
}

// readOpenAIUsage reads a usage member into *u as unmarshalLenient reads it
// into a *openaiUsage.
func readOpenAIUsage(v jsontext.Value, u **openaiUsage) error {
	return readCountsInto(v, u, openaiUsageCounts, readPromptTokensDetails)
}

var openaiUsageCounts = []count[openaiUsage]{
	{"prompt_tokens", func(u *openaiUsage) *int64 { return &u.PromptTokens }},
	{"completion_tokens", func(u *openaiUsage) *int64 { return &u.CompletionTokens }},
	{"total_tokens", func(u *openaiUsage) *int64 { return &u.TotalTokens }},
	{"cache_creation_input_tokens", func(u *openaiUsage) *int64 { return &u.CacheCreationInputTokens }},
}

// readPromptTokensDetails reads the one object in an OpenAI usage block.
func readPromptTokensDetails(u *openaiUsage, name []byte, v jsontext.Value) error {
	if !isName(name, "prompt_tokens_details") {
		return nil
	}
	return readCountsInto(v, &u.PromptTokensDetails, promptTokensDetailsCounts, nil)
}

var promptTokensDetailsCounts = []count[openaiPromptTokensDetails]{
	{"cached_tokens", func(d *openaiPromptTokensDetails) *int64 { return &d.CachedTokens }},
	{"cache_creation_tokens", func(d *openaiPromptTokensDetails) *int64 { return &d.CacheCreationTokens }},
}

// readAnthropicUsage reads a usage member into *u as unmarshalLenient reads
// it into an anthropicUsage: null changes nothing.
func readAnthropicUsage(v jsontext.Value, u *anthropicUsage) error {
	return readCounts(v, u, anthropicUsageCounts, nil)
}

var anthropicUsageCounts = []count[anthropicUsage]{
	{"input_tokens", func(u *anthropicUsage) *int64 { return &u.InputTokens }},
	{"cache_creation_input_tokens", func(u *anthropicUsage) *int64 { return &u.CacheCreationInputTokens }},
	{"cache_read_input_tokens", func(u *anthropicUsage) *int64 { return &u.CacheReadInputTokens }},
	{"output_tokens", func(u *anthropicUsage) *int64 { return &u.OutputTokens }},
}
