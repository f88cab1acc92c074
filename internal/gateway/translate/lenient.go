package translate

import (
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// What providers send, and the pieces of a request already checked by
// the strict decoder, are read with encoding/json's semantics (duplicate
// names keep the last, names match case-insensitively, invalid UTF-8 is
// replaced) but on go-json-experiment's engine, which decodes without a
// separate validation pass first: about half the CPU of encoding/json on
// a chat completion, a third for checking an event is valid JSON.

func unmarshalLenient(b []byte, v any) error { return jsonv1.Unmarshal(b, v) }

var validOpts = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

func validLenient(b []byte) bool { return jsontext.Value(b).IsValid(validOpts...) }
