package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
)

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
