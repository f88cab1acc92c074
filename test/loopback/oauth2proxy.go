// Package loopback lays out what the operator renders for a gateway pod so
// that its containers can run as local processes on loopback. Only what a
// pod's mounts and ports fix — file paths and addresses — is rewritten; the
// rest is the rendered config as it is. The demo and the end-to-end tests
// share it.
package loopback

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/chatgateway/chatgateway-operator/internal/render"
)

// OAuth2Proxy is the sidecar, run next to a gateway process.
type OAuth2Proxy struct {
	// Listen is the proxy's host:port; GatewayURL the gateway it fronts.
	Listen, GatewayURL string
	// TokenFile holds the gateway token; ClientSecret is the OAuth client's.
	TokenFile, ClientSecret string
	// Dir receives the proxy's files.
	Dir string
}

// Args writes the rendered alpha config, the emails file and the client
// secret under Dir, and returns the proxy's command-line arguments.
func (o OAuth2Proxy) Args(in render.Inputs) ([]string, error) {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	write := func(name string, data []byte) (string, error) {
		p := filepath.Join(o.Dir, name)
		return p, os.WriteFile(p, data, 0o600)
	}
	alpha, err := render.OAuth2ProxyConfigYAML(in)
	if err != nil {
		return nil, err
	}
	clientSecret, err := write("client-secret", []byte(o.ClientSecret))
	if err != nil {
		return nil, err
	}
	for from, to := range map[string]string{
		render.OAuth2ProxyTokenPath:                             o.TokenFile,
		render.OAuth2ProxyClientPath:                            clientSecret,
		fmt.Sprintf("0.0.0.0:%d", render.OAuth2ProxyPort):       o.Listen,
		fmt.Sprintf("http://127.0.0.1:%d/", render.GatewayPort): strings.TrimSuffix(o.GatewayURL, "/") + "/",
	} {
		alpha = bytes.ReplaceAll(alpha, []byte(from), []byte(to))
	}
	alphaPath, err := write("oauth2-proxy.yaml", alpha)
	if err != nil {
		return nil, err
	}
	emailsPath, err := write("authenticated-emails", render.AuthenticatedEmails(in.Allowlist))
	if err != nil {
		return nil, err
	}
	var args []string
	for _, a := range render.OAuth2ProxyArgs(in) {
		if strings.HasPrefix(a, "--redirect-url=") {
			continue // a public URL; here the proxy answers on loopback
		}
		a = strings.ReplaceAll(a, render.OAuth2ProxyConfigPath, alphaPath)
		a = strings.ReplaceAll(a, render.OAuth2ProxyEmailsPath, emailsPath)
		args = append(args, a)
	}
	// Plain HTTP on loopback: in a cluster a TLS-terminating ingress is in front.
	return append(args, "--cookie-secure=false"), nil
}

// Env is the proxy's environment: the process's own plus a cookie secret,
// which in the pod comes from the user's Secret.
func (OAuth2Proxy) Env() []string {
	return append(os.Environ(), "OAUTH2_PROXY_COOKIE_SECRET=0123456789abcdef0123456789abcdef")
}
