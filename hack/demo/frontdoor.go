package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/oauth2-proxy/mockoidc"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/controllers"
	"github.com/chatgateway/chatgateway-operator/internal/render"
	"github.com/chatgateway/chatgateway-operator/test/loopback"
)

// demoUser is who the mock identity provider signs in.
const demoUser = "alice@example.com"

// runFrontDoor puts a real OAuth2 Proxy in front of the gateway, as the
// sidecar does in the pod, with the config the operator renders. The
// sample signs in with Google, which cannot be reached here, so the demo
// swaps in a mock OpenID Connect provider that signs everyone in as alice.
// It returns the URL to open in a browser.
func runFrontDoor(ctx context.Context, cfg *rest.Config, root, workDir, gatewayAddr, tokenFile string, logFile io.Writer, stop *[]func()) (string, error) {
	proxyBin := filepath.Join(root, "bin", "oauth2-proxy")
	if _, err := os.Stat(proxyBin); err != nil {
		return "", fmt.Errorf("OAuth2 Proxy is not built: run `make demo`, which builds it")
	}
	oidc, err := mockoidc.NewServer(nil)
	if err != nil {
		return "", err
	}
	// Every sign-in is alice's: queue her before each authorization.
	_ = oidc.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == mockoidc.AuthorizationEndpoint {
				oidc.QueueUser(&mockoidc.MockUser{Subject: "alice", Email: demoUser, EmailVerified: true})
			}
			next.ServeHTTP(w, r)
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	if err := oidc.Start(ln, nil); err != nil {
		return "", err
	}
	*stop = append(*stop, func() { _ = oidc.Shutdown() })

	c, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		return "", err
	}
	in, err := demoInputs(ctx, c)
	if err != nil {
		return "", err
	}
	in.Gateway.Spec.Auth.OAuth2Proxy.Provider = "oidc"
	in.Gateway.Spec.Auth.OAuth2Proxy.OIDCIssuerURL = oidc.Issuer()
	in.Gateway.Spec.Auth.OAuth2Proxy.ClientID = oidc.Config().ClientID

	port, err := freePort()
	if err != nil {
		return "", err
	}
	proxyAddr := fmt.Sprintf("127.0.0.1:%d", port)
	sidecar := loopback.OAuth2Proxy{Listen: proxyAddr, GatewayURL: gatewayAddr, TokenFile: tokenFile,
		ClientSecret: oidc.Config().ClientSecret, Dir: filepath.Join(workDir, "mounts", "oauth2-proxy")}
	args, err := sidecar.Args(in)
	if err != nil {
		return "", err
	}
	proxy := exec.Command(proxyBin, args...)
	proxy.Env = sidecar.Env()
	proxy.Stdout, proxy.Stderr = logFile, logFile
	if err := proxy.Start(); err != nil {
		return "", fmt.Errorf("starting OAuth2 Proxy: %w", err)
	}
	*stop = append(*stop, func() {
		_ = proxy.Process.Signal(os.Interrupt)
		_, _ = proxy.Process.Wait()
	})
	base := "http://" + proxyAddr
	if err := checkPage(base); err != nil {
		return "", err
	}
	return base + "/", nil
}

// demoInputs reads what the operator rendered the sample from.
func demoInputs(ctx context.Context, c client.Client) (render.Inputs, error) {
	gw := &v1alpha1.ChatGateway{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "family"}, gw); err != nil {
		return render.Inputs{}, err
	}
	al := &v1alpha1.UserAllowlist{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: gw.Spec.Auth.AllowlistRef.Name}, al); err != nil {
		return render.Inputs{}, err
	}
	if gw.Spec.Auth.OAuth2Proxy == nil {
		gw.Spec.Auth.OAuth2Proxy = &v1alpha1.OAuth2ProxySpec{}
	}
	gw.Spec.Auth.OAuth2Proxy.Enabled = true
	return render.Inputs{Gateway: gw, Allowlist: al}, nil
}

// checkPage signs in through the proxy as a browser would and fetches the
// chat page, so the URL printed for the person is known to work.
func checkPage(base string) error {
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := browser.Get(base + "/oauth2/start?rd=%2F")
		if err != nil {
			last = err
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte("<title>Chat</title>")) {
			return nil
		}
		last = fmt.Errorf("signing in through OAuth2 Proxy ended with %s", resp.Status)
	}
	return fmt.Errorf("the chat page did not answer through OAuth2 Proxy: %w", last)
}
