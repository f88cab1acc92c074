package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// The request log is buffered (cmd/gateway/logbuf.go): each request's line
// reaches stderr by the flush clock with nothing else happening, and the
// lines of requests answered just before a SIGTERM are all there after
// the exit. Each line carries every field, in JSON.
func TestGatewayProcessRequestLog(t *testing.T) {
	bin := buildGateway(t)
	_, anthURL := providersim.Start(t, providersim.Options{APIKey: "sk-ant"})
	_, oaiURL := providersim.Start(t, providersim.Options{APIKey: "sk-oai"})
	p := start(t, bin, writeConfig(t, t.TempDir(), anthURL, oaiURL, nil))
	ask := func() (id string, at time.Time) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+p.addr+"/v1/chat/completions", strings.NewReader(`{"model":"sonnet","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Forwarded-Email", email)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Request-Id") == "" {
			t.Fatalf("status %d, request id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
		}
		return resp.Header.Get("X-Request-Id"), time.Now()
	}
	served := map[string]map[string]any{}
	take := func(line string) {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil {
			t.Errorf("a log line is not JSON: %s", line)
			return
		}
		if l["msg"] == "Served request" {
			served[l["request_id"].(string)] = l
		}
	}

	// Answered, and then nothing: the lines come by the clock.
	sent := map[string]time.Time{}
	for range 5 {
		id, at := ask()
		sent[id] = at
	}
	var slowest time.Duration
	deadline := time.After(10 * time.Second)
	for len(sent) > 0 {
		select {
		case line := <-p.logs:
			take(line)
			for id, at := range sent {
				if served[id] != nil {
					slowest = max(slowest, time.Since(at))
					delete(sent, id)
				}
			}
		case <-deadline:
			t.Fatalf("the lines of %d answered requests never reached stderr while the gateway ran", len(sent))
		}
	}
	t.Logf("the last request's line reached stderr %s after its answer (the flush interval is 100 ms)", slowest)

	// Answered just before a SIGTERM: no line is lost.
	var last []string
	for range 5 {
		id, _ := ask()
		last = append(last, id)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("gateway exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("gateway did not exit after SIGTERM")
	}
	close(p.logs)
	for line := range p.logs {
		take(line)
	}
	for _, id := range last {
		if served[id] == nil {
			t.Errorf("the line of request %s, answered before the SIGTERM, was lost", id)
		}
	}

	// Every line has its fields, with their JSON types.
	for id, l := range served {
		for _, k := range []string{"time", "level", "msg", "request_id", "user", "api", "model", "provider", "cost_usd"} {
			if _, ok := l[k].(string); !ok {
				t.Errorf("%s: %s is %v", id, k, l[k])
			}
		}
		for _, k := range []string{"status", "attempts", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "duration_ms", "ttft_ms"} {
			if _, ok := l[k].(float64); !ok {
				t.Errorf("%s: %s is %v", id, k, l[k])
			}
		}
		if l["status"] != 200.0 || l["level"] != "INFO" || l["api"] != "openai" {
			t.Errorf("%s: %v", id, l)
		}
	}
}
