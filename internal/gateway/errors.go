package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// apiError is an error answered to the caller, in the caller's dialect.
type apiError struct {
	status int
	msg    string
	// typ overrides the dialect's error type for the status.
	typ string
	// code is OpenAI's machine-readable code (ignored by the Anthropic dialect).
	code       string
	retryAfter string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, msg string) *apiError { return &apiError{status: status, msg: msg} }

// writeError answers e in the caller's dialect.
func writeError(w http.ResponseWriter, d dialect, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.retryAfter != "" {
		h.Set("Retry-After", e.retryAfter)
	}
	w.WriteHeader(e.statusIn(d))
	_, _ = w.Write(errorBody(d, e))
}

// statusIn is the status sent in dialect d: OpenAI clients know 503, not
// Anthropic's 529, for "overloaded".
func (e *apiError) statusIn(d dialect) int {
	if e.status == 529 && d == dialectOpenAI {
		return http.StatusServiceUnavailable
	}
	return e.status
}

func errorBody(d dialect, e *apiError) []byte {
	var v any
	if d == dialectAnthropic {
		v = anthropicErrorEnvelope{Type: "error", Error: anthropicError{Type: e.anthropicType(), Message: e.msg}}
	} else {
		typ, code := e.openaiType()
		v = openaiErrorEnvelope{Error: openaiError{Message: e.msg, Type: typ, Code: code}}
	}
	b, _ := json.Marshal(v)
	return b
}

// writeStreamError ends a stream the client is already reading.
// Anthropic names the event "error"; OpenAI-compatible streams send a data
// line with an "error" object, which the OpenAI SDKs raise.
func writeStreamError(out *sseWriter, d dialect, e *apiError) {
	name := ""
	if d == dialectAnthropic {
		name = "error"
	}
	out.raw(name, errorBody(d, e))
}

// anthropicType follows the error types the Messages API documents.
func (e *apiError) anthropicType() string {
	if e.typ != "" {
		return e.typ
	}
	switch e.status {
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
	if e.status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// openaiType follows the type and code values OpenAI's API answers with.
func (e *apiError) openaiType() (typ string, code *string) {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	c := e.code
	switch e.status {
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
		if e.status >= 500 {
			typ = "server_error"
		} else {
			typ = "invalid_request_error"
		}
	}
	if e.typ != "" {
		typ = e.typ
	}
	return typ, str(c)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// upstreamErrorMessage extracts the message from an error body in either
// dialect; it falls back to the status text, never to the raw body, which
// might echo parts of the prompt.
func upstreamErrorMessage(body []byte, status int) (msg, typ string) {
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil && len(v.Error) > 0 {
		var e struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		}
		if json.Unmarshal(v.Error, &e) == nil && e.Message != "" {
			return e.Message, e.Type
		}
		var s string
		if json.Unmarshal(v.Error, &s) == nil && s != "" {
			return s, ""
		}
	}
	if status == 0 {
		return "the provider reported an error", ""
	}
	return strconv.Itoa(status) + " " + http.StatusText(status), ""
}
