package chatapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// Mount adds the stateful API for the web page and for clients that
// want the gateway to keep history. Identity is the model API's (gateway
// token and email header); every route is scoped to the caller's own data
// unless a privacy toggle (privacy.go) says otherwise.
//
//	POST   /api/sessions                  create {model?, title?}
//	GET    /api/sessions?limit=&cursor=   own sessions, most recently active first
//	GET    /api/sessions/{id}             one session with its messages
//	PATCH  /api/sessions/{id}             rename {title}
//	DELETE /api/sessions/{id}
//	POST   /api/sessions/{id}/messages    send {content, model?, replace?, attachments?}; SSE unless ?stream=false
//	GET    /api/sessions/{id}/attachments/{aid}  a picture of a message
//	POST   /api/chat                      send to the active session, or a new one after idleTimeout
//	GET    /api/me                        who I am, and the privacy toggles
//	GET    /api/me/usage, /api/me/audit, /api/me/export; POST /api/me/import; DELETE /api/me/data
//	GET    /api/models                    the model picker: prices, kinds, what each model reads
//	GET, POST /api/me/keys; DELETE /api/me/keys/{id}   personal API keys (keys.go)
//	GET    /api/admin/usage               admins: per-user counts and cost, never content
func (a *API) Mount(m *http.ServeMux) {
	m.HandleFunc("POST /api/sessions", a.authed(a.createSession))
	m.HandleFunc("GET /api/sessions", a.authed(a.listSessions))
	m.HandleFunc("GET /api/sessions/{id}", a.authed(a.getSession))
	m.HandleFunc("PATCH /api/sessions/{id}", a.authed(a.renameSession))
	m.HandleFunc("DELETE /api/sessions/{id}", a.authed(a.deleteSession))
	m.HandleFunc("POST /api/sessions/{id}/messages", a.authed(a.sendMessage))
	m.HandleFunc("POST /api/chat", a.authed(a.chat))
	m.HandleFunc("GET /api/sessions/{id}/attachments/{aid}", a.authed(a.serveAttachment))
	m.HandleFunc("GET /api/models", a.authed(a.listModels))
	m.HandleFunc("GET /api/me", a.authed(a.serveMe))
	a.usageRoutes(m)
	a.keyRoutes(m)
	a.exportRoutes(m)
	a.privacyRoutes(m)
	m.HandleFunc("/api/", serveAPINotFound)
}

// maxTitle bounds a title in characters.
const maxTitle = 200

type createSessionRequest struct {
	Model string `json:"model"`
	Title string `json:"title"`
}

// decodeBody reads a small JSON body into v; an empty body leaves v alone.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			writeAPIError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", mbe.Limit))
			return false
		}
		writeAPIError(w, http.StatusBadRequest, "reading the request body failed")
		return false
	}
	if len(b) == 0 {
		return true
	}
	if err := json.Unmarshal(b, v); err != nil {
		// json's message may quote the body; say only where it broke.
		writeAPIError(w, http.StatusBadRequest, "the request body must be a JSON object with the documented fields")
		return false
	}
	return true
}

func (a *API) createSession(w http.ResponseWriter, r *http.Request, c *Call) {
	var req createSessionRequest
	if !decodeBody(w, r, 64<<10, &req) {
		return
	}
	model, ok := a.sessionModel(c, req.Model)
	if !ok {
		writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("model %q is not served by this gateway", req.Model))
		return
	}
	if utf8.RuneCountInString(req.Title) > maxTitle {
		writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("title is longer than %d characters", maxTitle))
		return
	}
	s, err := a.store.CreateSession(r.Context(), c.Caller.Email, store.NewSession{Model: model, Title: req.Title})
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

// sessionModel resolves the model a session is created with: an alias, a
// provider model id or "auto" (routing), else the default at the time.
func (a *API) sessionModel(c *Call, asked string) (string, bool) {
	choice, ok := c.Snapshot.Models.Resolve(asked)
	return choice.Name(), ok
}

type sessionList struct {
	Sessions []store.Session `json:"sessions"`
	// Next is the cursor of the next page; absent after the last one.
	Next string `json:"next,omitempty"`
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request, c *Call) {
	p, ok := pageParams(w, r)
	if !ok {
		return
	}
	ss, next, err := a.store.ListSessions(r.Context(), c.Caller.Email, p)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	if ss == nil {
		ss = []store.Session{}
	}
	writeJSON(w, http.StatusOK, sessionList{Sessions: ss, Next: next})
}

func pageParams(w http.ResponseWriter, r *http.Request) (store.Page, bool) {
	p := store.Page{Cursor: r.URL.Query().Get("cursor")}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			writeAPIError(w, http.StatusBadRequest, "limit must be a number from 1 to 500")
			return p, false
		}
		p.Limit = n
	}
	return p, true
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request, c *Call) {
	a.writeSession(w, r, c, c.Caller.Email, r.PathValue("id"))
}

// writeSession answers owner's session id with its messages.
func (a *API) writeSession(w http.ResponseWriter, r *http.Request, c *Call, owner, id string) {
	s, err := a.store.GetSession(r.Context(), owner, id)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	msgs, err := a.store.ListMessages(r.Context(), owner, id)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	writeJSON(w, http.StatusOK, store.ExportedSession{Session: s, Messages: msgs})
}

type renameRequest struct {
	Title *string `json:"title"`
}

func (a *API) renameSession(w http.ResponseWriter, r *http.Request, c *Call) {
	var req renameRequest
	if !decodeBody(w, r, 64<<10, &req) {
		return
	}
	if req.Title == nil {
		writeAPIError(w, http.StatusBadRequest, `send {"title": "..."}`)
		return
	}
	if utf8.RuneCountInString(*req.Title) > maxTitle {
		writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("title is longer than %d characters", maxTitle))
		return
	}
	id := r.PathValue("id")
	if err := a.store.RenameSession(r.Context(), c.Caller.Email, id, *req.Title); err != nil {
		a.storeError(w, r, c, err)
		return
	}
	s, err := a.store.GetSession(r.Context(), c.Caller.Email, id)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *API) deleteSession(w http.ResponseWriter, r *http.Request, c *Call) {
	if err := a.store.DeleteSession(r.Context(), c.Caller.Email, r.PathValue("id")); err != nil {
		a.storeError(w, r, c, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
