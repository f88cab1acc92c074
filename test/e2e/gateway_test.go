// Package e2e holds tests that run the binaries as real processes.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

const (
	token = "e2e-gateway-token"
	email = "alice@example.com"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildGateway compiles cmd/gateway once per test binary run, or returns
// $E2E_GATEWAY, a gateway binary built elsewhere (an older commit's, to
// see a test fail there).
func buildGateway(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("E2E_GATEWAY"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gateway-e2e")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "gateway"), "github.com/chatgateway/chatgateway-operator/cmd/gateway").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building cmd/gateway: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "gateway")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// writeConfig renders a config with one provider of each type.
func writeConfig(t *testing.T, dir, anthURL, oaiURL string, mutate func(*gatewayconfig.Config)) string {
	t.Helper()
	files := map[string]string{"token": token, "anthropic-key": "sk-ant", "openai-key": "sk-oai"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	price := gatewayconfig.Pricing{InputPerMTok: "3", OutputPerMTok: "15"}
	timeouts := gatewayconfig.Timeouts{Connect: gatewayconfig.D(time.Second), FirstByte: gatewayconfig.D(5 * time.Second)}
	c := &gatewayconfig.Config{
		APIVersion: gatewayconfig.APIVersion, Kind: gatewayconfig.Kind,
		Gateway:       gatewayconfig.GatewayRef{Namespace: "e2e", Name: "gw"},
		Listen:        "127.0.0.1:0",
		MetricsListen: "127.0.0.1:0",
		DefaultModel:  "sonnet",
		Providers: []gatewayconfig.Provider{
			{Name: "anthropic", Type: gatewayconfig.ProviderAnthropic, BaseURL: anthURL, APIKeyFile: filepath.Join(dir, "anthropic-key"), Timeouts: timeouts,
				Models: []gatewayconfig.Model{{Name: "sonnet", ID: "claude-sonnet-4-5-20250929", Pricing: price}}},
			{Name: "litellm", Type: gatewayconfig.ProviderOpenAICompatible, BaseURL: oaiURL, APIKeyFile: filepath.Join(dir, "openai-key"), Timeouts: timeouts,
				Models: []gatewayconfig.Model{{Name: "nova", ID: "nova-micro", Pricing: price}}},
		},
		Failover: gatewayconfig.Failover{RetryOn: []string{"ServerError"}},
		Auth:     gatewayconfig.Auth{TokenFile: filepath.Join(dir, "token")},
		Users:    []gatewayconfig.User{{Email: email, Role: gatewayconfig.RoleUser}},
		Sessions: gatewayconfig.Sessions{Store: gatewayconfig.Store{Type: gatewayconfig.StoreEmbedded, Path: filepath.Join(dir, "db")}},
	}
	if mutate != nil {
		mutate(c)
	}
	b, err := gatewayconfig.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// process is a running gateway; its address comes from its "Serving" log line.
type process struct {
	cmd  *exec.Cmd
	addr string
	// metricsAddr is the metrics listener's.
	metricsAddr string
	logs        chan string
	exited      chan error
}

func start(t *testing.T, bin, config string) *process {
	t.Helper()
	cmd := exec.Command(bin, "--config", config, "--shutdown-timeout", "10s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: make(chan string, 1024), exited: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "Serving metrics" {
				p.metricsAddr = l.Addr // logged before "Serving", so set before addr is sent
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "Serving" {
				addr <- l.Addr
			}
			select {
			case p.logs <- line:
			default:
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case p.addr = <-addr:
	case err := <-p.exited:
		t.Fatalf("gateway exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("gateway did not start")
	}
	return p
}

func TestGatewayProcess(t *testing.T) {
	bin := buildGateway(t)
	_, anthURL := providersim.Start(t, providersim.Options{APIKey: "sk-ant"})
	// A slow stream (8 events, 40 ms apart) to shut down in the middle of.
	_, oaiURL := providersim.Start(t, providersim.Options{APIKey: "sk-oai", Chunks: 6, EventDelay: 40 * time.Millisecond})
	p := start(t, bin, writeConfig(t, t.TempDir(), anthURL, oaiURL, nil))
	base := "http://" + p.addr

	resp, err := http.Get(base + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()

	ctx := context.Background()
	oc := openai.NewClient(ooption.WithBaseURL(base+"/v1/"), ooption.WithAPIKey(token), ooption.WithHeader("X-Forwarded-Email", email), ooption.WithMaxRetries(0))
	ac := anthropic.NewClient(aoption.WithBaseURL(base+"/"), aoption.WithAPIKey(token), aoption.WithHeader("X-Forwarded-Email", email), aoption.WithMaxRetries(0))

	cc, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "sonnet", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	if err != nil || !strings.HasPrefix(cc.Choices[0].Message.Content, "Simulated reply from claude-sonnet") {
		t.Fatalf("OpenAI SDK → Anthropic provider: %v %+v", err, cc)
	}

	// Start a slow stream, then SIGTERM: the stream must finish, and the
	// process exit cleanly.
	stream := ac.Messages.NewStreaming(ctx, anthropic.MessageNewParams{
		Model: "nova", MaxTokens: 100, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	if !stream.Next() {
		t.Fatalf("no first event: %v", stream.Err())
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	acc := anthropic.Message{}
	for stream.Next() {
		_ = acc.Accumulate(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("the in-flight stream was cut by the shutdown: %v", err)
	}
	if acc.StopReason != anthropic.StopReasonEndTurn {
		t.Errorf("stream ended with %q", acc.StopReason)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("gateway exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not exit after SIGTERM")
	}
	// Logs are JSON and never carry the email or the token.
	close(p.logs)
	for line := range p.logs {
		if strings.Contains(line, email) || strings.Contains(line, token) {
			t.Errorf("log line leaks identity or token: %s", line)
		}
	}
}

func TestGatewayProcessRefusesBadConfig(t *testing.T) {
	bin := buildGateway(t)
	config := writeConfig(t, t.TempDir(), "http://127.0.0.1:1", "http://127.0.0.1:1", func(c *gatewayconfig.Config) { c.DefaultModel = "missing" })
	cmd := exec.Command(bin, "--config", config)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("started with an invalid config")
	}
	if !strings.Contains(string(out), `defaultModel: "missing" is not a model of any provider`) {
		t.Errorf("output does not name the field: %s", out)
	}
}
