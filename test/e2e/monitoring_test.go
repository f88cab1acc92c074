package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/render"
	"github.com/chatgateway/chatgateway-operator/internal/store/pgtest"
	"github.com/chatgateway/chatgateway-operator/test/loopback"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// monitoringObjects is a household's gateway with two replicas on one
// PostgreSQL, Anthropic first and a LiteLLM proxy (Prometheus callback on)
// second, and three people: bob with a soft quota he will pass, carol with a
// hard quota one request of hers will not fit. The daily-spend alert's
// threshold is lowered to fit a test's spend. %[1]s is the quota's time
// zone, %[2]s the daily-spend threshold.
const monitoringObjects = `
apiVersion: chatgateway.dev/v1alpha1
kind: ModelProvider
metadata: {name: anthropic, namespace: family}
spec:
  type: Anthropic
  apiKeySecretRef: {name: anthropic-api-key, key: api-key}
  models:
  - name: sonnet
    id: claude-sonnet-4-5-20250929
    pricing: {inputPerMTok: "3.00", outputPerMTok: "15.00"}
---
apiVersion: chatgateway.dev/v1alpha1
kind: ModelProvider
metadata: {name: litellm, namespace: family}
spec:
  type: OpenAICompatible
  baseURL: http://litellm.family.svc:4000
  models:
  - name: nova
    id: nova-micro
    pricing: {inputPerMTok: "0.035", outputPerMTok: "0.14"}
  - name: sonnet-bedrock
    id: claude-sonnet-bedrock
    pricing: {inputPerMTok: "3.00", outputPerMTok: "15.00"}
  liteLLM:
    settings: {successCallback: [prometheus]}
    models:
    - name: nova-micro
      params: {model: bedrock/us.amazon.nova-micro-v1:0, aws_region_name: us-east-1}
    - name: claude-sonnet-bedrock
      params: {model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0, aws_region_name: us-east-1}
---
apiVersion: chatgateway.dev/v1alpha1
kind: UserAllowlist
metadata: {name: family, namespace: family}
spec:
  users:
  - {email: alice@example.com, displayName: Alice, role: Admin}
  - {email: bob@example.com, displayName: Bob, role: User, quota: {dailySoftUSD: "0.0003", dailyHardUSD: "1"}}
  - {email: carol@example.com, displayName: Carol, role: User, quota: {dailySoftUSD: "0.005", dailyHardUSD: "0.01"}}
---
apiVersion: chatgateway.dev/v1alpha1
kind: ChatGateway
metadata: {name: family, namespace: family}
spec:
  replicas: 2
  providers: [{name: anthropic}, {name: litellm}]
  defaultModel: sonnet
  fallbacks: [{model: sonnet, to: [sonnet-bedrock]}]
  failover: {retryOn: [ServerError, Timeout, ConnectionError]}
  sessions:
    store: {type: Postgres, dsnSecretRef: {name: family-db, key: dsn}}
  auth:
    allowlistRef: {name: family}
  quotas: {dailySoftUSD: "1", dailyHardUSD: "5", timeZone: %[1]s}
  monitoring:
    serviceMonitor: {enabled: true, interval: 30s}
    alerts: {enabled: true, dailySpendUSD: "%[2]s"}
    grafanaDashboard: {enabled: true, seatPriceUSD: "20"}
`

// The stand-in LiteLLM's model list: the model label its callback uses
// (params.model without "bedrock/"), and its prices per token. Its Sonnet
// price is 10% above the ModelProvider's, so the drift alert must fire for
// that model and not for nova-micro, where the two agree.
var liteLLMModels = map[string]liteLLMModel{
	"nova-micro":            {label: "us.amazon.nova-micro-v1:0", input: 0.035e-6, output: 0.14e-6},
	"claude-sonnet-bedrock": {label: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", input: 3.3e-6, output: 16.5e-6},
}

const (
	alice, bob, carol = "alice@example.com", "bob@example.com", "carol@example.com"
	// dailySpendThreshold is between alice's spend (long prompts and one
	// more request) and the others'; the test checks that it is.
	dailySpendThreshold = "0.001"
	// testInterval is how often the test's Prometheus scrapes and
	// evaluates rules; everything else comes from the rendered objects.
	testInterval = 2 * time.Second
)

// sent is one request the test made and what it must show in the metrics.
type sent struct {
	user, model, provider string // the alias and provider that served ("" if none)
	stream                bool
	status                int
}

// TestMonitoringOnPrometheus runs two gateway replicas on one PostgreSQL
// with the provider simulator and a LiteLLM stand-in behind them, has three
// people send traffic, and has a real Prometheus scrape the replicas with
// the scrape config the rendered ServiceMonitor makes, and evaluate the
// rendered PrometheusRule. Every query of every panel of the rendered
// dashboard is then asked of that Prometheus, with the dashboard's
// variables substituted as Grafana would: each returns series, the spend
// per person equals the ledger's to the micro-dollar, and the requests,
// failovers, latency and quota panels show what was sent. A copy of the
// dashboard with a label renamed in one query must fail those checks.
// Then the alerts: the soft-quota alert fires for bob alone, the
// daily-spend alert for whoever spent more than the lowered threshold, the
// LiteLLM drift alert for the model LiteLLM prices differently, and the
// failover alert is pending for anthropic. The alerts' "for" durations are
// the rendered ones, so the test waits about five minutes for them.
func TestMonitoringOnPrometheus(t *testing.T) {
	if os.Getenv("PROMETHEUS") == "" {
		t.Skip("PROMETHEUS is not set: `make test` builds Prometheus and sets it")
	}
	if os.Getenv(pgtest.SkipEnv) == "1" {
		t.Skipf("%s=1", pgtest.SkipEnv)
	}
	ctx := context.Background()
	in := monitoringInputs(t, quietTimeZone(time.Now()))

	pg, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	_, dsn, err := pg.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sim, simURL := providersim.Start(t, providersim.Options{ReplyWords: 12, Chunks: 4})
	liteURL, liteAddr := startLiteLLM(t, simURL, liteLLMModels)

	// Two replicas on the rendered gateway.yaml; only the files a pod
	// mounts and the addresses the cluster resolves are rewritten.
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	conf, err := render.GatewayConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	masterKey := make([]byte, 32)
	_, _ = rand.Read(masterKey)
	conf.Providers[0].BaseURL = simURL
	conf.Providers[0].APIKeyFile = write("anthropic-key", []byte("sk-ant"))
	conf.Providers[1].BaseURL = liteURL
	conf.Auth.TokenFile = write("token", []byte(token))
	conf.Auth.PreviousTokenFile, conf.Auth.PreviousTokenExpiresAtFile = "", ""
	conf.Keys.MasterKeyFile = write("master-key", masterKey)
	conf.Sessions.Store.DSNFile = write("dsn", []byte(dsn))
	conf.Listen, conf.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	b, err := gc.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	bin, config := buildGateway(t), write("gateway.yaml", b)
	replicas := []*process{start(t, bin, config), start(t, bin, config)}
	for _, p := range replicas {
		go func() { // keep the log pipe drained
			for range p.logs {
			}
		}()
	}

	// The traffic, in two rounds of the same requests. The first runs
	// before Prometheus starts, so that every series the gateways will
	// export exists before its first scrape: a counter created while a
	// scrape is under way loses its first increment (its creation time is
	// after the scrape's timestamp, so Prometheus adds no zero sample before
	// it), which would make the spend panels disagree with the ledger now
	// and then. The second round runs while Prometheus scrapes.
	trafficStart := time.Now()
	traffic := round(t, sim, replicas)
	// Prometheus, scraping what the ServiceMonitor selects and evaluating
	// the PrometheusRule; LiteLLM is scraped as a ServiceMonitor on its
	// Service (litellm in namespace family, the provider's baseURL) would.
	sm, err := render.ServiceMonitor(in)
	if err != nil {
		t.Fatal(err)
	}
	sm.Spec.Endpoints[0].Interval = "" // the global testInterval
	svc, err := render.Service(in)
	if err != nil {
		t.Fatal(err)
	}
	dep, err := render.Deployment(in)
	if err != nil {
		t.Fatal(err)
	}
	var pods []loopback.Pod
	for i, p := range replicas {
		pods = append(pods, loopback.Pod{Name: fmt.Sprintf("%s-6d5f7c8b9-%c", dep.Name, 'a'+i), Ports: map[string]string{render.GatewayPortName: p.addr, render.MetricsPortName: p.metricsAddr}})
	}
	scrape, err := loopback.ServiceMonitorScrapeConfigs(sm, svc, dep, pods)
	if err != nil {
		t.Fatal(err)
	}
	scrape = append(scrape, loopback.ScrapeConfig{JobName: "serviceMonitor/family/litellm/0", MetricsPath: "/metrics",
		StaticConfigs: []loopback.StaticConfig{{Targets: []string{liteAddr}, Labels: map[string]string{
			"namespace": "family", "service": "litellm", "pod": "litellm-7b9c5d6f4-a", "container": "litellm", "job": "litellm", "endpoint": "http"}}}})
	rule, err := render.PrometheusRule(in)
	if err != nil {
		t.Fatal(err)
	}
	ruleFile, err := loopback.RuleFile(rule)
	if err != nil {
		t.Fatal(err)
	}
	prom := startPrometheus(t, scrape, map[string][]byte{"family-gateway.yaml": ruleFile}, testInterval)
	prom.waitQuery(t, `count(up == 1)`, 30*time.Second, func(v model.Vector) bool { return len(v) == 1 && v[0].Value == 3 })
	traffic = append(traffic, round(t, sim, replicas)...)

	// The ledger, through the admin usage API.
	var usage struct {
		Users []struct {
			User            string
			Requests        int64
			CostPicodollars int64
		}
	}
	// Every request a provider answered is a row, once the replicas'
	// ledger writers have committed their last batches (milliseconds).
	answered := int64(0)
	for _, s := range traffic {
		if s.provider != "" {
			answered++
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		get(t, "http://"+replicas[0].addr+"/api/admin/usage", &usage) // as alice, an admin
		n := int64(0)
		for _, u := range usage.Users {
			n += u.Requests
		}
		if n >= answered || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ledger := map[string]float64{}
	for _, u := range usage.Users {
		ledger[u.User] = float64(u.CostPicodollars) / 1e12
		t.Logf("ledger: %s %d requests, $%.12f", u.User, u.Requests, ledger[u.User])
	}
	var threshold float64
	fmt.Sscan(dailySpendThreshold, &threshold)
	if !(ledger[alice] > threshold && ledger[bob] < threshold && ledger[carol] < threshold) {
		t.Fatalf("the daily-spend threshold $%v does not split the spend %v: adjust the traffic", threshold, ledger)
	}
	limits := quotaLimits(in)
	if !(ledger[bob] > limits[bob]["soft"] && ledger[carol] < limits[carol]["soft"] && ledger[alice] < limits[alice]["soft"]) {
		t.Fatalf("bob must pass his soft quota and the others stay under theirs: spend %v, limits %v", ledger, limits)
	}

	// Wait until Prometheus has every request from both replicas and
	// LiteLLM's spend, and has evaluated the rules since.
	prom.waitQuery(t, `sum(chatgateway_requests_total{namespace="family"})`, 30*time.Second,
		func(v model.Vector) bool { return len(v) == 1 && int(v[0].Value) == len(traffic) })
	viaLiteLLM := map[string]bool{} // LiteLLM has a series per end user and model
	for _, s := range traffic {
		if s.provider == "litellm" {
			viaLiteLLM[s.user+" "+s.model] = true
		}
	}
	prom.waitQuery(t, `count(litellm_spend_metric_total)`, 30*time.Second, func(v model.Vector) bool { return len(v) == 1 && int(v[0].Value) == len(viaLiteLLM) })
	scraped := time.Now()
	prom.waitQuery(t, fmt.Sprintf("min(timestamp(%s))", render.RecordUserDailySpend), 30*time.Second, func(v model.Vector) bool {
		return len(v) == 1 && float64(v[0].Value) > float64(scraped.UnixMilli())/1e3
	})
	at := time.Now()

	dashboard, err := render.GrafanaDashboardJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	check := dashboardCheck{prom: prom, from: trafficStart.Add(-5 * time.Second), at: at, traffic: traffic, ledger: ledger, limits: limits}
	values, errs := check.run(ctx, dashboard)
	for _, v := range values {
		t.Logf("panel %q: %s", v.panel, v.value)
	}
	for _, err := range errs {
		t.Error(err)
	}

	// A broken copy of the dashboard must not pass: for each panel in turn,
	// a label in its query is renamed to one the gateway does not export.
	for _, title := range panelTitles(t, dashboard) {
		broken, from, to := breakPanel(t, dashboard, title)
		_, errs := check.run(ctx, broken)
		caught := slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), fmt.Sprintf("panel %q", title)) })
		if !caught {
			t.Errorf("panel %q with %s renamed to %s passed the checks", title, from, to)
		} else {
			t.Logf("panel %q with %s renamed to %s fails the checks, as it should (%d errors)", title, from, to, len(errs))
		}
	}

	checkAlerts(t, prom, ledger, threshold)
}

// round is one round of the test's traffic: for each person both fronts,
// streamed and not, on both providers and both replicas; then one request
// of alice's that fails over from Anthropic to LiteLLM and one of carol's
// that her hard quota refuses. Every request must get the status it
// should.
func round(t *testing.T, sim *providersim.Server, replicas []*process) []sent {
	t.Helper()
	var traffic []sent
	for _, who := range []string{alice, bob, carol} {
		prompt := "How warm is it today"
		if who == alice {
			prompt = strings.Repeat("Tell me more about the weather. ", 20)
		}
		for i, r := range []struct {
			front, model, provider string
			stream                 bool
		}{
			{"openai", "sonnet", "anthropic", false},
			{"openai", "nova", "litellm", true},
			{"anthropic", "sonnet", "anthropic", true},
			{"anthropic", "nova", "litellm", false},
		} {
			status := send(t, replicas[i%2].addr, who, r.front, r.model, prompt, r.stream, 16)
			traffic = append(traffic, sent{who, r.model, r.provider, r.stream, status})
		}
	}
	sim.Enqueue(providersim.Fault{Status: 500, Provider: providersim.ProviderAnthropic})
	traffic = append(traffic, sent{alice, "sonnet-bedrock", "litellm", false, send(t, replicas[1].addr, alice, "openai", "sonnet", "Is it raining", false, 16)})
	traffic = append(traffic, sent{carol, "sonnet", "", false, send(t, replicas[0].addr, carol, "openai", "sonnet", "Write me a long story", false, 4000)})
	for i, s := range traffic {
		want := http.StatusOK
		if s.provider == "" {
			want = http.StatusTooManyRequests
		}
		if s.status != want {
			t.Fatalf("request %d %+v: status %d, want %d", i, s, s.status, want)
		}
	}
	return traffic
}

// panelTitles lists a dashboard's panels.
func panelTitles(t *testing.T, dashboard []byte) []string {
	t.Helper()
	var d struct{ Panels []struct{ Title string } }
	if err := json.Unmarshal(dashboard, &d); err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, p := range d.Panels {
		titles = append(titles, p.Title)
	}
	return titles
}

// breakPanel returns a copy of the dashboard in which the first query of
// the titled panel names a label the gateway does not export, in place of
// the first of its labels it uses.
func breakPanel(t *testing.T, dashboard []byte, title string) (broken []byte, from, to string) {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(dashboard, &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d["panels"].([]any) {
		panel := p.(map[string]any)
		if panel["title"] != title {
			continue
		}
		target := panel["targets"].([]any)[0].(map[string]any)
		expr := target["expr"].(string)
		for _, label := range []string{"end_user", "from", "limit", "model", "namespace"} {
			re := regexp.MustCompile(`\b` + label + `\b`)
			if loc := re.FindStringIndex(expr); loc != nil {
				target["expr"] = expr[:loc[0]] + label + "_renamed" + expr[loc[1]:]
				b, err := json.Marshal(d)
				if err != nil {
					t.Fatal(err)
				}
				return b, label, label + "_renamed"
			}
		}
		t.Fatalf("panel %q: no label to rename in %s", title, expr)
	}
	t.Fatalf("no panel %q", title)
	return nil, "", ""
}

// monitoringInputs reads monitoringObjects as the controller hands them to
// the renderers.
func monitoringInputs(t *testing.T, timeZone string) render.Inputs {
	t.Helper()
	in := render.Inputs{Image: "e2e", TokenGeneration: "1"}
	for i, doc := range strings.Split(fmt.Sprintf(monitoringObjects, timeZone, dailySpendThreshold), "\n---\n") {
		var tm struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var obj any
		switch tm.Kind {
		case "ChatGateway":
			in.Gateway = &v1alpha1.ChatGateway{}
			obj = in.Gateway
		case "ModelProvider":
			in.Providers = append(in.Providers, v1alpha1.ModelProvider{})
			obj = &in.Providers[len(in.Providers)-1]
		case "UserAllowlist":
			in.Allowlist = &v1alpha1.UserAllowlist{}
			obj = in.Allowlist
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
	}
	return in
}

// quietTimeZone is a time zone where the next twenty minutes stay within
// one day, so "today" does not change while the test runs.
func quietTimeZone(now time.Time) string {
	for _, tz := range []string{"UTC", "Asia/Tokyo", "America/New_York"} {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			continue
		}
		if a, b := now.In(loc), now.Add(20*time.Minute).In(loc); a.YearDay() == b.YearDay() {
			return tz
		}
	}
	return "UTC"
}

// quotaLimits are each person's daily limits in USD, by "soft" and "hard":
// the allowlist's, else the gateway's defaults.
func quotaLimits(in render.Inputs) map[string]map[string]float64 {
	parse := func(u *v1alpha1.USD) float64 {
		var f float64
		fmt.Sscan(string(*u), &f)
		return f
	}
	q := in.Gateway.Spec.Quotas
	out := map[string]map[string]float64{}
	for _, u := range in.Allowlist.Spec.Users {
		soft, hard := q.DailySoftUSD, q.DailyHardUSD
		if u.Quota != nil && u.Quota.DailySoftUSD != nil {
			soft = u.Quota.DailySoftUSD
		}
		if u.Quota != nil && u.Quota.DailyHardUSD != nil {
			hard = u.Quota.DailyHardUSD
		}
		out[u.Email] = map[string]float64{"soft": parse(soft), "hard": parse(hard)}
	}
	return out
}

// send makes one model request as who through a front and returns its
// status, having read the whole answer (every event of a stream).
func send(t *testing.T, addr, who, front, modelName, prompt string, stream bool, maxTokens int) int {
	t.Helper()
	path, body := "/v1/chat/completions", map[string]any{
		"model": modelName, "stream": stream, "max_tokens": maxTokens,
		"messages": []map[string]string{{"role": "user", "content": prompt}},
	}
	if front == "anthropic" {
		path = "/v1/messages"
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-Email", who)
	if front == "anthropic" {
		req.Header.Set("x-api-key", token)
		req.Header.Set("anthropic-version", "2023-06-01")
	} else {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s as %s: %v", front, modelName, who, err)
	}
	if stream && resp.StatusCode == http.StatusOK && !strings.Contains(string(out), "data:") {
		t.Fatalf("%s %s as %s: not a stream: %.200s", front, modelName, who, out)
	}
	return resp.StatusCode
}

// panelValue is what one panel's query returned, for the test's log.
type panelValue struct{ panel, value string }

// dashboardCheck asks a dashboard's every query of the test's Prometheus
// and compares the answers with what was sent and the ledger.
type dashboardCheck struct {
	prom     *promServer
	from, at time.Time // the traffic's window, and when the queries are asked
	traffic  []sent
	ledger   map[string]float64            // USD per person
	limits   map[string]map[string]float64 // USD per person and limit
	note     func(panel, value string)     // records what a check saw, for the log
}

// microDollar is how closely the spend panels must match the ledger.
const microDollar = 1e-6

// run checks every panel of the dashboard JSON and returns what each
// showed and every disagreement.
func (c *dashboardCheck) run(ctx context.Context, dashboard []byte) (values []panelValue, errs []error) {
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct {
				RefID        string `json:"refId"`
				Expr         string
				LegendFormat string `json:"legendFormat"`
				Instant      bool
			}
		}
		Time struct {
			From, To string
		}
		Templating struct {
			List []struct {
				Name, Type string
				AllValue   string `json:"allValue"`
				Definition string
			}
		}
	}
	if err := json.Unmarshal(dashboard, &d); err != nil {
		return nil, []error{err}
	}
	fail := func(panel, format string, args ...any) {
		errs = append(errs, fmt.Errorf("panel %q: %s", panel, fmt.Sprintf(format, args...)))
	}
	c.note = func(panel, value string) { values = append(values, panelValue{panel, value}) }
	people := []string{alice, bob, carol}
	// The User variable: its label_values() query, as Grafana runs it
	// (the label values API), lists the three people; "All" is its allValue.
	all := ""
	for _, v := range d.Templating.List {
		if v.Name != "end_user" {
			continue
		}
		all = v.AllValue
		m := regexp.MustCompile(`^label_values\((.*), (\w+)\)$`).FindStringSubmatch(v.Definition)
		if m == nil {
			fail("variable end_user", "query %q is not label_values(selector, label)", v.Definition)
			continue
		}
		vals, _, err := c.prom.api.LabelValues(ctx, m[2], []string{m[1]}, c.from, c.at)
		if got := fmt.Sprint(vals); err != nil || got != fmt.Sprint(people) {
			fail("variable end_user", "%s lists %s (%v), want %v", v.Definition, got, err, people)
		}
		values = append(values, panelValue{"variable end_user", fmt.Sprint(vals)})
	}
	if all == "" {
		fail("variable end_user", "missing, or without an allValue")
	}
	// The range queries as Grafana asks them when the dashboard opens on
	// its default time range (now-7d): a panel about a thousand points wide
	// gets a ten-minute step (7d/1000, rounded as Grafana rounds), and
	// $__rate_interval is the step plus one scrape interval.
	span, err := model.ParseDuration(strings.TrimPrefix(d.Time.From, "now-"))
	if err != nil || d.Time.To != "now" {
		return nil, []error{fmt.Errorf("dashboard time range %+v is not now-<duration> to now: %v", d.Time, err)}
	}
	const step = 10 * time.Minute
	rateInterval := model.Duration(step + testInterval).String()
	// The whole traffic in one window, for the rate panels' totals.
	window := int(math.Ceil(c.at.Sub(c.from).Seconds()))
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			fail(p.Title, "no queries")
		}
		for _, tg := range p.Targets {
			// With "All" selected (allValue), as the dashboard opens.
			expr := substitute(tg.Expr, map[string]string{"$end_user": all, "$__rate_interval": rateInterval})
			if tg.Instant {
				v, err := c.prom.query(ctx, expr, c.at)
				if err != nil {
					fail(p.Title, "%v", err)
					continue
				}
				if len(v) == 0 {
					fail(p.Title, "%s returned no series", expr)
				}
				values = append(values, panelValue{p.Title + " " + tg.RefID, formatVector(v)})
			} else {
				m, err := c.prom.queryRange(ctx, expr, c.at.Add(-time.Duration(span)), c.at, step)
				if err != nil {
					fail(p.Title, "%v", err)
					continue
				}
				if len(m) == 0 {
					fail(p.Title, "%s returned no series over the test", expr)
				}
				var last []string
				for _, s := range m {
					// The last point with a value: after the traffic, rates
					// are 0 and quantiles NaN.
					for i := len(s.Values) - 1; i >= 0; i-- {
						if f := float64(s.Values[i].Value); !math.IsNaN(f) && (f != 0 || i == 0) {
							last = append(last, fmt.Sprintf("%s %.6g", labelsOf(s.Metric), f))
							break
						}
					}
				}
				slices.Sort(last)
				values = append(values, panelValue{p.Title + " " + tg.RefID + " (last point with a value)", strings.Join(last, "; ")})
			}
		}
		// What each panel must show, with "All" users selected.
		expr := func(i int) string { return substitute(p.Targets[i].Expr, map[string]string{"$end_user": all}) }
		switch {
		case strings.HasPrefix(p.Title, "Spend per user, last 30 days"):
			errs = append(errs, c.perPerson(ctx, p.Title, expr(0), all, 1, c.ledger, microDollar, people)...)
		case strings.HasPrefix(p.Title, "Spend, last 30 days"):
			total := 0.0
			for _, v := range c.ledger {
				total += v
			}
			c.scalar(ctx, p.Title, expr(0), total, microDollar, fail)
			c.scalar(ctx, p.Title, expr(1), 3*20, 0, fail) // three seats at $20
		case p.Title == "Cost per user (USD an hour)":
			// An hourly rate over the whole traffic, times its hours, is the spend.
			errs = append(errs, c.perPerson(ctx, p.Title, anchoredOver(expr(0), window), all, float64(window)/3600, c.ledger, microDollar, people)...)
		case strings.HasPrefix(p.Title, "Spend per user, last 24 hours"):
			errs = append(errs, c.perPerson(ctx, p.Title, expr(0), all, 1, c.ledger, microDollar, people)...)
		case p.Title == "Model use per user":
			want := map[string]float64{}
			for _, s := range c.traffic {
				want[s.user+" "+s.model]++
			}
			c.series(ctx, p.Title, anchoredOver(expr(0), window), float64(window), want, 1e-9, fail, "end_user", "model")
		case p.Title == "Failovers":
			want := map[string]float64{}
			for _, s := range c.traffic {
				if s.model == "sonnet-bedrock" { // asked for sonnet, served by the fallback
					want["anthropic litellm ServerError"]++
				}
			}
			c.series(ctx, p.Title, anchoredOver(expr(0), window), float64(window), want, 1e-9, fail, "from", "to", "reason")
		case p.Title == "Request latency by model and provider", p.Title == "Time to first token by model and provider":
			want := map[string]bool{}
			for _, s := range c.traffic {
				// A refused request (no provider) is counted, not timed.
				if s.provider != "" && (s.stream || p.Title == "Request latency by model and provider") {
					want[s.model+" "+s.provider] = true
				}
			}
			for i := range p.Targets {
				c.labelSets(ctx, p.Title, substitute(expr(i), map[string]string{"$__rate_interval": fmt.Sprintf("%ds", window)}), want, fail, "model", "provider")
			}
		case p.Title == "Quota use today":
			want := map[string]float64{}
			for who, l := range c.limits {
				for limit, usd := range l {
					want[who+" "+limit] = c.ledger[who] / usd
				}
			}
			c.series(ctx, p.Title, expr(0), 1, want, 1e-9, fail, "end_user", "limit")
		default:
			fail(p.Title, "a panel this test does not check: add what it must show")
		}
	}
	// Each person picked alone in the User variable sees their own spend.
	for _, p := range d.Panels {
		if strings.HasPrefix(p.Title, "Spend per user, last 30 days") {
			for _, who := range people {
				errs = append(errs, c.perPerson(ctx, p.Title+" for "+who, p.Targets[0].Expr, grafanaRegex(who), 1, c.ledger, microDollar, []string{who})...)
			}
		}
	}
	return values, errs
}

// perPerson checks a query returning one series per end_user against want
// (times scale), with $end_user set to user.
func (c *dashboardCheck) perPerson(ctx context.Context, panel, expr, user string, scale float64, want map[string]float64, tolerance float64, people []string) []error {
	var errs []error
	v, err := c.prom.query(ctx, substitute(expr, map[string]string{"$end_user": user}), c.at)
	if err != nil {
		return []error{fmt.Errorf("panel %q: %w", panel, err)}
	}
	got := map[string]float64{}
	for _, s := range v {
		got[string(s.Metric["end_user"])] = float64(s.Value) * scale
	}
	c.note(panel+" (checked)", formatTotals(got, "$%.9f"))
	for _, who := range people {
		if g, ok := got[who]; !ok || math.Abs(g-want[who]) > tolerance {
			errs = append(errs, fmt.Errorf("panel %q: %s shows $%.9f, the ledger $%.9f (%s)", panel, who, g, want[who], expr))
		}
	}
	if len(got) != len(people) {
		errs = append(errs, fmt.Errorf("panel %q: series for %v, want %v", panel, slices.Sorted(maps.Keys(got)), people))
	}
	return errs
}

// scalar checks a query returning one series.
func (c *dashboardCheck) scalar(ctx context.Context, panel, expr string, want, tolerance float64, fail func(string, string, ...any)) {
	v, err := c.prom.query(ctx, expr, c.at)
	if err != nil || len(v) != 1 || math.Abs(float64(v[0].Value)-want) > tolerance {
		fail(panel, "%s = %v (%v), want %v", expr, v, err, want)
	}
}

// series checks a query's series, keyed by the values of labels joined
// with spaces, against want (each value times scale).
func (c *dashboardCheck) series(ctx context.Context, panel, expr string, scale float64, want map[string]float64, tolerance float64, fail func(string, string, ...any), labels ...string) {
	v, err := c.prom.query(ctx, expr, c.at)
	if err != nil {
		fail(panel, "%v", err)
		return
	}
	got := map[string]float64{}
	for _, s := range v {
		got[key(s.Metric, labels)] = float64(s.Value) * scale
	}
	c.note(panel+" (checked)", formatTotals(got, "%.9g"))
	for k, w := range want {
		if g, ok := got[k]; !ok || math.Abs(g-w) > tolerance*math.Max(1, w) {
			fail(panel, "%s: %v, want %v (%s)", k, g, w, expr)
		}
	}
	for k := range got {
		// A series at zero is one the gateway created ahead of use, for
		// each allowlisted person and model (Prometheus's advice).
		if _, ok := want[k]; !ok && got[k] != 0 {
			fail(panel, "a series nobody sent: %s = %v (%s)", k, got[k], expr)
		}
	}
}

// labelSets checks that a query returns exactly the wanted label sets.
func (c *dashboardCheck) labelSets(ctx context.Context, panel, expr string, want map[string]bool, fail func(string, string, ...any), labels ...string) {
	v, err := c.prom.query(ctx, expr, c.at)
	if err != nil {
		fail(panel, "%v", err)
		return
	}
	got := map[string]bool{}
	for _, s := range v {
		got[key(s.Metric, labels)] = true
		if f := float64(s.Value); math.IsNaN(f) || f <= 0 {
			fail(panel, "%s = %v (%s)", labelsOf(s.Metric), s.Value, expr)
		}
	}
	if !maps.Equal(got, want) {
		fail(panel, "series %v, want %v (%s)", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)), expr)
	}
}

// formatVector writes an instant query's result on one line.
func formatVector(v model.Vector) string {
	var out []string
	for _, s := range v {
		out = append(out, fmt.Sprintf("%s %.9g", labelsOf(s.Metric), float64(s.Value)))
	}
	slices.Sort(out)
	return strings.Join(out, "; ")
}

// formatTotals writes a check's values by key, sorted.
func formatTotals(m map[string]float64, format string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+" "+fmt.Sprintf(format, m[k]))
	}
	return strings.Join(out, "; ")
}

func key(m model.Metric, labels []string) string {
	var parts []string
	for _, l := range labels {
		parts = append(parts, string(m[model.LabelName(l)]))
	}
	return strings.Join(parts, " ")
}

// substitute replaces dashboard variables as Grafana does before a query
// reaches Prometheus.
func substitute(expr string, vars map[string]string) string {
	for k, v := range vars {
		expr = strings.ReplaceAll(expr, k, v)
	}
	return expr
}

// anchoredOver sets a rate panel's window to the whole traffic, anchored
// so that nothing is extrapolated: rate times the window is then the exact
// total the panel's series add up to.
func anchoredOver(expr string, seconds int) string {
	return strings.ReplaceAll(expr, "[$__rate_interval]", fmt.Sprintf("[%ds] anchored", seconds))
}

// grafanaRegex is how Grafana writes one value of a multi-value variable
// into a PromQL regex matcher: regex-escaped, with the backslashes escaped
// for the PromQL string.
func grafanaRegex(v string) string {
	return strings.ReplaceAll(regexp.QuoteMeta(v), `\`, `\\`)
}

// checkAlerts waits for the rendered alerts to reach their expected states
// in the test's Prometheus, then checks that nothing else fires.
func checkAlerts(t *testing.T, prom *promServer, ledger map[string]float64, threshold float64) {
	t.Helper()
	type want struct {
		alert, label string
		values       []string
		state        promv1.AlertState
	}
	var overDaily []string
	for who, usd := range ledger {
		if usd > threshold {
			overDaily = append(overDaily, who)
		}
	}
	slices.Sort(overDaily)
	wants := []want{
		{render.AlertUserOverSoftQuota, "end_user", []string{bob}, promv1.AlertStateFiring},
		{render.AlertUserDailySpendHigh, "end_user", overDaily, promv1.AlertStateFiring},
		{render.AlertLiteLLMSpendDrift, "litellm_model", []string{liteLLMModels["claude-sonnet-bedrock"].label}, promv1.AlertStateFiring},
		{render.AlertProviderFailingOver, "from", []string{"anthropic"}, promv1.AlertStatePending},
	}
	state := func(alerts []promv1.Alert, w want) []string {
		var got []string
		for _, a := range alerts {
			if string(a.Labels["alertname"]) == w.alert && a.State == w.state {
				got = append(got, string(a.Labels[model.LabelName(w.label)]))
			}
		}
		slices.Sort(got)
		return got
	}
	deadline := time.Now().Add(8 * time.Minute)
	var alerts []promv1.Alert
	for {
		res, err := prom.api.Alerts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		alerts = res.Alerts
		done := true
		for _, w := range wants {
			if !slices.Equal(state(alerts, w), w.values) {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	for _, a := range alerts {
		t.Logf("alert %s %s %s value %s: %s", a.Labels["alertname"], a.State, labelsOf(model.Metric(a.Labels)), a.Value, a.Annotations["description"])
	}
	for _, w := range wants {
		if got := state(alerts, w); !slices.Equal(got, w.values) {
			t.Errorf("%s %s for %s %v, want %v", w.alert, w.state, w.label, got, w.values)
		}
	}
	for _, a := range alerts {
		if a.State != promv1.AlertStateFiring {
			continue
		}
		ok := false
		for _, w := range wants {
			if string(a.Labels["alertname"]) == w.alert && w.state == promv1.AlertStateFiring {
				ok = true
			}
		}
		if !ok {
			t.Errorf("unexpected alert firing: %v", a.Labels)
		}
	}
}
