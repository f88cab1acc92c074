// Command demo runs the operator on a local control plane: kube-apiserver
// and etcd from the envtest binaries, the CRDs, the manager as its own
// process, and the samples in config/samples. It prints what the operator
// made of them and keeps running until Ctrl-C. No cluster and no API key are
// needed. Run it with `make demo`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func main() {
	exitWhenReady := flag.Bool("exit-when-ready", false, "Stop once the samples are Ready (for a smoke test).")
	timeout := flag.Duration("ready-timeout", 2*time.Minute, "How long to wait for the samples to become Ready.")
	workDir := flag.String("work-dir", filepath.Join("bin", "demo"), "Where the demo keeps its kubeconfig, logs, mounts and the chat store (kept across runs).")
	flag.Parse()
	if err := run(*exitWhenReady, *timeout, *workDir); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(exitWhenReady bool, timeout time.Duration, workDir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := os.Getwd()
	if err != nil {
		return err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: run `make demo`, which builds the control plane binaries")
	}
	if !filepath.IsAbs(workDir) {
		workDir = filepath.Join(root, workDir)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}

	step("Starting a local control plane (kube-apiserver and etcd)")
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join(root, "config", "crd", "bases"),
			filepath.Join(root, "test", "crds", "monitoring"),
		},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() {
		step("Stopping the control plane")
		_ = env.Stop()
	}()
	user, err := env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		return err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfigPath := filepath.Join(workDir, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return err
	}
	kubectl := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, filepath.Join(assets, "kubectl"), append([]string{"--kubeconfig", kubeconfigPath}, args...)...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd
	}

	step("Building and starting the manager")
	manager := filepath.Join(root, "bin", "manager")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", manager, "./cmd/manager").CombinedOutput(); err != nil {
		return fmt.Errorf("building the manager: %w\n%s", err, out)
	}
	logFile, err := os.Create(filepath.Join(workDir, "manager.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	mgr := exec.Command(manager, "--metrics-bind-address=0", "--health-probe-bind-address=127.0.0.1:0")
	mgr.Env = append(os.Environ(), "KUBECONFIG="+kubeconfigPath)
	mgr.Stdout, mgr.Stderr = logFile, logFile
	if err := mgr.Start(); err != nil {
		return fmt.Errorf("starting the manager: %w", err)
	}
	defer func() {
		_ = mgr.Process.Signal(os.Interrupt)
		_, _ = mgr.Process.Wait()
	}()

	step("Creating the Secrets the samples reference (placeholder values)")
	for _, s := range [][]string{
		{"anthropic-api-key", "api-key=" + envOr("ANTHROPIC_API_KEY", "demo-placeholder-key")},
		{"litellm-master-key", "api-key=demo-placeholder-key"},
		{"oauth2-proxy", "client-secret=demo-placeholder", "cookie-secret=0123456789abcdef0123456789abcdef"},
	} {
		args := []string{"create", "secret", "generic", s[0]}
		for _, kv := range s[1:] {
			args = append(args, "--from-literal="+kv)
		}
		if err := quiet(kubectl(args...)).Run(); err != nil {
			return fmt.Errorf("creating Secret %s: %w", s[0], err)
		}
	}

	step("Applying config/samples")
	if err := kubectl("apply", "--server-side", "-k", filepath.Join(root, "config", "samples")).Run(); err != nil {
		return fmt.Errorf("applying the samples: %w", err)
	}

	step("Waiting for the providers and the allowlist to become Ready")
	start := time.Now()
	if err := kubectl("wait", "--for=condition=Ready", "--timeout="+timeout.String(),
		"modelprovider/anthropic", "modelprovider/litellm-bedrock", "userallowlist/family").Run(); err != nil {
		_ = kubectl("get", "modelprovider,userallowlist", "-o", "yaml").Run()
		return fmt.Errorf("the samples did not become Ready (manager log: %s): %w", logFile.Name(), err)
	}
	if err := quiet(kubectl("wait", "--for=create", "--timeout="+timeout.String(), "deployment/family-gateway")).Run(); err != nil {
		return fmt.Errorf("the operator made no gateway Deployment (manager log: %s): %w", logFile.Name(), err)
	}

	// The ChatGateway is Ready only once its Deployment has rolled out, and
	// nothing runs pods here: play the kubelet (run the gateway on what the
	// operator made) and the Deployment controller (report the rollout).
	step("Starting the gateway as the pod would run it, with the provider simulator behind it")
	procLog, err := os.Create(filepath.Join(workDir, "processes.log"))
	if err != nil {
		return err
	}
	defer procLog.Close()
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	addr, metricsAddr, token, err := runGateway(ctx, cfg, root, workDir, procLog, &stops)
	if err != nil {
		return err
	}
	if err := markRolledOut(ctx, cfg, "default", "family-gateway"); err != nil {
		return fmt.Errorf("reporting the gateway Deployment rolled out: %w", err)
	}
	step("Waiting for the ChatGateway to become Ready: its Deployment has rolled out")
	if err := kubectl("wait", "--for=condition=Ready", "--timeout="+timeout.String(), "chatgateway/family").Run(); err != nil {
		_ = kubectl("get", "chatgateway/family", "-o", "yaml").Run()
		return fmt.Errorf("the ChatGateway did not become Ready (manager log: %s): %w", logFile.Name(), err)
	}
	fmt.Printf("Ready after %s\n", time.Since(start).Round(time.Millisecond))

	step("The resources")
	_ = kubectl("get", "chatgateway,modelprovider,userallowlist", "-o", "wide").Run()
	step("Conditions of chatgateway/family")
	_ = kubectl("get", "chatgateway/family", "-o",
		`jsonpath={range .status.conditions[*]}{.type}{"\t"}{.status}{"\t"}{.reason}{"\t"}{.message}{"\n"}{end}`).Run()

	step("What the operator made (kubectl get ... -l app.kubernetes.io/managed-by=chatgateway-operator)")
	_ = kubectl("get", "secret,configmap,persistentvolumeclaim,deployment,service,networkpolicy,servicemonitor,prometheusrule",
		"-l", "app.kubernetes.io/managed-by=chatgateway-operator").Run()
	step("gateway.yaml, as the gateway will read it (no secret in it: keys are mounted files)")
	_ = kubectl("get", "configmap/family-gateway-config", "-o", `jsonpath={.data.gateway\.yaml}`).Run()

	reply, err := chatOnce(addr, token)
	if err != nil {
		return fmt.Errorf("a chat request through the gateway failed: %w: %s", err, reply)
	}
	fmt.Printf("POST %s/v1/chat/completions as alice@example.com answered:\n%s\n", addr, reply)
	fmt.Printf("\nTry it yourself (streaming):\n  curl -N %s/v1/chat/completions -H 'Authorization: Bearer %s' \\\n"+
		"    -H 'X-Forwarded-Email: alice@example.com' -H 'Content-Type: application/json' \\\n"+
		"    -d '{\"model\":\"sonnet\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'\n", addr, token)
	fmt.Printf("  curl -s %s/metrics | grep chatgateway_spend_usd_total   # metrics have a port of their own\n", metricsAddr)

	step("Putting OAuth2 Proxy in front of it, as the pod's sidecar does, with a mock sign-in")
	page, err := runFrontDoor(ctx, cfg, root, workDir, addr, filepath.Join(workDir, "mounts", "token", "token"), procLog, &stops)
	if err != nil {
		return err
	}
	fmt.Printf("The chat page: open %s in a browser on this machine.\n"+
		"A mock identity provider signs you in as %s; the page, its API calls and the spend it shows go\n"+
		"through OAuth2 Proxy, which adds the gateway token and your email to every request.\n", page, demoUser)

	if exitWhenReady {
		return nil
	}
	fmt.Printf("\nThe control plane keeps running. Try:\n  %s --kubeconfig %s get chatgateway,modelprovider,userallowlist\n"+
		"Manager log: %s; gateway and simulator log: bin/demo/processes.log\nPress Ctrl-C to stop everything.\n", filepath.Join(assets, "kubectl"), kubeconfigPath, logFile.Name())
	<-ctx.Done()
	return nil
}

func step(msg string) { fmt.Printf("\n==> %s\n", msg) }

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

func quiet(cmd *exec.Cmd) *exec.Cmd {
	cmd.Stdout = nil
	return cmd
}
