package translate

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is an error answered to the caller, in the caller's dialect.
type Error struct {
	Status int
	// Msg says what went wrong and what to do, never content.
	Msg string
	// Type overrides the dialect's error type for the status.
	Type string
	// Code is OpenAI's machine-readable code (ignored by the Anthropic dialect).
	Code string
	// Param names the request member at fault, as OpenAI's errors do
	// (ignored by the Anthropic dialect).
	Param string
	// RetryAfter is sent as the Retry-After header when set.
	RetryAfter string
}

func (e *Error) Error() string { return e.Msg }

// Errorf is an Error with a status and a message.
func Errorf(status int, msg string) *Error { return &Error{Status: status, Msg: msg} }

// WriteError answers e in the caller's dialect.
func WriteError(w http.ResponseWriter, d Dialect, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter != "" {
		h.Set("Retry-After", e.RetryAfter)
	}
	w.WriteHeader(e.StatusIn(d))
	_, _ = w.Write(ErrorBody(d, e))
}

// StatusIn is the status sent in dialect d: OpenAI clients know 503, not
// Anthropic's 529, for "overloaded".
func (e *Error) StatusIn(d Dialect) int {
	if e.Status == 529 && d == OpenAI {
		return http.StatusServiceUnavailable
	}
	return e.Status
}

// ErrorBody is e as the error JSON of dialect d.
func ErrorBody(d Dialect, e *Error) []byte {
	var v any
	if d == Anthropic {
		v = anthropicErrorEnvelope{Type: "error", Error: anthropicError{Type: e.anthropicType(), Message: e.Msg}}
	} else {
		typ, code := e.openaiType()
		oe := openaiError{Message: e.Msg, Type: typ, Code: code}
		if e.Param != "" {
			oe.Param = &e.Param
		}
		v = openaiErrorEnvelope{Error: oe}
	}
	b, _ := json.Marshal(v)
	return b
}

// WriteStreamError ends a stream the client is already reading.
// Anthropic names the event "error"; OpenAI-compatible streams send a data
// line with an "error" object, which the OpenAI SDKs raise.
func WriteStreamError(out *Writer, d Dialect, e *Error) {
	name := ""
	if d == Anthropic {
		name = "error"
	}
	out.Raw(name, ErrorBody(d, e))
}

// anthropicType follows the error types the Messages API documents.
func (e *Error) anthropicType() string {
	if e.Type != "" {
		return e.Type
	}
	switch e.Status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 504:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if e.Status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// openaiType follows the type and code values OpenAI's API answers with.
func (e *Error) openaiType() (typ string, code *string) {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	c := e.Code
	switch e.Status {
	case 401:
		typ, c = "invalid_request_error", firstNonEmpty(c, "invalid_api_key")
	case 403:
		typ, c = "invalid_request_error", firstNonEmpty(c, "permission_denied")
	case 404:
		typ = "invalid_request_error"
	case 413:
		typ, c = "invalid_request_error", firstNonEmpty(c, "request_too_large")
	case 429:
		typ, c = "rate_limit_error", firstNonEmpty(c, "rate_limit_exceeded")
	case 504:
		typ, c = "server_error", firstNonEmpty(c, "timeout")
	default:
		if e.Status >= 500 {
			typ = "server_error"
		} else {
			typ = "invalid_request_error"
		}
	}
	if e.Type != "" {
		typ = e.Type
	}
	return typ, str(c)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// UpstreamErrorMessage extracts the message from an error body in either
// dialect; it falls back to the status text, never to the raw body, which
// might echo parts of the prompt.
func UpstreamErrorMessage(body []byte, status int) (msg, typ string) {
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if unmarshalLenient(body, &v) == nil && len(v.Error) > 0 {
		var e struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		}
		if unmarshalLenient(v.Error, &e) == nil && e.Message != "" {
			return e.Message, e.Type
		}
		var s string
		if unmarshalLenient(v.Error, &s) == nil && s != "" {
			return s, ""
		}
	}
	if status == 0 {
		return "the provider reported an error", ""
	}
	return strconv.Itoa(status) + " " + http.StatusText(status), ""
}
