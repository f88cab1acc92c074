package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

const carol = "carol@example.com"

// withCarol adds a second user without the admin role.
func withCarol(c *gatewayconfig.Config) {
	c.Users = append(c.Users, gatewayconfig.User{Email: carol, Role: gatewayconfig.RoleUser})
}

// TestAPIRouteMatrix sends every /api route as the session's owner (bob),
// another user (carol), an admin (alice) and nobody (no token), under
// each privacy toggle, and asserts the exact status. With every toggle
// off, nobody but the owner reaches a session, whatever their role.
func TestAPIRouteMatrix(t *testing.T) {
	const (
		owner = "owner"
		other = "other"
		admin = "admin"
		anon  = "anonymous"
	)
	who := map[string]string{owner: bob, other: carol, admin: alice, anon: ""}
	roles := []string{anon, other, admin, owner} // the owner last: some routes change state

	type toggles = gatewayconfig.Privacy
	type row struct {
		name, method, path, body string
		// want is the status for a role under the toggles, or 0 for "the
		// route exists: 401 without identity, else ok for everyone".
		want func(p toggles, role string) int
	}
	everyone := func(ok int) func(toggles, string) int {
		return func(_ toggles, role string) int {
			if role == anon {
				return 401
			}
			return ok
		}
	}
	ownerOnly := func(ok int) func(toggles, string) int {
		return func(_ toggles, role string) int {
			switch role {
			case anon:
				return 401
			case owner:
				return ok
			}
			return 404
		}
	}
	// optIn: 404 for everyone with the toggle off; else 401 without
	// identity, 403 for roles not allowed, ok for the others.
	optIn := func(on func(toggles) bool, allowed func(role string) int) func(toggles, string) int {
		return func(p toggles, role string) int {
			switch {
			case !on(p):
				return 404
			case role == anon:
				return 401
			}
			return allowed(role)
		}
	}
	chat := func(p toggles) bool { return p.AdminChatAccess }
	export := func(p toggles) bool { return p.AdminExport }
	share := func(p toggles) bool { return p.CommunitySharing }
	adminOnly := func(role string) int {
		if role == admin {
			return 200
		}
		return 403
	}
	all := func(int) func(string) int { return func(string) int { return 200 } }
	ownerElse404 := func(role string) int {
		if role == owner {
			return 200
		}
		return 404
	}

	rows := []row{
		{"create", "POST", "/api/sessions", `{}`, everyone(201)},
		{"list", "GET", "/api/sessions", "", everyone(200)},
		{"read", "GET", "/api/sessions/{sid}", "", ownerOnly(200)},
		{"rename", "PATCH", "/api/sessions/{sid}", `{"title":"t"}`, ownerOnly(200)},
		{"continue", "POST", "/api/sessions/{sid}/messages?stream=false", `{"content":"hi"}`, ownerOnly(200)},
		{"chat", "POST", "/api/chat?stream=false", `{"content":"hi"}`, everyone(200)},
		{"my usage", "GET", "/api/me/usage", "", everyone(200)},
		{"my audit", "GET", "/api/me/audit", "", everyone(200)},
		{"my export", "GET", "/api/me/export", "", everyone(200)},
		{"my export jsonl", "GET", "/api/me/export?format=jsonl", "", everyone(200)},
		{"my import", "POST", "/api/me/import", "", everyone(200)},
		{"admin usage", "GET", "/api/admin/usage", "", func(_ toggles, role string) int {
			switch role {
			case anon:
				return 401
			case admin:
				return 200
			}
			return 403
		}},
		{"admin list", "GET", "/api/admin/users/bob@example.com/sessions", "", optIn(chat, adminOnly)},
		{"admin read", "GET", "/api/admin/users/bob@example.com/sessions/{sid}", "", optIn(chat, adminOnly)},
		{"admin read unknown", "GET", "/api/admin/users/bob@example.com/sessions/0000", "", optIn(chat, func(role string) int {
			if role == admin {
				return 404
			}
			return 403
		})},
		{"admin export", "GET", "/api/admin/users/bob@example.com/export", "", optIn(export, adminOnly)},
		{"shared before", "GET", "/api/shared/bob@example.com/{sid}", "", optIn(share, func(string) int { return 404 })},
		{"share", "PUT", "/api/sessions/{sid}/share", "", optIn(share, ownerElse404)},
		{"shared list", "GET", "/api/shared", "", optIn(share, all(200))},
		{"shared read", "GET", "/api/shared/bob@example.com/{sid}", "", optIn(share, all(200))},
		{"unshare", "DELETE", "/api/sessions/{sid}/share", "", optIn(share, ownerElse404)},
		{"shared after", "GET", "/api/shared/bob@example.com/{sid}", "", optIn(share, func(string) int { return 404 })},
		{"unknown", "GET", "/api/nothing", "", func(toggles, string) int { return 404 }},
		{"delete", "DELETE", "/api/sessions/{sid}", "", ownerOnly(204)},
		{"erase my data", "DELETE", "/api/me/data", "", everyone(204)},
	}
	for _, tg := range []struct {
		name string
		p    toggles
	}{
		{"all off", toggles{}},
		{"adminChatAccess", toggles{AdminChatAccess: true}},
		{"adminExport", toggles{AdminExport: true}},
		{"communitySharing", toggles{CommunitySharing: true}},
		{"all on", toggles{AdminChatAccess: true, AdminExport: true, CommunitySharing: true}},
	} {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, quietLogger(), withCarol, func(c *gatewayconfig.Config) { c.Privacy = tg.p })
			var s store.Session
			e.apiJSON("POST", "/api/sessions", bob, map[string]string{"title": "bob's"}, http.StatusCreated, &s)
			for _, r := range rows {
				for _, role := range roles {
					path := strings.ReplaceAll(r.path, "{sid}", s.ID)
					code, body := e.api(r.method, path, who[role], r.body)
					if want := r.want(tg.p, role); code != want {
						t.Errorf("%s (%s %s) as %s: status %d, want %d: %s", r.name, r.method, r.path, role, code, want, body)
					}
					if code >= 400 && !strings.Contains(body, `"error":{"type":`) {
						t.Errorf("%s as %s: error body %s", r.name, role, body)
					}
					if code == 200 && role != owner && strings.Contains(body, "bob's") && !(r.name == "admin list" || r.name == "admin read" || r.name == "admin export" || strings.HasPrefix(r.name, "shared")) {
						t.Errorf("%s as %s: bob's session leaked: %s", r.name, role, body)
					}
				}
			}
		})
	}
}

func TestPrivilegedAccessIsAuditedForTheSubject(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, withCarol, func(c *gatewayconfig.Config) {
		c.Privacy = gatewayconfig.Privacy{AdminChatAccess: true, AdminExport: true, CommunitySharing: true}
	})
	var s store.Session
	e.apiJSON("POST", "/api/sessions", bob, map[string]string{"title": "secret title"}, http.StatusCreated, &s)
	e.apiJSON("GET", "/api/admin/users/bob@example.com/sessions/"+s.ID, alice, nil, 200, nil)
	e.apiJSON("GET", "/api/admin/users/bob@example.com/export", alice, nil, 200, nil)
	e.apiJSON("PUT", "/api/sessions/"+s.ID+"/share", bob, nil, 200, nil)
	e.apiJSON("GET", "/api/shared/bob@example.com/"+s.ID, carol, nil, 200, nil)
	var audit struct{ Events []store.AuditEvent }
	e.apiJSON("GET", "/api/me/audit", bob, nil, 200, &audit)
	want := []struct{ actor, action, session string }{
		{carol, "shared.read", s.ID},
		{bob, "share.grant", s.ID},
		{alice, "export", ""},
		{alice, "session.read", s.ID},
	}
	if len(audit.Events) != len(want) {
		t.Fatalf("audit: %+v", audit.Events)
	}
	for i, w := range want {
		ev := audit.Events[i]
		if ev.Actor != w.actor || ev.Action != w.action || ev.SessionID != w.session || ev.Subject != bob || ev.Time.IsZero() {
			t.Errorf("event %d: %+v, want %+v", i, ev, w)
		}
	}
	// Alice's own audit log is about her data only.
	e.apiJSON("GET", "/api/me/audit", alice, nil, 200, &audit)
	if len(audit.Events) != 0 {
		t.Errorf("alice's audit: %+v", audit.Events)
	}
	// Turning a toggle off closes its routes at once.
	e.cfg.Privacy = gatewayconfig.Privacy{}
	e.writeConfig(e.cfg)
	if _, err := e.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.api("GET", "/api/admin/users/bob@example.com/sessions/"+s.ID, alice, nil); code != 404 {
		t.Errorf("after the toggle went off: %d", code)
	}
}

// TestSharedSessions: what /api/shared lists and /api/shared/{owner}/{id}
// serves follows the owners' grants and revocations, however often a
// share is read, and only for people still on the allowlist.
func TestSharedSessions(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, quietLogger(), withCarol, func(c *gatewayconfig.Config) {
		c.Privacy = gatewayconfig.Privacy{CommunitySharing: true}
	})
	var bobs, carols store.Session
	e.apiJSON("POST", "/api/sessions", bob, map[string]string{"title": "bob's"}, http.StatusCreated, &bobs)
	e.apiJSON("POST", "/api/sessions", carol, map[string]string{"title": "carol's"}, http.StatusCreated, &carols)
	list := func(who string) []string {
		t.Helper()
		var l struct {
			Sessions []struct {
				ID, Owner, Title string
				SharedAt         time.Time
			}
		}
		e.apiJSON("GET", "/api/shared", who, nil, http.StatusOK, &l)
		var out []string
		for _, s := range l.Sessions {
			if s.SharedAt.IsZero() {
				t.Errorf("shared session without sharedAt: %+v", s)
			}
			out = append(out, s.Owner+"/"+s.Title)
		}
		return out
	}
	if got := list(alice); len(got) != 0 {
		t.Fatalf("nothing shared yet: %q", got)
	}
	e.apiJSON("PUT", "/api/sessions/"+bobs.ID+"/share", bob, nil, http.StatusOK, nil)
	e.clock.Set(e.clock.Now().Add(time.Second))
	e.apiJSON("PUT", "/api/sessions/"+carols.ID+"/share", carol, nil, http.StatusOK, nil)
	if code, _ := e.api("PUT", "/api/sessions/"+bobs.ID+"/share", carol, nil); code != http.StatusNotFound {
		t.Errorf("carol shared bob's session: %d", code)
	}
	if got := strings.Join(list(alice), " "); got != carol+"/carol's "+bob+"/bob's" {
		t.Fatalf("shared, newest first: %s", got)
	}
	// Reads are audit events and do not change what is shared.
	for range 20 {
		e.apiJSON("GET", "/api/shared/"+bob+"/"+bobs.ID, alice, nil, http.StatusOK, nil)
	}
	e.apiJSON("DELETE", "/api/sessions/"+carols.ID+"/share", carol, nil, http.StatusOK, nil)
	if got := strings.Join(list(bob), " "); got != bob+"/bob's" {
		t.Fatalf("after carol stopped sharing: %s", got)
	}
	if code, _ := e.api("GET", "/api/shared/"+carol+"/"+carols.ID, alice, nil); code != http.StatusNotFound {
		t.Errorf("a revoked share is readable: %d", code)
	}
	// Someone removed from the allowlist shares nothing any more.
	e.cfg.Users = e.cfg.Users[:2]
	e.apiJSON("PUT", "/api/sessions/"+carols.ID+"/share", carol, nil, http.StatusOK, nil)
	e.writeConfig(e.cfg)
	if _, err := e.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(list(bob), " "); got != bob+"/bob's" {
		t.Fatalf("after carol left the allowlist: %s", got)
	}
}
