package render

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

func TestAuthenticatedEmails(t *testing.T) {
	allow := func(emails ...string) *v1alpha1.UserAllowlist {
		al := &v1alpha1.UserAllowlist{}
		for _, e := range emails {
			al.Spec.Users = append(al.Spec.Users, v1alpha1.AllowedUser{Email: e})
		}
		return al
	}
	for name, tc := range map[string]struct {
		in   *v1alpha1.UserAllowlist
		want string
	}{
		"nil allowlist lets nobody in": {nil, ""},
		"empty allowlist":              {allow(), ""},
		"sorted, one a line":           {allow("carol@example.com", "alice@example.com", "bob@example.com"), "alice@example.com\nbob@example.com\ncarol@example.com\n"},
		"lower-cased and deduplicated": {allow("Alice@Example.com", "alice@example.com", "bob@example.com"), "alice@example.com\nbob@example.com\n"},
		// OAuth2 Proxy itself folds with Unicode rules and trims: what the
		// CRD would refuse never reaches its file.
		"not ASCII or padded: left out": {allow("\u212aate@example.com", " bob@example.com", "carol@example.com\u00a0", "dave@example.com"), "dave@example.com\n"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := string(AuthenticatedEmails(tc.in)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOAuth2ProxyConfig(t *testing.T) {
	in := family(t)
	b, err := OAuth2ProxyConfigYAML(in)
	if err != nil {
		t.Fatal(err)
	}
	var c oauth2ProxyAlphaConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatal(err)
	}
	headers := map[string]oauth2ProxyHeader{}
	for _, h := range c.InjectRequestHeaders {
		if h.PreserveRequestValue {
			t.Errorf("header %s keeps the client's value: a client could forge it", h.Name)
		}
		headers[h.Name] = h
	}
	if v := headers["X-Forwarded-Email"].Values; len(v) != 1 || v[0].ClaimSource == nil || v[0].ClaimSource.Claim != "email" {
		t.Errorf("X-Forwarded-Email is not the session's email: %+v", v)
	}
	if v := headers[GatewayTokenHeader].Values; len(v) != 1 || v[0].SecretSource == nil || v[0].SecretSource.FromFile != OAuth2ProxyTokenPath {
		t.Errorf("%s is not read from the token file: %+v", GatewayTokenHeader, v)
	}
	if got := c.UpstreamConfig.Upstreams[0].URI; got != "http://127.0.0.1:8080/" {
		t.Errorf("upstream = %s", got)
	}
	for _, a := range OAuth2ProxyArgs(in) {
		if strings.HasPrefix(a, "--email-domain") {
			t.Errorf("%s admits addresses the allowlist does not hold", a)
		}
	}

	in.Gateway.Spec.Auth.EmailHeader = "X-Auth-Request-Email"
	in.Gateway.Spec.Auth.OAuth2Proxy.Provider = "oidc"
	in.Gateway.Spec.Auth.OAuth2Proxy.OIDCIssuerURL = "https://id.example.com/realms/family"
	b, err = OAuth2ProxyConfigYAML(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: X-Auth-Request-Email", "issuerURL: https://id.example.com/realms/family", "provider: oidc"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config lacks %q:\n%s", want, b)
		}
	}

	in.Gateway.Spec.Auth.OAuth2Proxy.Enabled = false
	if OAuth2ProxyContainer(in) != nil || OAuth2ProxyVolumes(in) != nil {
		t.Error("a disabled sidecar still renders")
	}
	if _, err := OAuth2ProxyConfigYAML(in); err == nil {
		t.Error("no error rendering the config of a disabled sidecar")
	}
}

// TestOAuth2ProxySidecar runs a real OAuth2 Proxy (v7.15, path in
// OAUTH2_PROXY) with the rendered flags and alpha config in front of a fake
// gateway, signs in with basic auth (htpasswd, the one login that needs no
// identity provider) and checks what reaches the gateway: the token from
// the token file, the signed-in user, and none of the identity headers the
// client forged.
func TestOAuth2ProxySidecar(t *testing.T) {
	bin := os.Getenv("OAUTH2_PROXY")
	if bin == "" {
		t.Skip("OAUTH2_PROXY is not set; build it with GOBIN=$PWD/bin go install github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6")
	}
	var mu sync.Mutex
	var seen http.Header
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer gateway.Close()

	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	in := family(t)
	cfg, err := OAuth2ProxyConfigYAML(in)
	if err != nil {
		t.Fatal(err)
	}
	relocate := strings.NewReplacer("/etc/oauth2-proxy", dir, "http://127.0.0.1:8080/", gateway.URL+"/", "0.0.0.0:4180", addr)
	const token = "gateway-token-from-the-secret"
	sum := sha1.Sum([]byte("pw"))
	for path, content := range map[string]string{
		OAuth2ProxyConfigPath:        relocate.Replace(string(cfg)),
		OAuth2ProxyEmailsPath:        string(AuthenticatedEmails(in.Allowlist)),
		OAuth2ProxyTokenPath:         token,
		OAuth2ProxyClientPath:        "client-secret",
		"/etc/oauth2-proxy/htpasswd": "alice@example.com:{SHA}" + base64.StdEncoding.EncodeToString(sum[:]) + "\n",
	} {
		p := relocate.Replace(path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var args []string
	for _, a := range OAuth2ProxyArgs(in) {
		args = append(args, relocate.Replace(a))
	}
	args = append(args, "--htpasswd-file="+filepath.Join(dir, "htpasswd"), "--cookie-secure=false")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "OAUTH2_PROXY_COOKIE_SECRET=0123456789abcdef0123456789abcdef")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("oauth2-proxy output:\n%s", logs.String())
		}
	}()
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy did not start: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Without a session, the API routes reach the gateway, which checks
	// for a personal key (and answers 401 without one): the key comes
	// through untouched, the identity headers the client forged do not.
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer cgw_personal")
	req.Header.Set("X-Forwarded-Email", "mallory@example.com")
	req.Header.Set(GatewayTokenHeader, "forged")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	if resp.StatusCode != http.StatusOK || seen.Get("Authorization") != "Bearer cgw_personal" || len(seen.Values("X-Forwarded-Email")) != 0 ||
		slices.Contains(seen.Values(GatewayTokenHeader), "forged") {
		t.Errorf("GET /v1/models with a key and no session = %d; the gateway got Authorization %q, X-Forwarded-Email %q, %s %q",
			resp.StatusCode, seen.Get("Authorization"), seen.Values("X-Forwarded-Email"), GatewayTokenHeader, seen.Values(GatewayTokenHeader))
	}
	seen = nil
	mu.Unlock()
	// The page itself stays behind the sign-in.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	if resp.StatusCode == http.StatusOK || seen != nil {
		t.Errorf("GET / without a session = %d, and reached the gateway: %v", resp.StatusCode, seen != nil)
	}
	mu.Unlock()

	req, _ = http.NewRequest(http.MethodGet, base+"/api/me/usage", nil)
	req.SetBasicAuth("alice@example.com", "pw")
	req.Header.Set("X-Forwarded-Email", "mallory@example.com")
	req.Header.Set(GatewayTokenHeader, "forged")
	req.Header.Set("X-Forwarded-User", "mallory")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed-in request = %d, want 200", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := seen.Values(GatewayTokenHeader); len(got) != 1 || got[0] != token {
		t.Errorf("gateway got %s %q, want exactly the token file's content", GatewayTokenHeader, got)
	}
	// A basic-auth session has no email claim, so the forged header must be
	// gone rather than replaced.
	if got := seen.Values("X-Forwarded-Email"); len(got) != 0 {
		t.Errorf("gateway got the client's X-Forwarded-Email %q", got)
	}
	if got := seen.Values("X-Forwarded-User"); len(got) != 1 || got[0] != "alice@example.com" {
		t.Errorf("gateway got X-Forwarded-User %q, want the signed-in user", got)
	}
}
