package chatapi

import (
	"net/http"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// me is GET /api/me: who the caller is and what this gateway's privacy
// toggles allow, for the page's privacy line.
type me struct {
	Email       string                `json:"email"`
	DisplayName string                `json:"displayName"`
	Role        string                `json:"role"`
	Privacy     gatewayconfig.Privacy `json:"privacy"`
	// Features are what the page may offer (see Features).
	Features Features `json:"features"`
}

func (a *API) serveMe(w http.ResponseWriter, r *http.Request, c *Call) {
	out := me{Email: c.Caller.Email, Role: c.Caller.Role, Privacy: c.Config.Privacy, Features: a.Features()}
	for _, u := range c.Config.Users {
		if u.Email == c.Caller.Email {
			out.DisplayName = u.DisplayName
			break
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}
