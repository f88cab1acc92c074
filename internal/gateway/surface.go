package gateway

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/chatapi"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
)

// The surface every request crosses before its route, in this order:
//
//  1. Cross-origin protection (net/http.CrossOriginProtection): a browser
//     request that is not a safe method and that Sec-Fetch-Site, or else
//     Origin against Host, shows to come from another site is refused with
//     403. Programs (the SDKs, curl) send neither header and pass; so does
//     the chat page, whose requests are same-origin. OAuth2 Proxy's
//     SameSite=Lax cookie keeps a cross-site POST from being signed in at
//     all; this check holds even where a browser or a proxy loses that.
//  2. A whole-body read deadline (requestBodyTimeout; import.bodyTimeout
//     for imports): a client trickling a body cannot hold a request, and
//     its goroutine, open. The deadline is lifted once the body has been
//     read, so a streamed answer runs as long as it needs; a server-wide
//     ReadTimeout would instead cancel every long stream (net/http cancels
//     the request's context when its background read hits the deadline).
//
// Refusals are in the dialect of the route: Anthropic's for /v1/messages,
// OpenAI's for the rest of /v1, the /api shape elsewhere.
//
// Then, once the caller is identified (so that a stranger learns only that
// they are not signed in), the content type: a POST or PATCH, and a PUT or
// DELETE with a body, must say application/json (POST /api/me/import: JSON
// Lines, as application/x-ndjson or application/jsonl, or application/json),
// or it is refused with 415. No HTML form can send that type, and a
// cross-origin fetch that sets it needs a preflight this gateway never
// grants.

// refusedCrossOrigin and refusedContentType count in
// chatgateway_auth_failures_total beside the identity refusals.
const (
	refusedCrossOrigin = "cross_origin"
	refusedContentType = "content_type"
)

// importPattern is the route that takes JSON Lines.
const importPattern = "POST /api/me/import"

func (g *Gateway) guard(next *http.ServeMux) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := cop.Check(r); err != nil {
			g.metrics.authFails.WithLabelValues(refusedCrossOrigin).Inc()
			refuseOnSurface(w, r, http.StatusForbidden, "cross-origin request refused: this gateway accepts requests that change anything only from its own page and from programs, never from another site's page")
			return
		}
		if hasBody(r) {
			_, pattern := next.Handler(r)
			cfg := g.snap.Load().cfg
			limit := cfg.RequestBodyTimeout.Duration
			if pattern == importPattern {
				limit = cfg.Import.BodyTimeout.Duration
			}
			if limit > 0 {
				rc := http.NewResponseController(w)
				if rc.SetReadDeadline(time.Now().Add(limit)) == nil {
					r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, limit: limit}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func hasBody(r *http.Request) bool {
	return r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
}

// contentTypeProblem says what is wrong with r's Content-Type for the
// route pattern, or "".
func contentTypeProblem(r *http.Request, pattern string) string {
	switch r.Method {
	case http.MethodPost, http.MethodPatch:
	case http.MethodPut, http.MethodDelete:
		if !hasBody(r) {
			return ""
		}
	default:
		return ""
	}
	ct := r.Header.Get("Content-Type")
	if ct == "application/json" {
		return "" // what nearly every request sends, taken by every route; spares parsing it
	}
	want := []string{"application/json"}
	if pattern == importPattern {
		want = []string{"application/x-ndjson", "application/jsonl", "application/json"}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil {
		for _, w := range want {
			if mt == w && (params["charset"] == "" || strings.EqualFold(params["charset"], "utf-8")) {
				return ""
			}
		}
	}
	return fmt.Sprintf("send the body as Content-Type: %s", strings.Join(want, " or "))
}

// refuseOnSurface answers in the route's dialect, judged by the path alone
// (the route is not identified yet).
func refuseOnSurface(w http.ResponseWriter, r *http.Request, status int, msg string) {
	switch p := r.URL.Path; {
	case p == "/v1/messages" || strings.HasPrefix(p, "/v1/messages/"):
		translate.WriteError(w, translate.Anthropic, translate.Errorf(status, msg))
	case strings.HasPrefix(p, "/v1/"):
		translate.WriteError(w, translate.OpenAI, translate.Errorf(status, msg))
	default:
		chatapi.WriteError(w, status, msg)
	}
}

// deadlineBody lifts the read deadline once the whole body is read, so that
// the connection's background read (which net/http starts at the body's end
// to notice a client leaving) does not cancel a long answer. On any other
// error the deadline stays: net/http drains an unread body before it
// answers, and that drain must not wait on a client that trickles. A read
// past the deadline says which limit it was.
type deadlineBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	limit time.Duration
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("the whole request body must arrive within %s: %w", b.limit, err)
	}
	return n, err
}
