package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// volume imitates how the kubelet updates a mounted ConfigMap or Secret
// (its atomic writer, pkg/volume/util/atomic_writer.go): files live in a
// timestamped directory, "..data" points at it, and each visible name is a
// symlink through "..data". An update writes a new directory, renames a new
// "..data" symlink over the old one, and only then creates the visible
// names that are new, removes those that went away and deletes the old
// directory.
type volume struct {
	t   *testing.T
	dir string
	gen int
}

func newVolume(t *testing.T, dir string, files map[string]string) *volume {
	v := &volume{t: t, dir: dir}
	v.publish(files)
	return v
}

func (v *volume) path(name string) string { return filepath.Join(v.dir, name) }

// publish updates the volume to files, the whole kubelet update.
func (v *volume) publish(files map[string]string) {
	v.t.Helper()
	v.swap(files)()
}

// swap does the kubelet update up to the "..data" rename: the names new to
// files do not exist yet, those that went away still do. finish does the
// rest.
func (v *volume) swap(files map[string]string) (finish func()) {
	v.t.Helper()
	old, _ := os.Readlink(filepath.Join(v.dir, "..data")) // "" the first time
	v.gen++
	ts := fmt.Sprintf("..2026_01_02_03_04_%02d.%d", v.gen, v.gen)
	for name, content := range files {
		writeFile(v.t, filepath.Join(v.dir, ts, name), content)
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	must(v.t, os.Symlink(ts, tmp))
	must(v.t, os.Rename(tmp, filepath.Join(v.dir, "..data")))
	return func() {
		v.t.Helper()
		for name := range files {
			link := filepath.Join(v.dir, name)
			if _, err := os.Lstat(link); os.IsNotExist(err) {
				must(v.t, os.Symlink(filepath.Join("..data", name), link))
			}
		}
		if old == "" {
			return
		}
		gone, err := os.ReadDir(filepath.Join(v.dir, old))
		must(v.t, err)
		for _, f := range gone {
			if _, kept := files[f.Name()]; !kept {
				must(v.t, os.Remove(filepath.Join(v.dir, f.Name())))
			}
		}
		must(v.t, os.RemoveAll(filepath.Join(v.dir, old)))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReloadThroughSymlinkSwap(t *testing.T) {
	sims := newEnv(t)
	root := t.TempDir()
	tokens := newVolume(t, filepath.Join(root, "token"), map[string]string{"token": currentToken})
	cfg := baseConfig(root, sims.anthURL, sims.oaiURL)
	cfg.Auth.TokenFile = tokens.path("token")
	cfg.Auth.PreviousTokenFile = tokens.path("previous")
	cfg.Auth.PreviousTokenExpiresAtFile = tokens.path("previous-expires-at")
	writeFile(t, cfg.Providers[0].APIKeyFile, anthKey)
	writeFile(t, cfg.Providers[1].APIKeyFile, oaiKey)
	writeFile(t, cfg.Keys.MasterKeyFile, strings.Repeat("m", 32))
	render := func(c *gatewayconfig.Config) string {
		b, err := gatewayconfig.Marshal(c)
		must(t, err)
		return string(b)
	}
	config := newVolume(t, filepath.Join(root, "config"), map[string]string{"gateway.yaml": render(cfg)})

	gw, err := gateway.New(gateway.Options{ConfigPath: config.path("gateway.yaml"), Logger: testLogger(t)})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go gw.Watch(ctx, 10*time.Millisecond)
	url, metricsURL := serve(t, gw)
	e := &env{t: t, url: url, metricsURL: metricsURL}

	status := func(token, who string) int {
		h := authHeader(who)
		h.Set("Authorization", "Bearer "+token)
		resp, _ := e.do("POST", "/v1/chat/completions", h, `{"model":"gpt","messages":[{"role":"user","content":"hi"}]}`)
		return resp.StatusCode
	}
	if s := status(currentToken, bob); s != 200 {
		t.Fatalf("before any change: %d", s)
	}

	// Token rotation: the old token becomes "previous" with a grace period.
	tokens.publish(map[string]string{
		"token": "rotated-token", "previous": currentToken,
		"previous-expires-at": time.Now().Add(time.Hour).Format(time.RFC3339),
	})
	waitFor(t, "the rotated token", func() bool { return status("rotated-token", bob) == 200 })
	if s := status(currentToken, bob); s != 200 {
		t.Errorf("previous token within its grace: %d", s)
	}
	// Kill switch: the previous token is revoked at once.
	tokens.publish(map[string]string{"token": "rotated-token"})
	waitFor(t, "the revoked token", func() bool { return status(currentToken, bob) == 401 })

	// A config change: bob leaves the allowlist.
	cfg.Users = cfg.Users[:1]
	config.publish(map[string]string{"gateway.yaml": render(cfg)})
	waitFor(t, "bob's removal", func() bool { return status("rotated-token", bob) == 403 })

	// A broken config is refused; the last good one stays in force.
	bad := *cfg
	bad.Providers = nil
	config.publish(map[string]string{"gateway.yaml": render(&bad)})
	waitFor(t, "the reload error", func() bool {
		return len(e.metric("chatgateway_config_reload_errors_total 1")) == 1
	})
	if s := status("rotated-token", alice); s != 200 {
		t.Errorf("after a bad reload: %d, want the last good config to serve", s)
	}
	if got := e.metric("chatgateway_config_reloads_total"); len(got) != 1 || got[0] != "chatgateway_config_reloads_total 4" {
		t.Errorf("reloads: %q", got)
	}
}

// TestReloadMidRotation: a poll that runs while the kubelet is halfway
// through a token rotation ("..data" already names the new set, but the
// visible names new to it, "previous" and its expiry, are not created yet)
// sees the whole new set: the rotated token, and the old one within its
// grace. A poll halfway through the kill switch (the dropped "previous"
// still listed) refuses the old token at once.
func TestReloadMidRotation(t *testing.T) {
	tokens := newVolume(t, t.TempDir(), map[string]string{"token": currentToken})
	e := newEnv(t, func(c *gatewayconfig.Config) {
		c.Auth.TokenFile = tokens.path("token")
		c.Auth.PreviousTokenFile = tokens.path("previous")
		c.Auth.PreviousTokenExpiresAtFile = tokens.path("previous-expires-at")
	})
	status := func(token string) int {
		h := authHeader(alice)
		h.Set("Authorization", "Bearer "+token)
		resp, _ := e.do("POST", "/v1/messages", h, `{"model":"sonnet","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
		return resp.StatusCode
	}
	reload := func(when string) {
		t.Helper()
		if changed, err := e.gw.Reload(); !changed || err != nil {
			t.Fatalf("reload %s: changed %v, %v", when, changed, err)
		}
	}

	finish := tokens.swap(map[string]string{
		"token": "rotated-token", "previous": currentToken,
		"previous-expires-at": epoch.Add(time.Hour).Format(time.RFC3339),
	})
	reload("halfway through the rotation")
	if s := status(currentToken); s != http.StatusOK {
		t.Errorf("halfway through the rotation, the previous token within its grace: %d, want 200", s)
	}
	if s := status("rotated-token"); s != http.StatusOK {
		t.Errorf("halfway through the rotation, the rotated token: %d, want 200", s)
	}
	finish()
	_, _ = e.gw.Reload()
	if s := status(currentToken); s != http.StatusOK {
		t.Errorf("after the rotation, the previous token within its grace: %d, want 200", s)
	}

	tokens.swap(map[string]string{"token": "rotated-token"})
	reload("halfway through the kill switch")
	if s := status(currentToken); s != http.StatusUnauthorized {
		t.Errorf("halfway through the kill switch, the dropped token: %d, want 401", s)
	}
	if s := status("rotated-token"); s != http.StatusOK {
		t.Errorf("halfway through the kill switch, the current token: %d, want 200", s)
	}
}

// TestReloadKeepsInFlightRequests: a request finishes on the snapshot it
// started with, even when its model disappears meanwhile.
func TestReloadKeepsInFlightRequests(t *testing.T) {
	e := newEnv(t)
	done := make(chan error, 1)
	go func() {
		got, err := e.chat("gpt", "hi [[fault:delay=300ms]]", true)
		if err == nil && got != simReply(gptID, 2) {
			err = fmt.Errorf("reply %q", got)
		}
		done <- err
	}()
	waitFor(t, "the request to reach the provider", func() bool { return e.oai.Served() == 1 })
	cfg := *e.cfg
	cfg.Providers = cfg.Providers[:1]
	cfg.Fallbacks = nil
	e.writeConfig(&cfg)
	if changed, err := e.gw.Reload(); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if resp, _ := e.do("POST", "/v1/chat/completions", authHeader(alice), `{"model":"gpt","messages":[]}`); resp.StatusCode != http.StatusNotFound {
		t.Errorf("after the reload gpt should be gone: %d", resp.StatusCode)
	}
}

func TestStartupRefusesBadConfig(t *testing.T) {
	sims := newEnv(t)
	cases := []struct {
		name   string
		mutate func(*gatewayconfig.Config)
		want   string
	}{
		{"invalid field", func(c *gatewayconfig.Config) { c.Providers[0].BaseURL = "ftp://x" }, "providers[0].baseURL"},
		{"missing token file", func(c *gatewayconfig.Config) { c.Auth.TokenFile = "/nonexistent/token" }, "auth.tokenFile"},
		{"missing provider key", func(c *gatewayconfig.Config) { c.Providers[1].APIKeyFile = "/nonexistent/key" }, "providers[1].apiKeyFile"},
		{"short master key", func(c *gatewayconfig.Config) {
			c.Identity.Upstream = gatewayconfig.IdentityHash
			c.Keys.MasterKeyFile = c.Providers[1].APIKeyFile
		}, "keys.masterKeyFile"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig(sims.dir, sims.anthURL, sims.oaiURL)
			c.mutate(cfg)
			path := filepath.Join(t.TempDir(), "gateway.yaml")
			b, err := gatewayconfig.Marshal(cfg)
			must(t, err)
			writeFile(t, path, string(b))
			_, err = gateway.New(gateway.Options{ConfigPath: path})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one naming %s", err, c.want)
			}
		})
	}
}

// TestTokenChangeDespiteBrokenFiles: the kill switch works while another
// input of the config fails to load. A provider's key file that vanished
// (or a config that no longer parses) keeps the last good snapshot for
// everything else, but a rotated token takes effect and the revoked one is
// refused at once.
func TestTokenChangeDespiteBrokenFiles(t *testing.T) {
	for _, breakIt := range []struct {
		name string
		fn   func(e *env)
	}{
		{"provider key file missing", func(e *env) { must(t, os.Remove(e.cfg.Providers[1].APIKeyFile)) }},
		{"provider key file unreadable", func(e *env) {
			must(t, os.Remove(e.cfg.Providers[1].APIKeyFile))
			must(t, os.Mkdir(e.cfg.Providers[1].APIKeyFile, 0o700)) // reading a directory fails
		}},
		{"config does not parse", func(e *env) { writeFile(t, e.configPath(), "apiVersion: [not yaml") }},
	} {
		t.Run(breakIt.name, func(t *testing.T) {
			e := newEnv(t)
			status := func(token string) int {
				h := authHeader(alice)
				h.Set("Authorization", "Bearer "+token)
				resp, _ := e.do("POST", "/v1/messages", h, `{"model":"sonnet","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
				return resp.StatusCode
			}
			if s := status(currentToken); s != 200 {
				t.Fatalf("before: %d", s)
			}
			breakIt.fn(e)
			if _, err := e.gw.Reload(); err == nil {
				t.Fatal("the broken input loaded")
			}
			// The kill switch: a new token, no previous one.
			writeFile(t, filepath.Join(e.dir, "token", "token"), "the-new-token")
			must(t, os.Remove(filepath.Join(e.dir, "token", "previous")))
			_, _ = e.gw.Reload() // a config that does not parse names no token file: nothing changed but the token
			if s := status(currentToken); s != http.StatusUnauthorized {
				t.Errorf("the revoked token answers %d, want 401", s)
			}
			if s := status(previousToken); s != http.StatusUnauthorized {
				t.Errorf("the dropped previous token answers %d, want 401", s)
			}
			if s := status("the-new-token"); s != 200 {
				t.Errorf("the new token answers %d, want 200 (the rest of the last good config serves)", s)
			}
			// Nothing else of the broken change was taken: gpt's provider
			// still has the key it had.
			h := authHeader(alice)
			h.Set("Authorization", "Bearer the-new-token")
			if resp, body := e.do("POST", "/v1/chat/completions", h, `{"model":"gpt","messages":[{"role":"user","content":"hi"}]}`); resp.StatusCode != 200 {
				t.Errorf("gpt after the token change: %d %s", resp.StatusCode, body)
			}
		})
	}
}
