// Package webui is the chat page, embedded in the gateway binary. It is
// plain HTML, CSS and JavaScript modules with no build step: the page talks
// to the gateway's /api routes and reaches the user through OAuth2 Proxy,
// which signs them in and adds their identity and the gateway token to every
// request. The page itself holds no data and no secret.
//
// The Markdown renderer, the sanitiser and the code highlighter are npm
// packages vendored under static/vendor exactly as published (see
// hack/webui-vendor.lock and `make webui-vendor`).
package webui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed static
var files embed.FS

// ContentSecurityPolicy is sent with every response of the page. The page
// runs only its own scripts (modules, no inline script, no eval), loads
// nothing from elsewhere and talks only to its origin. Trusted Types make
// every HTML sink refuse plain strings: the only HTML the page inserts is
// what DOMPurify returns, through DOMPurify's own policy.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types dompurify"

// asset is one embedded file, ready to serve.
type asset struct {
	body, gzipped []byte // gzipped is nil when compression does not pay
	contentType   string
	etag          string
}

// contentTypes are set here rather than taken from the host's MIME
// database, which differs between machines (.mjs especially).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
}

// Handler serves the page at / and its assets under /static/. Assets are
// compressed once at start, carry an ETag, and are revalidated on every
// load (a 304 when unchanged), so a new gateway version is picked up at
// once while a reload moves no bytes.
func Handler() http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	assets, err := loadAssets(static)
	if err != nil {
		panic(err)
	}
	index := assets["index.html"]
	if index == nil {
		panic("webui: static/index.html is missing")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		var a *asset
		switch {
		case r.URL.Path == "/":
			a = index
		case strings.HasPrefix(r.URL.Path, "/static/"):
			a = assets[strings.TrimPrefix(r.URL.Path, "/static/")]
		}
		if a == nil {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		a.serve(w, r)
	})
}

func loadAssets(static fs.FS) (map[string]*asset, error) {
	out := map[string]*asset{}
	err := fs.WalkDir(static, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(static, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := &asset{body: body, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		a.contentType = contentTypes[path.Ext(p)]
		if a.contentType == "" {
			a.contentType = "text/plain; charset=utf-8" // licences
		}
		if !strings.HasPrefix(a.contentType, "image/png") {
			a.gzipped = compress(body)
		}
		out[p] = a
		return nil
	})
	return out, err
}

// compress gzips b, or returns nil when that saves less than a tenth.
func compress(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	if buf.Len() > len(b)*9/10 {
		return nil
	}
	return buf.Bytes()
}

func (a *asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("Vary", "Accept-Encoding")
	if etagMatches(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gzipped != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = a.gzipped
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// etagMatches is If-None-Match's weak comparison over a list of tags.
func etagMatches(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// acceptsGzip reads Accept-Encoding, honouring an explicit q=0.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q > 0
		}
		return true
	}
	return false
}
