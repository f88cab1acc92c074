package gateway

import (
	"net/http"

	"github.com/chatgateway/chatgateway-operator/internal/webui"
)

// webRoutes serves the chat page. Like every route but health and metrics it
// needs the gateway token and an allowed email, which OAuth2 Proxy adds to
// the browser's requests once the person has signed in.
func (g *Gateway) webRoutes(m *http.ServeMux) {
	page := webui.Handler()
	serve := g.apiAuthed(func(w http.ResponseWriter, r *http.Request, _ *call) { page.ServeHTTP(w, r) })
	m.HandleFunc("GET /{$}", serve)
	m.HandleFunc("GET /static/", serve)
}
