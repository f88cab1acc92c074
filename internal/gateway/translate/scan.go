package translate

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// A same-dialect reply passes through as the provider sent it; the gateway
// needs only a few of its members (the usage). objScanner reads the
// top-level object's members one by one on jsontext's tokenizer, which
// validates every byte it reads or skips, with the lenient decoder's rules
// (duplicate names, invalid UTF-8): a reply unmarshalLenient would refuse is
// refused, without decoding the parts that are not needed. Names match as
// unmarshalLenient matches them (case-insensitively); the members that are
// needed are decoded with unmarshalLenient itself, so a repeated one is
// merged as it would be.
type objScanner struct {
	dec  jsontext.Decoder
	in   bytes.Buffer
	name []byte
}

var scannerPool = sync.Pool{New: func() any { return new(objScanner) }}

var errNotObject = errors.New("the response is not a JSON object")

// scanObject starts reading body's top-level object; release the scanner
// when done.
func scanObject(body []byte) (*objScanner, error) {
	s := scannerPool.Get().(*objScanner)
	// The decoder reads a bytes.Buffer in place, without copying body.
	s.in = *bytes.NewBuffer(body)
	s.dec.Reset(&s.in, validOpts...)
	tok, err := s.dec.ReadToken()
	if err != nil {
		s.release()
		return nil, err
	}
	if tok.Kind() != '{' {
		s.release()
		return nil, errNotObject
	}
	return s, nil
}

func (s *objScanner) release() {
	s.in = bytes.Buffer{}
	s.dec.Reset(&s.in) // drop the reference to the body
	scannerPool.Put(s)
}

// next reads the next member's name, unquoted; ok is false after the last
// member, once the rest of the input is known to be only whitespace.
func (s *objScanner) next() (name []byte, ok bool, err error) {
	if s.dec.PeekKind() == '}' {
		if _, err := s.dec.ReadToken(); err != nil {
			return nil, false, err
		}
		if _, err := s.dec.ReadToken(); !errors.Is(err, io.EOF) {
			if err == nil {
				err = errors.New("data after the top-level value")
			}
			return nil, false, err
		}
		return nil, false, nil
	}
	raw, err := s.dec.ReadValue()
	if err != nil {
		return nil, false, err
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], true, nil
	}
	// The decoder has validated the name; AppendUnquote's only complaint
	// left is invalid UTF-8, which the lenient rules take (replaced).
	s.name, _ = jsontext.AppendUnquote(s.name[:0], raw)
	return s.name, true, nil
}

// value reads the current member's value; it is valid until the next read.
func (s *objScanner) value() (jsontext.Value, error) { return s.dec.ReadValue() }

// skip reads past the current member's value, validating it.
func (s *objScanner) skip() error { return s.dec.SkipValue() }

// isName reports whether a member's name matches a field's as
// unmarshalLenient's (encoding/json's) case-insensitive matching does.
func isName(name []byte, field string) bool {
	return len(name) == len(field) && string(name) == field || strings.EqualFold(string(name), field)
}

// objectArray reads the current member's value as unmarshalling it into a
// []struct{} would: an array of objects (or nulls) is there, null is not,
// anything else is an error.
func (s *objScanner) objectArray() (present bool, err error) {
	switch s.dec.PeekKind() {
	case 'n':
		return false, s.dec.SkipValue()
	case '[':
	default:
		if err := s.dec.SkipValue(); err != nil {
			return false, err
		}
		return false, errors.New("not an array")
	}
	if _, err := s.dec.ReadToken(); err != nil {
		return false, err
	}
	for {
		switch s.dec.PeekKind() {
		case ']':
			_, err := s.dec.ReadToken()
			return err == nil, err
		case '{', 'n':
			if err := s.dec.SkipValue(); err != nil {
				return false, err
			}
		default:
			if err := s.dec.SkipValue(); err != nil {
				return false, err
			}
			return false, errors.New("an array element is not an object")
		}
	}
}
