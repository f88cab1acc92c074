package chatapi

import (
	"context"
	"log/slog"
	"net/http"
	"slices"

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
// Who shares what is the store's shares table, written in the same
// transaction as the grant or revocation's audit event.
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

// subjectOf is the email a path names, by the gateway's one email rule; an
// address outside ASCII is kept as it is, so it matches nobody's data (every
// stored owner is canonical) instead of being folded onto someone's.
func subjectOf(r *http.Request, name string) string {
	v := r.PathValue(name)
	if e, err := gatewayconfig.CanonicalEmail(v); err == nil {
		return e
	}
	return v
}

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
		action := auditShareRevoke
		if on {
			action = auditShareGrant
		}
		owner := c.Caller.Email
		err := a.store.SetShared(context.WithoutCancel(r.Context()), owner, id, on, store.AuditEvent{
			Time: a.now(), Actor: owner, Action: action, Subject: owner, SessionID: id,
		})
		if err != nil {
			a.storeError(w, r, c, err)
			return
		}
		a.log.LogAttrs(r.Context(), slog.LevelInfo, "Recorded privileged access",
			slog.String("request_id", c.ID), slog.String("actor", c.Caller.Hash), slog.String("action", action))
		writeJSON(w, http.StatusOK, struct {
			SessionID string `json:"sessionId"`
			Shared    bool   `json:"shared"`
		}{id, on})
	}
}

// listShared lists the sessions shared now by people still on the
// allowlist, most recently shared first.
func (a *API) listShared(w http.ResponseWriter, r *http.Request, c *Call) {
	shared, err := a.store.SharedSessions(r.Context())
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	out := shared[:0]
	for _, s := range shared {
		if slices.ContainsFunc(c.Config.Users, func(u gatewayconfig.User) bool { return u.Email == s.Owner }) {
			out = append(out, s)
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Sessions []store.SharedSession `json:"sessions"`
	}{out})
}

func (a *API) readShared(w http.ResponseWriter, r *http.Request, c *Call) {
	owner, id := subjectOf(r, "owner"), r.PathValue("id")
	if _, err := a.store.SharedSession(r.Context(), owner, id); err != nil {
		a.storeError(w, r, c, err)
		return
	}
	if owner != c.Caller.Email && !a.audit(w, r, c, auditSharedRead, owner, id) {
		return
	}
	a.writeSession(w, r, c, owner, id)
}
