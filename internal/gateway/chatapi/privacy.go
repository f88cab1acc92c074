package chatapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// Privacy opt-ins. With a toggle off (the default) its routes do not exist:
// they answer 404 to everyone, admins included, exactly as an unknown path
// does. With it on, every use is written to the audit log (who, when,
// whose, which session — never content), which the subject reads at
// GET /api/me/audit.
//
//	privacy.adminChatAccess (admins only, else 403):
//	  GET    /api/admin/users/{email}/sessions        audit "session.list"
//	  GET    /api/admin/users/{email}/sessions/{id}   audit "session.read"
//	privacy.adminExport (admins only, else 403):
//	  GET    /api/admin/users/{email}/export          audit "export"
//	privacy.communitySharing (any user):
//	  PUT    /api/sessions/{id}/share                 owner shares read-only; audit "share.grant"
//	  DELETE /api/sessions/{id}/share                 owner stops sharing; audit "share.revoke"
//	  GET    /api/shared                              sessions others share
//	  GET    /api/shared/{owner}/{id}                 read one; audit "shared.read" for readers other than the owner
//
// Whether a session is shared is kept as those grant and revoke events in
// the audit log (the latest wins), so sharing needs no table of its own and
// the log is the record of it.
const (
	auditSessionList = "session.list"
	auditSessionRead = "session.read"
	auditExport      = "export"
	auditShareGrant  = "share.grant"
	auditShareRevoke = "share.revoke"
	auditSharedRead  = "shared.read"
)

func (a *API) privacyRoutes(m *http.ServeMux) {
	chat := func(p gatewayconfig.Privacy) bool { return p.AdminChatAccess }
	export := func(p gatewayconfig.Privacy) bool { return p.AdminExport }
	share := func(p gatewayconfig.Privacy) bool { return p.CommunitySharing }
	m.HandleFunc("GET /api/admin/users/{email}/sessions", a.optIn(chat, true, a.adminListSessions))
	m.HandleFunc("GET /api/admin/users/{email}/sessions/{id}", a.optIn(chat, true, a.adminReadSession))
	m.HandleFunc("GET /api/admin/users/{email}/export", a.optIn(export, true, a.adminExport))
	m.HandleFunc("PUT /api/sessions/{id}/share", a.optIn(share, false, a.shareSession(true)))
	m.HandleFunc("DELETE /api/sessions/{id}/share", a.optIn(share, false, a.shareSession(false)))
	m.HandleFunc("GET /api/shared", a.optIn(share, false, a.listShared))
	m.HandleFunc("GET /api/shared/{owner}/{id}", a.optIn(share, false, a.readShared))
}

// optIn serves h only while the toggle is on (read per request, so a
// config reload that turns it off closes the route at once).
func (a *API) optIn(on func(gatewayconfig.Privacy) bool, admin bool, h Handler) http.HandlerFunc {
	authed := a.authed(func(w http.ResponseWriter, r *http.Request, c *Call) {
		if !on(c.Config.Privacy) {
			serveAPINotFound(w, r)
			return
		}
		if admin && !c.IsAdmin() {
			writeAPIError(w, http.StatusForbidden, "this route is for admins")
			return
		}
		h(w, r, c)
	})
	return func(w http.ResponseWriter, r *http.Request) {
		if !on(a.current().Privacy) {
			serveAPINotFound(w, r)
			return
		}
		authed(w, r)
	}
}

// audit records a privileged access before it is served: no record, no
// access.
func (a *API) audit(w http.ResponseWriter, r *http.Request, c *Call, action, subject, sessionID string) bool {
	err := a.store.RecordAudit(context.WithoutCancel(r.Context()), store.AuditEvent{
		Time: a.now(), Actor: c.Caller.Email, Action: action, Subject: subject, SessionID: sessionID,
	})
	if err != nil {
		a.storeError(w, r, c, err)
		return false
	}
	a.log.LogAttrs(r.Context(), slog.LevelInfo, "Recorded privileged access",
		slog.String("request_id", c.ID), slog.String("actor", c.Caller.Hash), slog.String("action", action))
	return true
}

func subjectOf(r *http.Request, name string) string { return strings.ToLower(r.PathValue(name)) }

func (a *API) adminListSessions(w http.ResponseWriter, r *http.Request, c *Call) {
	subject := subjectOf(r, "email")
	p, ok := pageParams(w, r)
	if !ok || !a.audit(w, r, c, auditSessionList, subject, "") {
		return
	}
	ss, next, err := a.store.ListSessions(r.Context(), subject, p)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	if ss == nil {
		ss = []store.Session{}
	}
	writeJSON(w, http.StatusOK, sessionList{Sessions: ss, Next: next})
}

func (a *API) adminReadSession(w http.ResponseWriter, r *http.Request, c *Call) {
	subject, id := subjectOf(r, "email"), r.PathValue("id")
	if _, err := a.store.GetSession(r.Context(), subject, id); err != nil {
		a.storeError(w, r, c, err)
		return
	}
	if !a.audit(w, r, c, auditSessionRead, subject, id) {
		return
	}
	a.writeSession(w, r, c, subject, id)
}

func (a *API) adminExport(w http.ResponseWriter, r *http.Request, c *Call) {
	subject := subjectOf(r, "email")
	if !a.audit(w, r, c, auditExport, subject, "") {
		return
	}
	a.writeExport(w, r, c, subject)
}

func (a *API) shareSession(on bool) Handler {
	return func(w http.ResponseWriter, r *http.Request, c *Call) {
		id := r.PathValue("id")
		if _, err := a.store.GetSession(r.Context(), c.Caller.Email, id); err != nil {
			a.storeError(w, r, c, err)
			return
		}
		action := auditShareRevoke
		if on {
			action = auditShareGrant
		}
		if !a.audit(w, r, c, action, c.Caller.Email, id) {
			return
		}
		writeJSON(w, http.StatusOK, struct {
			SessionID string `json:"sessionId"`
			Shared    bool   `json:"shared"`
		}{id, on})
	}
}

// shareScan bounds how far back the audit log is read for share state.
const shareScan = 10000

// sharedBy lists the session ids owner shares now.
func (a *API) sharedBy(ctx context.Context, owner string) ([]string, error) {
	events, err := a.store.AuditFor(ctx, owner, shareScan)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var ids []string
	for _, e := range events { // newest first: the first word on a session is the last said
		if e.Actor != owner || e.SessionID == "" || seen[e.SessionID] {
			continue
		}
		switch e.Action {
		case auditShareGrant:
			seen[e.SessionID] = true
			ids = append(ids, e.SessionID)
		case auditShareRevoke:
			seen[e.SessionID] = true
		}
	}
	return ids, nil
}

type sharedSession struct {
	store.Session
}

func (a *API) listShared(w http.ResponseWriter, r *http.Request, c *Call) {
	out := []sharedSession{}
	for _, u := range c.Config.Users {
		ids, err := a.sharedBy(r.Context(), u.Email)
		if err != nil {
			a.storeError(w, r, c, err)
			return
		}
		for _, id := range ids {
			s, err := a.store.GetSession(r.Context(), u.Email, id)
			if err != nil {
				continue // deleted since it was shared
			}
			out = append(out, sharedSession{s})
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Sessions []sharedSession `json:"sessions"`
	}{out})
}

func (a *API) readShared(w http.ResponseWriter, r *http.Request, c *Call) {
	owner, id := subjectOf(r, "owner"), r.PathValue("id")
	ids, err := a.sharedBy(r.Context(), owner)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	shared := false
	for _, s := range ids {
		shared = shared || s == id
	}
	if !shared {
		writeAPIError(w, http.StatusNotFound, "no such session")
		return
	}
	if owner != c.Caller.Email && !a.audit(w, r, c, auditSharedRead, owner, id) {
		return
	}
	a.writeSession(w, r, c, owner, id)
}
