package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/chatgateway/chatgateway-operator/test/loopback"
)

// prometheusFeatures are the server features the gateway's spend queries
// need to match its ledger: a counter series gets a zero sample at its
// creation time (the gateway's collectors expose it in the protobuf
// format), so the request that creates a series is counted by increase().
// docs/monitoring.md tells users to turn it on.
const prometheusFeatures = "created-timestamp-zero-ingestion"

// promServer is a real Prometheus server on loopback, queried through its
// HTTP API.
type promServer struct {
	url string
	api promv1.API
}

// startPrometheus runs the server built by make test ($PROMETHEUS) with the
// given scrape configs and rule files, scraping and evaluating every
// interval, until the test ends.
func startPrometheus(t *testing.T, scrape []loopback.ScrapeConfig, rules map[string][]byte, interval time.Duration) *promServer {
	t.Helper()
	bin := os.Getenv("PROMETHEUS")
	if bin == "" {
		t.Skip("PROMETHEUS is not set: `make test` builds Prometheus and sets it")
	}
	dir := t.TempDir()
	var ruleFiles []string
	for name, b := range rules {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		ruleFiles = append(ruleFiles, p)
	}
	cfg, err := yaml.Marshal(map[string]any{
		"global":         map[string]string{"scrape_interval": interval.String(), "evaluation_interval": interval.String()},
		"rule_files":     ruleFiles,
		"scrape_configs": scrape,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--enable-feature="+prometheusFeatures, "--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if t.Failed() {
			t.Logf("prometheus.yml:\n%s\nprometheus log:\n%s", cfg, logs.String())
		}
	})
	url := "http://" + addr
	waitFor(t, url+"/-/ready")
	client, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	return &promServer{url: url, api: promv1.NewAPI(client)}
}

// query runs an instant query at ts.
func (p *promServer) query(ctx context.Context, expr string, ts time.Time) (model.Vector, error) {
	v, warnings, err := p.api.Query(ctx, expr, ts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", expr, err)
	}
	if len(warnings) > 0 {
		return nil, fmt.Errorf("%s: warnings %v", expr, warnings)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("%s: a %s, not a vector", expr, v.Type())
	}
	return vec, nil
}

// queryRange runs a range query as a Grafana time-series panel does.
func (p *promServer) queryRange(ctx context.Context, expr string, from, to time.Time, step time.Duration) (model.Matrix, error) {
	v, warnings, err := p.api.QueryRange(ctx, expr, promv1.Range{Start: from, End: to, Step: step})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", expr, err)
	}
	if len(warnings) > 0 {
		return nil, fmt.Errorf("%s: warnings %v", expr, warnings)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("%s: a %s, not a matrix", expr, v.Type())
	}
	return m, nil
}

// waitQuery polls an instant query until ok accepts its result.
func (p *promServer) waitQuery(t *testing.T, expr string, timeout time.Duration, ok func(model.Vector) bool) model.Vector {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, err := p.query(context.Background(), expr, time.Now())
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %s = %v (%v)", timeout, expr, v, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// labelsOf formats a sample's labels for logs, without the metric name.
func labelsOf(m model.Metric) string {
	var parts []string
	for k, v := range m {
		if k != model.MetricNameLabel {
			parts = append(parts, fmt.Sprintf("%s=%q", k, v))
		}
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ",") + "}"
}
