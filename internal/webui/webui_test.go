package webui

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestPageHeaders(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/", "/static/app.js", "/static/nope.js"} {
		resp := get(t, h, http.MethodGet, path, nil)
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self';", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "require-trusted-types-for 'script'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		for _, never := range []string{"unsafe-inline", "unsafe-eval", "wasm-unsafe-eval", "*", "http:", "https:"} {
			if strings.Contains(csp, never) {
				t.Errorf("%s: CSP %q allows %q", path, csp, never)
			}
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
	}
}

func TestAssets(t *testing.T) {
	h := Handler()
	raw, _ := fs.ReadFile(files, "static/vendor/marked/marked.esm.js")

	t.Run("compressed for clients that take gzip, plain otherwise", func(t *testing.T) {
		gz := get(t, h, http.MethodGet, "/static/vendor/marked/marked.esm.js", http.Header{"Accept-Encoding": {"br, gzip;q=0.8"}})
		if gz.Header.Get("Content-Encoding") != "gzip" || gz.Header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("encoding %q vary %q", gz.Header.Get("Content-Encoding"), gz.Header.Get("Vary"))
		}
		if n := gz.Header.Get("Content-Length"); n == "" || len(raw) < 3*len(n) {
			t.Fatalf("Content-Length %q", n)
		}
		if !bytes.Equal(body(t, gz), raw) {
			t.Fatal("the gzipped body is not the file")
		}
		for _, ae := range []string{"", "identity", "gzip;q=0", "GZIP; q=0.000"} {
			plain := get(t, h, http.MethodGet, "/static/vendor/marked/marked.esm.js", http.Header{"Accept-Encoding": {ae}})
			if plain.Header.Get("Content-Encoding") != "" || !bytes.Equal(body(t, plain), raw) {
				t.Fatalf("Accept-Encoding %q got encoding %q", ae, plain.Header.Get("Content-Encoding"))
			}
		}
	})

	t.Run("revalidated by ETag", func(t *testing.T) {
		first := get(t, h, http.MethodGet, "/", nil)
		etag := first.Header.Get("ETag")
		if etag == "" || first.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("ETag %q Cache-Control %q", etag, first.Header.Get("Cache-Control"))
		}
		for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag} {
			again := get(t, h, http.MethodGet, "/", http.Header{"If-None-Match": {inm}})
			if again.StatusCode != http.StatusNotModified || len(body(t, again)) != 0 {
				t.Fatalf("If-None-Match %s: %d", inm, again.StatusCode)
			}
		}
		if other := get(t, h, http.MethodGet, "/", http.Header{"If-None-Match": {`"stale"`}}); other.StatusCode != http.StatusOK {
			t.Fatalf("a stale ETag got %d", other.StatusCode)
		}
		if js := get(t, h, http.MethodGet, "/static/app.js", nil); js.Header.Get("ETag") == etag {
			t.Fatal("two files share an ETag")
		}
	})

	t.Run("types set by the page, not the host", func(t *testing.T) {
		for path, want := range map[string]string{
			"/":                                      "text/html; charset=utf-8",
			"/static/app.js":                         "text/javascript; charset=utf-8",
			"/static/vendor/dompurify/purify.es.mjs": "text/javascript; charset=utf-8",
			"/static/style.css":                      "text/css; charset=utf-8",
			"/static/icon.svg":                       "image/svg+xml",
			"/static/vendor/marked/LICENSE":          "text/plain; charset=utf-8",
		} {
			if got := get(t, h, http.MethodGet, path, nil).Header.Get("Content-Type"); got != want {
				t.Errorf("%s: Content-Type %q, want %q", path, got, want)
			}
		}
	})

	t.Run("no listings, no escapes, HEAD without a body", func(t *testing.T) {
		for _, path := range []string{"/static/", "/static/vendor/", "/static/js", "/static/../webui.go", "/index.html", "/static/missing.js"} {
			if resp := get(t, h, http.MethodGet, path, nil); resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", path, resp.StatusCode)
			}
		}
		head := get(t, h, http.MethodHead, "/static/app.js", nil)
		if head.StatusCode != http.StatusOK || head.Header.Get("Content-Length") == "" || len(body(t, head)) != 0 {
			t.Fatalf("HEAD: %d, length %q", head.StatusCode, head.Header.Get("Content-Length"))
		}
	})
}

// TestPageRunsOnlyItsOwnCode reads the page's own files: every script and
// module it names is embedded, no markup carries inline script or an event
// handler attribute, and the page's JavaScript has no eval and never
// assigns HTML strings (Trusted Types would refuse them at run time).
func TestPageRunsOnlyItsOwnCode(t *testing.T) {
	index, _ := fs.ReadFile(files, "static/index.html")
	if m := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>`).FindAll(index, -1); len(m) == 0 {
		t.Fatal("index.html loads no script")
	} else {
		for _, tag := range m {
			if !bytes.Contains(tag, []byte(`src="/static/`)) {
				t.Errorf("inline or foreign script: %s", tag)
			}
		}
	}
	if m := regexp.MustCompile(`(?i)\son[a-z]+\s*=`).Find(index); m != nil {
		t.Errorf("index.html has an event handler attribute: %s", m)
	}
	refs := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`).FindAllSubmatch(index, -1)
	imports := regexp.MustCompile(`(?:from|import\()\s*"(\.{1,2}/[^"]+)"`)
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "static/vendor/") || !strings.HasSuffix(p, ".js") {
			return err
		}
		src, _ := fs.ReadFile(files, p)
		for _, bad := range []string{"eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "setAttribute(\"on"} {
			if bytes.Contains(src, []byte(bad)) {
				t.Errorf("%s uses %s", p, bad)
			}
		}
		dir := p[:strings.LastIndex(p, "/")]
		for _, m := range imports.FindAllSubmatch(src, -1) {
			target := joinPath(dir, string(m[1]))
			if _, err := fs.Stat(files, target); err != nil {
				t.Errorf("%s imports %s, which is not embedded", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if _, err := fs.Stat(files, strings.TrimPrefix(string(r[1]), "/")); err != nil {
			t.Errorf("index.html names %s, which is not embedded", r[1])
		}
	}
}

func joinPath(dir, rel string) string {
	parts := strings.Split(dir, "/")
	for _, seg := range strings.Split(rel, "/") {
		switch seg {
		case ".":
		case "..":
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, seg)
		}
	}
	return strings.Join(parts, "/")
}
