package gateway

import (
	"net/http"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/completion"
)

// serveCompletion is the model API of both fronts: the completion core
// reads the body, serves it and relays the answer in the caller's dialect.
func (g *Gateway) serveCompletion(w http.ResponseWriter, r *http.Request, c *call) {
	g.core.Complete(r.Context(), &completion.Request{
		ID: c.id, Start: c.start, Caller: c.who, Snapshot: c.snap.core,
		Front: c.front, Body: r.Body, Client: w,
	}, nil)
}
