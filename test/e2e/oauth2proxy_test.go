package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/render"
	"github.com/chatgateway/chatgateway-operator/test/loopback"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// TestSignInThroughOAuth2Proxy signs people in through the front door and
// checks who the gateway and the provider believe they are.
func TestSignInThroughOAuth2Proxy(t *testing.T) {
	fd := startFrontDoor(t)
	base, oidc, sim, gateway := fd.base, fd.oidc, fd.sim, fd.gateway

	chat := func(c *http.Client, extra http.Header) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions",
			strings.NewReader(`{"model":"sonnet","messages":[{"role":"user","content":"Hello through the front door"}]}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range extra {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	t.Run("without a session the API answers 401, not a login page", func(t *testing.T) {
		resp, _ := chat(http.DefaultClient, http.Header{"X-Forwarded-Email": {email}, "X-Gateway-Token": {token}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})

	t.Run("a signed-in user reaches the provider as themselves, whatever headers they forge", func(t *testing.T) {
		alice := signIn(t, oidc, base, "alice@example.com")
		sim.Reset()
		resp, body := chat(alice, http.Header{"X-Forwarded-Email": {"bob@example.com"}, "X-Gateway-Token": {"forged"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		last, ok := sim.LastRequest()
		if !ok {
			t.Fatal("the request did not reach the provider")
		}
		var sent struct { // an Anthropic provider: identity goes in metadata.user_id
			Metadata struct {
				UserID string `json:"user_id"`
			} `json:"metadata"`
		}
		if err := last.JSON(&sent); err != nil {
			t.Fatal(err)
		}
		if sent.Metadata.UserID != "alice@example.com" {
			t.Fatalf("the provider was told the user is %q, want alice@example.com", sent.Metadata.UserID)
		}
		for _, h := range []string{"X-Gateway-Token", "X-Forwarded-Email", "Cookie"} {
			if v := last.Header.Get(h); v != "" {
				t.Fatalf("%s reached the provider: %q", h, v)
			}
		}
	})

	t.Run("a personal key passes the front door without a session, as its owner alone", func(t *testing.T) {
		alice := signIn(t, oidc, base, "alice@example.com")
		req, _ := http.NewRequest(http.MethodPost, base+"/api/me/keys", strings.NewReader(`{"name":"script"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := alice.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var k struct{ ID, Key string }
		err = json.NewDecoder(resp.Body).Decode(&k)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("creating a key through the proxy: %d %v", resp.StatusCode, err)
		}
		sim.Reset()
		// No cookie; a forged email and token come along and change nothing.
		resp, body := chat(http.DefaultClient, http.Header{"Authorization": {"Bearer " + k.Key},
			"X-Forwarded-Email": {"bob@example.com"}, "X-Gateway-Token": {"forged"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a personal key through the proxy: %d: %s", resp.StatusCode, body)
		}
		last, _ := sim.LastRequest()
		if !strings.Contains(string(last.Body), `"user_id":"alice@example.com"`) {
			t.Fatalf("the provider was not told alice: %s", last.Body)
		}
		// The page itself still needs the sign-in, key or not.
		req, _ = http.NewRequest(http.MethodGet, base+"/", nil)
		req.Header.Set("Authorization", "Bearer "+k.Key)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("the page was served to a key without a session")
		}
		// Revoked through the proxy: refused through the proxy.
		req, _ = http.NewRequest(http.MethodDelete, base+"/api/me/keys/"+k.ID, nil)
		if resp, err = alice.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("revoking: %v %v", resp, err)
		}
		resp.Body.Close()
		if resp, _ := chat(http.DefaultClient, http.Header{"Authorization": {"Bearer " + k.Key}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a revoked key through the proxy: %d", resp.StatusCode)
		}
	})

	t.Run("a person the identity provider knows but the allowlist does not is refused", func(t *testing.T) {
		c := newBrowser()
		oidc.QueueUser(&mockoidc.MockUser{Subject: "mallory", Email: "mallory@example.com", EmailVerified: true})
		resp, err := c.Get(base + "/oauth2/start?rd=%2Fhealthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("sign-in ended with %d, want 403", resp.StatusCode)
		}
	})

	t.Run("going around the proxy without the token is refused by the gateway", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+gateway.addr+"/v1/chat/completions",
			strings.NewReader(`{"model":"sonnet","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("X-Forwarded-Email", "alice@example.com")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
}

// frontDoor is the whole path a person's browser takes: a real OAuth2 Proxy
// (against a mock OpenID Connect provider) in front of the real gateway
// binary, which calls the provider simulator. Both the gateway's and the
// proxy's config are what the operator renders for a ChatGateway; only the
// paths and addresses that a pod's mounts and ports would fix are rewritten
// for loopback.
type frontDoor struct {
	base    string // the proxy's URL
	oidc    *mockoidc.MockOIDC
	sim     *providersim.Server
	gateway *process
}

func startFrontDoor(t *testing.T) *frontDoor { return startFrontDoorWith(t, nil) }

// startFrontDoorWith lets a test change the household's resources first.
func startFrontDoorWith(t *testing.T, mutate func(*render.Inputs)) *frontDoor {
	t.Helper()
	proxyBin := os.Getenv("OAUTH2_PROXY")
	if proxyBin == "" {
		t.Skip("OAUTH2_PROXY is not set: `make test` builds OAuth2 Proxy and sets it")
	}
	oidc, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = oidc.Shutdown() })
	sim, simURL := providersim.Start(t, providersim.Options{APIKey: "sk-ant-e2e"})

	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	in := familyInputs(oidc, simURL)
	if mutate != nil {
		mutate(&in)
	}

	// The gateway, on the rendered gateway.yaml.
	conf, err := render.GatewayConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	masterKey := make([]byte, 32)
	_, _ = rand.Read(masterKey)
	// Every provider is the one simulator, which takes one key.
	for i := range conf.Providers {
		conf.Providers[i].APIKeyFile = write("provider-key", []byte("sk-ant-e2e"))
	}
	conf.Auth.TokenFile = write("token", []byte(token))
	conf.Auth.PreviousTokenFile, conf.Auth.PreviousTokenExpiresAtFile = "", ""
	conf.Keys.MasterKeyFile = write("master-key", masterKey)
	conf.Sessions.Store.Path = filepath.Join(dir, "store.db")
	conf.Listen, conf.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	b, err := gc.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	gateway := start(t, buildGateway(t), write("gateway.yaml", b))
	go func() { // keep the log pipe drained
		for range gateway.logs {
		}
	}()

	// OAuth2 Proxy, on the rendered alpha config and flags.
	proxyAddr := freeAddr(t)
	sidecar := loopback.OAuth2Proxy{Listen: proxyAddr, GatewayURL: "http://" + gateway.addr,
		TokenFile: filepath.Join(dir, "token"), ClientSecret: oidc.Config().ClientSecret, Dir: filepath.Join(dir, "oauth2-proxy")}
	args, err := sidecar.Args(in)
	if err != nil {
		t.Fatal(err)
	}
	proxy := exec.Command(proxyBin, args...)
	proxy.Env = sidecar.Env()
	var proxyLog bytes.Buffer
	proxy.Stdout, proxy.Stderr = &proxyLog, &proxyLog
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = proxy.Process.Kill()
		_, _ = proxy.Process.Wait()
		if t.Failed() {
			t.Logf("oauth2-proxy log:\n%s", proxyLog.String())
		}
	})
	base := "http://" + proxyAddr
	waitFor(t, base+"/ping")
	return &frontDoor{base: base, oidc: oidc, sim: sim, gateway: gateway}
}

// familyInputs is a ChatGateway as a household would write it, signing in
// with OpenID Connect, and what it references.
func familyInputs(oidc *mockoidc.MockOIDC, simURL string) render.Inputs {
	meta := metav1.ObjectMeta{Namespace: "family", Name: "family"}
	gw := &v1alpha1.ChatGateway{ObjectMeta: meta, Spec: v1alpha1.ChatGatewaySpec{
		Providers:    []v1alpha1.LocalRef{{Name: "anthropic"}},
		DefaultModel: "sonnet",
		Quotas:       v1alpha1.QuotaSpec{DailyQuota: v1alpha1.DailyQuota{DailySoftUSD: ptr.To[v1alpha1.USD]("1"), DailyHardUSD: ptr.To[v1alpha1.USD]("5")}},
		Auth: v1alpha1.AuthSpec{
			AllowlistRef: v1alpha1.LocalRef{Name: "family"},
			OAuth2Proxy: &v1alpha1.OAuth2ProxySpec{
				Enabled: true, Provider: "oidc", OIDCIssuerURL: oidc.Issuer(), ClientID: oidc.Config().ClientID,
				ClientSecretRef: &v1alpha1.SecretKeyRef{Name: "oauth2-proxy", Key: "client-secret"},
				CookieSecretRef: &v1alpha1.SecretKeyRef{Name: "oauth2-proxy", Key: "cookie-secret"},
			},
		},
	}}
	mp := v1alpha1.ModelProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "family", Name: "anthropic"},
		Spec: v1alpha1.ModelProviderSpec{
			Type: v1alpha1.ProviderAnthropic, BaseURL: simURL,
			APIKeySecretRef: &v1alpha1.SecretKeyRef{Name: "anthropic-api-key", Key: "api-key"},
			Models: []v1alpha1.ModelSpec{{Name: "sonnet", ID: "claude-sonnet-4-5-20250929",
				Pricing: v1alpha1.ModelPricing{InputPerMTok: "3.00", OutputPerMTok: "15.00"}}},
		}}
	al := &v1alpha1.UserAllowlist{ObjectMeta: meta, Spec: v1alpha1.UserAllowlistSpec{Users: []v1alpha1.AllowedUser{
		{Email: "alice@example.com", Role: v1alpha1.RoleAdmin}, {Email: "bob@example.com", Role: v1alpha1.RoleUser},
	}}}
	return render.Inputs{Gateway: gw, Providers: []v1alpha1.ModelProvider{mp}, Allowlist: al, Image: "e2e", TokenGeneration: "1"}
}

// newBrowser is an HTTP client that keeps cookies and follows redirects.
func newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// signIn goes through the OpenID Connect login as the given person and
// returns a client holding their OAuth2 Proxy session.
func signIn(t *testing.T, oidc *mockoidc.MockOIDC, base, who string) *http.Client {
	t.Helper()
	c := newBrowser()
	oidc.QueueUser(&mockoidc.MockUser{Subject: who, Email: who, EmailVerified: true})
	resp, err := c.Get(base + "/oauth2/start?rd=%2Fhealthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("sign-in as %s ended with %d: %s", who, resp.StatusCode, body)
	}
	return c
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer", url)
}

// TestForwardedHeadersOnlyFromTrustedProxies: what a client sends as
// X-Forwarded-Host and -Proto is where OAuth2 Proxy would send the identity
// provider's answer (the sign-in callback is built from them when no
// redirectURL is set, as on loopback here). The rendered sidecar believes
// them only from the proxies in spec.auth.oauth2Proxy.trustedProxies.
func TestForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		believe bool
	}{
		{"no trusted proxies: a client's headers are ignored", nil, false},
		{"the client is not among the trusted proxies: ignored", []string{"10.0.0.0/8"}, false},
		{"the client is a trusted proxy: believed", []string{"127.0.0.1/32", "::1/128"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd := startFrontDoorWith(t, func(in *render.Inputs) {
				in.Gateway.Spec.Auth.OAuth2Proxy.TrustedProxies = tc.trusted
			})
			req, _ := http.NewRequest(http.MethodGet, fd.base+"/oauth2/start?rd=%2F", nil)
			req.Header.Set("X-Forwarded-Host", "evil.example")
			req.Header.Set("X-Forwarded-Proto", "https")
			noFollow := &http.Client{Timeout: 10 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("sign-in start answered %d, want 302 to the identity provider", resp.StatusCode)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			callback, err := url.Parse(loc.Query().Get("redirect_uri"))
			if err != nil || callback.Host == "" {
				t.Fatalf("no redirect_uri in %s", loc)
			}
			self, _ := url.Parse(fd.base)
			want := "http://" + self.Host + "/oauth2/callback"
			if tc.believe {
				want = "https://evil.example/oauth2/callback"
			}
			if callback.String() != want {
				t.Fatalf("the identity provider is told to answer at %s, want %s", callback, want)
			}
		})
	}
}

// TestKelvinSignEmailThroughOAuth2Proxy: the identity provider holds
// "\u212Aate@example.com" (U+212A KELVIN SIGN, which Unicode lower-cases to
// "k") for someone who is not kate@example.com. OAuth2 Proxy lower-cases
// with Unicode, so its emails file lets them sign in; the gateway must
// still refuse them, with 403 and a message saying why, and never take
// them for kate.
func TestKelvinSignEmailThroughOAuth2Proxy(t *testing.T) {
	fd := startFrontDoorWith(t, func(in *render.Inputs) {
		in.Allowlist.Spec.Users = append(in.Allowlist.Spec.Users, v1alpha1.AllowedUser{Email: "kate@example.com", Role: v1alpha1.RoleUser})
	})
	call := func(c *http.Client, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, fd.base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	kate := signIn(t, fd.oidc, fd.base, "kate@example.com")
	if st, body := call(kate, "POST", "/api/sessions", `{"title":"kate's own"}`); st != http.StatusCreated {
		t.Fatalf("kate cannot create a session: %d %s", st, body)
	}

	const kelvin = "\u212Aate@example.com"
	c := newBrowser()
	fd.oidc.QueueUser(&mockoidc.MockUser{Subject: "not-kate", Email: kelvin, EmailVerified: true})
	resp, err := c.Get(fd.base + "/oauth2/start?rd=%2Fhealthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusForbidden {
		return // refused at the door: as good
	}
	fd.sim.Reset()
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/sessions", ""},
		{"POST", "/api/sessions", `{"title":"as kate"}`},
		{"POST", "/v1/chat/completions", `{"model":"sonnet","messages":[{"role":"user","content":"bill kate"}]}`},
		{"POST", "/v1/messages", `{"model":"sonnet","max_tokens":5,"messages":[{"role":"user","content":"bill kate"}]}`},
	} {
		st, body := call(c, r.method, r.path, r.body)
		if st != http.StatusForbidden || !strings.Contains(body, "U+212A") || !strings.Contains(body, "not ASCII") {
			t.Errorf("%s %s as %+q: %d %s; want 403 naming the character", r.method, r.path, kelvin, st, body)
		}
		if strings.Contains(body, "kate's own") {
			t.Errorf("%s %s showed kate's session to someone else", r.method, r.path)
		}
	}
	if n := fd.sim.Served(); n != 0 {
		t.Errorf("%d requests reached the provider", n)
	}
	if st, body := call(kate, "GET", "/api/sessions", ""); st != http.StatusOK || strings.Count(body, `"id"`) != 1 {
		t.Errorf("kate's sessions after the attempt: %d %s", st, body)
	}
}
