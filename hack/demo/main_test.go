package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDemo runs `make demo`'s program to its first stop: the samples Ready,
// the operator's children listed, a request answered through the gateway and
// the chat page signed in to through OAuth2 Proxy. README promises all of it.
func TestDemo(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: `make test` builds the control plane and sets it")
	}
	// A store of its own: bin/demo's is the developer's, perhaps made by
	// another branch's gateway with migrations this one does not know.
	cmd := exec.Command("go", "run", "./hack/demo", "--exit-when-ready", "--work-dir", t.TempDir())
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the demo failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"chatgateway.chatgateway.dev/family condition met",
		"deployment.apps/family-gateway",
		"servicemonitor.monitoring.coreos.com/family-gateway",
		`"object":"chat.completion"`,
		"The chat page: open http://127.0.0.1:",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
}
