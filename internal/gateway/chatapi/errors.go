package chatapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// The /api routes answer errors as {"error": {"type": T, "message": M}},
// with T one of these. Messages name what was wrong, never content.
const (
	apiInvalid      = "invalid_request"
	apiUnauthorized = "authentication"
	apiForbidden    = "permission"
	apiNotFound     = "not_found"
	apiConflict     = "conflict"
	apiTooLarge     = "too_large"
	apiRateLimited  = "rate_limit"
	apiUpstream     = "upstream"
	apiInternal     = "internal"
)

type apiErrorBody struct {
	Error apiErrorDetail `json:"error"`
}

type apiErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func apiTypeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return apiInvalid
	case http.StatusUnauthorized:
		return apiUnauthorized
	case http.StatusForbidden:
		return apiForbidden
	case http.StatusNotFound:
		return apiNotFound
	case http.StatusConflict:
		return apiConflict
	case http.StatusRequestEntityTooLarge:
		return apiTooLarge
	case http.StatusTooManyRequests:
		return apiRateLimited
	}
	if status >= 500 && status != http.StatusInternalServerError {
		return apiUpstream
	}
	if status >= 500 {
		return apiInternal
	}
	return apiInvalid
}

// WriteError answers an /api request with an error in the /api shape.
func WriteError(w http.ResponseWriter, status int, msg string) { writeAPIError(w, status, msg) }

func writeAPIError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiErrorBody{Error: apiErrorDetail{Type: apiTypeFor(status), Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// storeError answers a store error: its kind decides the status; the
// detail is logged (it holds ids, never content) and not shown.
func (a *API) storeError(w http.ResponseWriter, r *http.Request, c *Call, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeAPIError(w, http.StatusNotFound, "no such session")
	case errors.Is(err, store.ErrConflict):
		writeAPIError(w, http.StatusConflict, "the session or message is not in a state that allows this")
	case errors.Is(err, store.ErrInvalid):
		writeAPIError(w, http.StatusBadRequest, "invalid argument")
	default:
		a.log.LogAttrs(r.Context(), slog.LevelError, "Store failed",
			slog.String("request_id", c.ID), slog.String("path", r.Pattern), slog.String("error", err.Error()))
		writeAPIError(w, http.StatusInternalServerError, "the session store failed; try again")
	}
}

// apiNotFound answers an /api path that does not exist, or a privacy
// route whose toggle is off: the two are indistinguishable on purpose.
func serveAPINotFound(w http.ResponseWriter, r *http.Request) {
	writeAPIError(w, http.StatusNotFound, r.Method+" "+r.URL.Path+" is not an endpoint of this gateway")
}
