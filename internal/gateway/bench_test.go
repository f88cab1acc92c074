package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// Benchmarks of the hot path, in process: a client, the gateway and the
// simulator share the CPU, so compare gateway/* with direct/* rather than
// reading either alone. test/e2e's load harness measures the gateway as a
// process of its own.

var benchBodies = map[string]string{
	"anthropic": `{"model":"%s","max_tokens":256,"messages":[{"role":"user","content":"Tell me a short story about a gateway."}]%s}`,
	"openai":    `{"model":"%s","messages":[{"role":"user","content":"Tell me a short story about a gateway."}]%s}`,
}

type benchTarget struct {
	name   string
	url    string
	header http.Header
	body   []byte
}

func benchTargets(e *env, stream bool) []benchTarget {
	streamField := ""
	if stream {
		streamField = `,"stream":true`
	}
	body := func(front, model string) []byte {
		return []byte(fmt.Sprintf(benchBodies[front], model, streamField))
	}
	gw := authHeader(alice)
	anthDirect := http.Header{"X-Api-Key": {anthKey}, "Anthropic-Version": {"2023-06-01"}, "Content-Type": {"application/json"}}
	oaiDirect := http.Header{"Authorization": {"Bearer " + oaiKey}, "Content-Type": {"application/json"}}
	return []benchTarget{
		{"direct/anthropic", e.anthURL + "/v1/messages", anthDirect, body("anthropic", sonnetID)},
		{"gateway/anthropic_anthropic", e.url + "/v1/messages", gw, body("anthropic", "sonnet")},
		{"gateway/openai_anthropic", e.url + "/v1/chat/completions", gw, body("openai", "sonnet")},
		{"direct/openai", e.oaiURL + "/v1/chat/completions", oaiDirect, body("openai", gptID)},
		{"gateway/openai_openai", e.url + "/v1/chat/completions", gw, body("openai", "gpt")},
		{"gateway/anthropic_openai", e.url + "/v1/messages", gw, body("anthropic", "gpt")},
	}
}

// benchEnv logs as the binary does (JSON, one line per request), to a sink.
func benchEnv(b *testing.B) *env {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	return newEnvWith(b, providersim.Options{ReplyWords: 64, Chunks: 32}, log)
}

func runBench(b *testing.B, stream bool) {
	e := benchEnv(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, tg := range benchTargets(e, stream) {
		b.Run(tg.name, func(b *testing.B) {
			b.ReportAllocs()
			events := 0
			for b.Loop() {
				req, _ := http.NewRequest("POST", tg.url, bytes.NewReader(tg.body))
				req.Header = tg.header
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				if resp.StatusCode != 200 {
					msg, _ := io.ReadAll(resp.Body)
					b.Fatalf("%d %s", resp.StatusCode, msg)
				}
				if stream {
					events = countEvents(resp.Body)
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
				}
				resp.Body.Close()
			}
			if stream {
				b.ReportMetric(float64(events), "events/op")
			}
		})
	}
}

func countEvents(r io.Reader) int {
	n := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("data:")) {
			n++
		}
	}
	return n
}

func BenchmarkNonStream(b *testing.B) { runBench(b, false) }
func BenchmarkStream(b *testing.B)    { runBench(b, true) }
