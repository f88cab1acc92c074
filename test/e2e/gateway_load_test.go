package e2e

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

var (
	loadRun = flag.Bool("gateway.load", false, "run the gateway load harness (TestGatewayLoad)")
	loadN   = flag.Int("gateway.load.n", 2000, "requests per measurement")
)

// TestGatewayLoad measures what the gateway adds over calling the simulator
// directly: latency percentiles at concurrency 1 and 16, the gateway
// process's CPU time per request, and the added time per SSE event. The
// gateway runs as its own process, so its CPU time is its alone; client and
// simulator share this process.
//
//	go test ./test/e2e -run TestGatewayLoad -gateway.load -v
func TestGatewayLoad(t *testing.T) {
	if !*loadRun {
		t.Skip("load harness: run with -gateway.load")
	}
	const chunks = 64
	_, anthURL := providersim.Start(t, providersim.Options{APIKey: "sk-ant", ReplyWords: 128, Chunks: chunks})
	_, oaiURL := providersim.Start(t, providersim.Options{APIKey: "sk-oai", ReplyWords: 128, Chunks: chunks})
	p := start(t, buildGateway(t), writeConfig(t, t.TempDir(), anthURL, oaiURL, nil))
	base := "http://" + p.addr
	go func() { // keep the log pipe drained
		for range p.logs {
		}
	}()

	gw := http.Header{"Authorization": {"Bearer " + token}, "X-Forwarded-Email": {email}, "Content-Type": {"application/json"}}
	anthDirect := http.Header{"X-Api-Key": {"sk-ant"}, "Anthropic-Version": {"2023-06-01"}, "Content-Type": {"application/json"}}
	oaiDirect := http.Header{"Authorization": {"Bearer sk-oai"}, "Content-Type": {"application/json"}}
	body := func(front, model string, stream bool) []byte {
		s := ""
		if stream {
			s = `,"stream":true`
		}
		if front == "anthropic" {
			return fmt.Appendf(nil, `{"model":%q,"max_tokens":512,"messages":[{"role":"user","content":"Tell me a story."}]%s}`, model, s)
		}
		return fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":"Tell me a story."}]%s}`, model, s)
	}
	type path struct {
		name          string
		direct, viaGW string
		dh            http.Header
		dbody, gwbody func(bool) []byte
	}
	paths := []path{
		{"anthropic→anthropic", anthURL + "/v1/messages", base + "/v1/messages", anthDirect,
			func(s bool) []byte { return body("anthropic", "claude-sonnet-4-5-20250929", s) }, func(s bool) []byte { return body("anthropic", "sonnet", s) }},
		{"openai→anthropic", anthURL + "/v1/messages", base + "/v1/chat/completions", anthDirect,
			func(s bool) []byte { return body("anthropic", "claude-sonnet-4-5-20250929", s) }, func(s bool) []byte { return body("openai", "sonnet", s) }},
		{"openai→openai", oaiURL + "/v1/chat/completions", base + "/v1/chat/completions", oaiDirect,
			func(s bool) []byte { return body("openai", "nova-micro", s) }, func(s bool) []byte { return body("openai", "nova", s) }},
		{"anthropic→openai", oaiURL + "/v1/chat/completions", base + "/v1/messages", oaiDirect,
			func(s bool) []byte { return body("openai", "nova-micro", s) }, func(s bool) []byte { return body("anthropic", "nova", s) }},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	var report strings.Builder
	fmt.Fprintf(&report, "\n%d requests per cell; latency in µs; added = gateway − direct\n", *loadN)
	fmt.Fprintf(&report, "%-20s %-7s %3s | %9s %9s | %9s %9s | %9s %9s | %8s | %7s %11s\n",
		"path", "mode", "c", "direct50", "direct99", "gw p50", "gw p99", "added50", "added99", "cpu/req", "events", "added/event")
	for _, stream := range []bool{false, true} {
		mode := "json"
		if stream {
			mode = "stream"
		}
		for _, pa := range paths {
			for _, c := range []int{1, 16} {
				direct, _ := measure(t, client, pa.direct, pa.dh, pa.dbody(stream), c, *loadN)
				cpu0 := processCPU(t, p.cmd.Process.Pid)
				viaGW, events := measure(t, client, pa.viaGW, gw, pa.gwbody(stream), c, *loadN)
				cpu := (processCPU(t, p.cmd.Process.Pid) - cpu0) / time.Duration(*loadN)
				d50, d99, g50, g99 := pct(direct, 50), pct(direct, 99), pct(viaGW, 50), pct(viaGW, 99)
				perEvent := "-"
				if stream && events > 0 {
					perEvent = fmt.Sprintf("%.1f", float64(g50-d50)/float64(events)/1e3)
				}
				fmt.Fprintf(&report, "%-20s %-7s %3d | %9s %9s | %9s %9s | %9s %9s | %8s | %7d %11s\n",
					pa.name, mode, c, us(d50), us(d99), us(g50), us(g99), us(g50-d50), us(g99-d99), us(cpu), events, perEvent)
			}
		}
	}
	t.Log(report.String())
}

// measure sends n requests from c workers and returns their latencies and
// the number of SSE data lines in the last response.
func measure(t *testing.T, client *http.Client, url string, h http.Header, body []byte, c, n int) ([]time.Duration, int) {
	t.Helper()
	lat := make([]time.Duration, n)
	var next, events int
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed error
	// Warm the connection pool first.
	for range c {
		doOne(client, url, h, body)
	}
	for range c {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				start := time.Now()
				ev, err := doOne(client, url, h, body)
				lat[i] = time.Since(start)
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
				if i == n-1 {
					events = ev
				}
			}
		})
	}
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
	slices.Sort(lat)
	return lat, events
}

func doOne(client *http.Client, url string, h http.Header, body []byte) (int, error) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header = h
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("%s: %d %s", url, resp.StatusCode, b)
	}
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("data:")) {
			n++
		}
	}
	return n, sc.Err()
}

func pct(sorted []time.Duration, p int) time.Duration {
	return sorted[(len(sorted)-1)*p/100]
}

func us(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) }

// processCPU reads a process's user+system CPU time from /proc.
func processCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Fields after the command name (which is in parentheses and may hold spaces).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck
}
