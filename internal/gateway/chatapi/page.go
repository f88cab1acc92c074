package chatapi

import (
	"net/http"

	"github.com/chatgateway/chatgateway-operator/internal/webui"
)

// MountPage serves the chat page, with or without a store. Like every route
// but health and metrics it needs the gateway token and an allowed email,
// which OAuth2 Proxy adds to the browser's requests once the person has
// signed in; authed is the gateway's identity check.
func MountPage(m *http.ServeMux, authed func(Handler) http.HandlerFunc) {
	page := webui.Handler()
	serve := authed(func(w http.ResponseWriter, r *http.Request, _ *Call) { page.ServeHTTP(w, r) })
	m.HandleFunc("GET /{$}", serve)
	m.HandleFunc("GET /static/", serve)
}
