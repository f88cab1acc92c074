package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// runGateway plays the part of the kubelet: it takes the config and token
// the operator made for chatgateway/family, lays them out as the pod's
// mounts would, points the providers at the simulator (or Anthropic's real
// API when ANTHROPIC_API_KEY is set), and starts the gateway binary. It
// returns the gateway's address, its metrics address and the token to
// call it with.
func runGateway(ctx context.Context, cfg *rest.Config, root, workDir string, logFile io.Writer, stop *[]func()) (addr, metricsAddr, token string, err error) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return "", "", "", err
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "family-gateway-config"}, cm); err != nil {
		return "", "", "", fmt.Errorf("reading the gateway config the operator rendered: %w", err)
	}
	tokenSecret := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "family-gateway-token"}, tokenSecret); err != nil {
		return "", "", "", fmt.Errorf("reading the gateway token: %w", err)
	}
	keys := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "family-gateway-keys"}, keys); err != nil {
		return "", "", "", fmt.Errorf("reading the master key: %w", err)
	}
	conf, err := gc.Parse([]byte(cm.Data[gc.ConfigFileName]))
	if err != nil {
		return "", "", "", fmt.Errorf("the rendered config does not load: %w", err)
	}

	bins := filepath.Join(root, "bin")
	for name, pkg := range map[string]string{"gateway": "./cmd/gateway", "providersim": "./test/providersim/cmd/providersim"} {
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(bins, name), pkg).CombinedOutput(); err != nil {
			return "", "", "", fmt.Errorf("building %s: %w\n%s", name, err, out)
		}
	}

	simURL, err := startProcess(ctx, filepath.Join(bins, "providersim"), logFile, stop, "listening on ",
		"--listen", "127.0.0.1:0", "--api-key", "demo-placeholder-key", "--event-delay", "40ms")
	if err != nil {
		return "", "", "", fmt.Errorf("starting the provider simulator: %w", err)
	}

	// The pod's mounts, under bin/demo/mounts.
	mounts := filepath.Join(workDir, "mounts")
	write := func(rel string, data []byte) string {
		p := filepath.Join(mounts, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o700))
		must(os.WriteFile(p, data, 0o600))
		return p
	}
	realKey := strings.TrimSpace(os.Getenv("ANTHROPIC_API_KEY"))
	for i := range conf.Providers {
		p := &conf.Providers[i]
		key := "demo-placeholder-key"
		if p.Type == gc.ProviderAnthropic && realKey != "" {
			key = realKey // the real API at the rendered base URL
		} else {
			p.BaseURL = simURL
		}
		if p.APIKeyFile != "" {
			p.APIKeyFile = write(filepath.Join("providers", p.Name, gc.ProviderAPIKeyFileName), []byte(key))
		}
	}
	conf.Auth.TokenFile = write("token/"+gc.TokenKey, tokenSecret.Data[gc.TokenKey])
	conf.Auth.PreviousTokenFile = filepath.Join(mounts, "token", gc.PreviousTokenKey)
	conf.Auth.PreviousTokenExpiresAtFile = filepath.Join(mounts, "token", gc.PreviousExpiresAtKey)
	conf.Keys.MasterKeyFile = write("keys/"+gc.MasterKeyKey, keys.Data[gc.MasterKeyKey])
	if conf.Sessions.Store.Type == gc.StoreEmbedded {
		conf.Sessions.Store.Path = filepath.Join(workDir, "store.db")
	}
	port, err := freePort()
	if err != nil {
		return "", "", "", err
	}
	conf.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	mport, err := freePort()
	if err != nil {
		return "", "", "", err
	}
	conf.MetricsListen = fmt.Sprintf("127.0.0.1:%d", mport)
	b, err := gc.Marshal(conf)
	if err != nil {
		return "", "", "", err
	}
	configPath := write("config/"+gc.ConfigFileName, b)

	if _, err := startProcess(ctx, filepath.Join(bins, "gateway"), logFile, stop, "", "--config", configPath); err != nil {
		return "", "", "", fmt.Errorf("starting the gateway: %w", err)
	}
	addr = "http://" + conf.Listen
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, "http://" + conf.MetricsListen, string(tokenSecret.Data[gc.TokenKey]), nil
			}
		}
		if time.Now().After(deadline) {
			return "", "", "", fmt.Errorf("the gateway did not become ready; see %s", filepath.Join(workDir, "processes.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startProcess starts a binary with its output going to logFile. With a
// prefix, it waits for a stdout line starting with it and returns the rest.
func startProcess(ctx context.Context, bin string, logFile io.Writer, stop *[]func(), prefix string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stderr = logFile
	var lines *bufio.Scanner
	if prefix != "" {
		out, err := cmd.StdoutPipe()
		if err != nil {
			return "", err
		}
		lines = bufio.NewScanner(out)
	} else {
		cmd.Stdout = logFile
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	*stop = append(*stop, func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_, _ = cmd.Process.Wait()
	})
	if lines == nil {
		return "", nil
	}
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), prefix); ok {
			go func() { // keep draining, so the process never blocks on a full pipe
				for lines.Scan() {
					fmt.Fprintln(logFile, lines.Text())
				}
			}()
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("%s exited before it was ready", filepath.Base(bin))
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// chatOnce sends one chat request the way the curl line printed for the
// user does, and returns the reply body.
func chatOnce(addr, token string) (string, error) {
	body := `{"model":"sonnet","messages":[{"role":"user","content":"Hello from the demo"}]}`
	req, err := http.NewRequest(http.MethodPost, addr+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-Email", "alice@example.com")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("the gateway answered %s", resp.Status)
	}
	return string(b), err
}

// markRolledOut writes the Deployment's status as the Deployment controller
// does once every replica of its current generation is updated and
// available: here, once the gateway process it stands for answers /readyz.
func markRolledOut(ctx context.Context, cfg *rest.Config, ns, name string) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, d); err != nil {
		return err
	}
	n := int32(1)
	if d.Spec.Replicas != nil {
		n = *d.Spec.Replicas
	}
	now := metav1.Now()
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", LastUpdateTime: now, LastTransitionTime: now},
		},
	}
	return c.Status().Update(ctx, d)
}
