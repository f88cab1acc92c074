package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/completion"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
)

// serveCompletion is the model API of both fronts: the completion core
// reads the body, serves it and relays the answer in the caller's dialect.
func (g *Gateway) serveCompletion(w http.ResponseWriter, r *http.Request, c *call) {
	g.core.Complete(r.Context(), completion.Request{
		ID: c.id, ClientID: c.clientID, Start: c.start, Caller: c.who, Snapshot: c.snap.core,
		Front: c.front, Body: r.Body, Client: w,
	}, nil)
}

// serveImages is OpenAI's image generation, for the Image models.
func (g *Gateway) serveImages(w http.ResponseWriter, r *http.Request, c *call) {
	g.core.ServeImages(r.Context(), completion.Request{
		ID: c.id, ClientID: c.clientID, Start: c.start, Caller: c.who, Snapshot: c.snap.core,
		Body: r.Body, Client: w,
	})
}

// authedModels picks the dialect from the request: Anthropic's SDKs send
// anthropic-version, and both APIs list models at GET /v1/models.
func (g *Gateway) authedModels(h callHandler) http.HandlerFunc {
	anth, oai := g.authed(translate.Anthropic, h), g.authed(translate.OpenAI, h)
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Anthropic-Version") != "" {
			anth(w, r)
			return
		}
		oai(w, r)
	}
}

// serveModels lists the aliases (GET /v1/models) or one of them (GET
// /v1/models/{id}) in the caller's dialect: OpenAI's list, or Anthropic's
// when the caller sent anthropic-version.
func (g *Gateway) serveModels(w http.ResponseWriter, r *http.Request, c *call) {
	created := c.snap.loadedAt.UTC()
	object := func(alias string) any {
		if c.front == translate.Anthropic {
			return map[string]string{"type": "model", "id": alias, "display_name": alias, "created_at": created.Format(time.RFC3339)}
		}
		return map[string]any{"id": alias, "object": "model", "created": created.Unix(), "owned_by": "chatgateway"}
	}
	var v any
	aliases := c.snap.core.Models.Models()
	if id := r.PathValue("id"); id != "" {
		if !slices.Contains(aliases, id) {
			translate.WriteError(w, c.front, &translate.Error{Status: http.StatusNotFound, Code: "model_not_found", Msg: fmt.Sprintf("model %q is not served by this gateway; GET /v1/models lists the ones that are", id)})
			return
		}
		v = object(id)
	} else {
		data := make([]any, 0, len(aliases))
		for _, a := range aliases {
			data = append(data, object(a))
		}
		if c.front == translate.Anthropic {
			first, last := "", ""
			if n := len(aliases); n > 0 {
				first, last = aliases[0], aliases[n-1]
			}
			v = map[string]any{"data": data, "has_more": false, "first_id": first, "last_id": last}
		} else {
			v = map[string]any{"object": "list", "data": data}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// serveNotFound answers any other path in the dialect the request looks like.
func (g *Gateway) serveNotFound(w http.ResponseWriter, r *http.Request) {
	d := translate.OpenAI
	if r.Header.Get("Anthropic-Version") != "" || r.URL.Path == "/v1/messages" || strings.HasPrefix(r.URL.Path, "/v1/messages/") {
		d = translate.Anthropic
	}
	translate.WriteError(w, d, translate.Errorf(http.StatusNotFound, fmt.Sprintf("%s %s is not an endpoint of this gateway; it serves POST /v1/messages, POST /v1/messages/count_tokens, POST /v1/chat/completions, POST /v1/images/generations and GET /v1/models", r.Method, r.URL.Path)))
}
