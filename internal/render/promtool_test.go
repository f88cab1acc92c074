package render

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// promtoolTests are the unit tests for the rules, in promtool's test file
// format: the daily-spend recording exact across a counter reset and a
// series that starts mid-window; each alert firing for the right series,
// and not firing for the others (below the threshold, another gateway's
// series, the hard limit, a one-off failover, LiteLLM's figure agreeing,
// another LiteLLM's series, a model the gateway does not use).
func promtoolTests() map[string]any {
	const (
		me    = `namespace="family",service="family-gateway"`
		other = `namespace="other",service="other-gateway"`
		where = "chat gateway family/family-gateway"
	)
	labels := func(extra ...string) map[string]string {
		l := map[string]string{"namespace": "family", "service": "family-gateway"}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	type alert = map[string]any
	none := []alert{}
	test := func(alertname string, series []map[string]string, evals ...map[string]any) map[string]any {
		for _, e := range evals {
			e["alertname"] = alertname
		}
		return map[string]any{"interval": "1m", "input_series": series, "alert_rule_test": evals}
	}
	series := func(s, values string) map[string]string { return map[string]string{"series": s, "values": values} }
	at := func(t string, alerts []alert) map[string]any {
		return map[string]any{"eval_time": t, "exp_alerts": alerts}
	}

	anthropicFailingOver := []alert{{
		"exp_labels": labels("severity", "warning", "from", "anthropic"),
		"exp_annotations": map[string]string{
			"summary":     "Requests keep failing over from provider anthropic.",
			"description": "Requests to provider anthropic have failed over to the next provider for 15m on " + where + " (0.017 failovers a second). Check the provider's status, rate limits and API key.",
		},
	}}
	drift := func(model, percent string) alert {
		return alert{
			"exp_labels": labels("severity", "warning", "provider", "litellm-bedrock", "litellm_model", model),
			"exp_annotations": map[string]string{
				"summary":     "The gateway's spend for " + model + " via litellm-bedrock disagrees with LiteLLM's.",
				"description": "Over the last hour, the spend the chat gateways in namespace family metered for LiteLLM model " + model + " (provider litellm-bedrock) differs from LiteLLM's litellm_spend_metric_total (Service family/litellm) by " + percent + " of LiteLLM's figure, more than the 0.05 allowed. Compare the model's prices in ModelProvider litellm-bedrock with LiteLLM's, and check both are scraped.",
			},
		}
	}
	litellm := func(svc, model string) string {
		return fmt.Sprintf(`litellm_spend_metric_total{namespace="family",service=%q,model=%q,end_user="None",hashed_api_key="88dc28",api_provider="bedrock"}`, svc, model)
	}
	ourSpend := func(gateway, model, provider string) string {
		return fmt.Sprintf(`chatgateway_spend_usd_total{namespace="family",service=%q,pod=%q,end_user="alice@example.com",model=%q,provider=%q}`, gateway, gateway+"-0", model, provider)
	}

	return map[string]any{
		"rule_files":          []string{"rules.yaml"},
		"evaluation_interval": "1m",
		"tests": []any{
			map[string]any{
				"interval": "1m",
				"input_series": []map[string]string{
					// alice on two replicas: a quarter a minute on one; half a
					// dollar a minute on the other, which restarts at 600m.
					// (Amounts exact in binary, so the sums compare exactly.)
					series(fmt.Sprintf(`chatgateway_spend_usd_total{%s,pod="a",end_user="alice@example.com",model="opus",provider="anthropic"}`, me), "0+0.25x1500"),
					series(fmt.Sprintf(`chatgateway_spend_usd_total{%s,pod="b",end_user="alice@example.com",model="opus",provider="anthropic"}`, me), "0+0.5x600 0+0.5x900"),
					series(fmt.Sprintf(`chatgateway_spend_usd_total{%s,pod="a",end_user="bob@example.com",model="haiku",provider="anthropic"}`, me), "0+0.125x1500"),
					// carol's first request comes at 300m.
					series(fmt.Sprintf(`chatgateway_spend_usd_total{%s,pod="a",end_user="carol@example.com",model="haiku",provider="anthropic"}`, me), "_x300 0+0.0625x1200"),
					series(fmt.Sprintf(`chatgateway_spend_usd_total{%s,pod="a",end_user="mallory@example.com",model="opus",provider="anthropic"}`, other), "0+1x1500"),
				},
				"promql_expr_test": []map[string]any{{
					"expr":      RecordUserDailySpend,
					"eval_time": "1440m",
					"exp_samples": []map[string]any{
						// 360 + 300 before the restart + 419.50 after it.
						{"labels": RecordUserDailySpend + `{namespace="family",service="family-gateway",end_user="alice@example.com"}`, "value": 1079.5},
						{"labels": RecordUserDailySpend + `{namespace="family",service="family-gateway",end_user="bob@example.com"}`, "value": 180},
						{"labels": RecordUserDailySpend + `{namespace="family",service="family-gateway",end_user="carol@example.com"}`, "value": 71.25},
					},
				}},
			},
			test(AlertUserDailySpendHigh,
				[]map[string]string{
					// alice spends a cent a minute, $14.40 a day; bob a tenth of that.
					series(fmt.Sprintf(`chatgateway_spend_usd_total{%s,end_user="alice@example.com",model="opus",provider="anthropic"}`, me), "0+0.01x1500"),
					series(fmt.Sprintf(`chatgateway_spend_usd_total{%s,end_user="bob@example.com",model="haiku",provider="anthropic"}`, me), "0+0.001x1500"),
					// Another gateway's big spender is not this gateway's alert.
					series(fmt.Sprintf(`chatgateway_spend_usd_total{%s,end_user="mallory@example.com",model="opus",provider="anthropic"}`, other), "0+1x1500"),
				},
				at("100m", none),
				at("1440m", []alert{{
					"exp_labels": labels("severity", "warning", "end_user", "alice@example.com"),
					"exp_annotations": map[string]string{
						"summary":     "A user spent more than $5 in 24 hours.",
						"description": "alice@example.com spent $14.40 in the last 24 hours on " + where + ", above the alert threshold of $5.",
					},
				}}),
			),
			test(AlertProviderFailingOver,
				[]map[string]string{
					// anthropic fails over every minute for two hours.
					series(fmt.Sprintf(`chatgateway_failovers_total{%s,from="anthropic",to="litellm-bedrock",reason="RateLimited"}`, me), "0+1x120"),
					// litellm-bedrock failed over once, at 10m.
					series(fmt.Sprintf(`chatgateway_failovers_total{%s,from="litellm-bedrock",to="anthropic",reason="Timeout"}`, me), "0x10 1x110"),
					series(fmt.Sprintf(`chatgateway_failovers_total{%s,from="anthropic",to="litellm-bedrock",reason="Timeout"}`, other), "0+1x120"),
				},
				// Pending, not yet firing.
				at("10m", none),
				// The one-off is pending at 24m and resolved before 15m pass.
				at("24m", anthropicFailingOver),
				at("60m", anthropicFailingOver),
			),
			test(AlertUserOverSoftQuota,
				[]map[string]string{
					series(fmt.Sprintf(`chatgateway_quota_used_ratio{%s,end_user="alice@example.com",limit="soft"}`, me), "0.5 0.9 1.2x30"),
					series(fmt.Sprintf(`chatgateway_quota_used_ratio{%s,end_user="alice@example.com",limit="hard"}`, me), "0.1 0.18 0.24x30"),
					series(fmt.Sprintf(`chatgateway_quota_used_ratio{%s,end_user="bob@example.com",limit="soft"}`, me), "0.4x32"),
					series(fmt.Sprintf(`chatgateway_quota_used_ratio{%s,end_user="mallory@example.com",limit="soft"}`, other), "3x32"),
				},
				at("4m", none),
				at("20m", []alert{{
					"exp_labels": labels("severity", "info", "end_user", "alice@example.com"),
					"exp_annotations": map[string]string{
						"summary":     "alice@example.com is over their daily soft quota.",
						"description": "alice@example.com has spent 120% of their daily soft quota on " + where + ". Requests still go through until the hard quota.",
					},
				}}),
			),
			test(AlertLiteLLMSpendDrift,
				[]map[string]string{
					// nova-micro through two gateways of the namespace: LiteLLM
					// counts both, and agrees.
					series(ourSpend("family-gateway", "nova-micro", "litellm-bedrock"), "0+0.001x120"),
					series(ourSpend("kids-gateway", "nova-micro", "litellm-bedrock"), "0+0.001x120"),
					series(litellm("litellm", "us.amazon.nova-micro-v1:0"), "0+0.002x120"),
					// Sonnet on Bedrock: LiteLLM prices it 10% higher.
					series(ourSpend("family-gateway", "claude-sonnet-bedrock", "litellm-bedrock"), "0+0.01x120"),
					series(litellm("litellm", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"), "0+0.011x120"),
					// nova-lite: LiteLLM has no price for it and counts nothing.
					series(ourSpend("family-gateway", "nova-lite", "litellm-bedrock"), "0+0.001x120"),
					series(litellm("litellm", "us.amazon.nova-lite-v1:0"), "0x120"),
					// Haiku on Bedrock: LiteLLM is not scraped for it; not compared.
					series(ourSpend("family-gateway", "claude-haiku-bedrock", "litellm-bedrock"), "0+0.01x120"),
					// Not LiteLLM's: Anthropic, another namespace, another
					// LiteLLM, a model used directly on LiteLLM.
					series(ourSpend("family-gateway", "sonnet", "anthropic"), "0+1x120"),
					series(`chatgateway_spend_usd_total{namespace="other",service="family-gateway",end_user="x",model="nova-micro",provider="litellm-bedrock"}`, "0+5x120"),
					series(litellm("other-litellm", "us.amazon.nova-micro-v1:0"), "0+9x120"),
					series(litellm("litellm", "gpt-4o"), "0+1x120"),
				},
				at("4m", none),
				at("70m", []alert{drift("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "9.091%"), drift("us.amazon.nova-lite-v1:0", "+Inf%")}),
			),
		},
	}
}

// TestPromtool checks the rendered rules and runs their unit tests with a
// real promtool. make test builds it and sets PROMTOOL.
func TestPromtool(t *testing.T) {
	rules, err := PrometheusRuleYAML(family(t))
	if err != nil {
		t.Fatal(err)
	}
	tests, err := marshalYAML(promtoolTests())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "promtool-tests.yaml", tests)
	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		t.Skip("PROMTOOL is not set; make test builds promtool and runs this test")
	}
	dir := t.TempDir()
	dashboardRules, err := dashboardExprsAsRules(t)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"rules.yaml": rules, "tests.yaml": tests, "dashboard.yaml": dashboardRules} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"check", "rules", "rules.yaml"},
		// The dashboard's queries are PromQL too: promtool parses them as recording rules.
		{"check", "rules", "dashboard.yaml"},
		{"test", "rules", "tests.yaml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// dashboardExprsAsRules wraps every dashboard query in a recording rule,
// with Grafana's $__rate_interval replaced by a duration.
func dashboardExprsAsRules(t *testing.T) ([]byte, error) {
	b, err := GrafanaDashboardJSON(family(t))
	if err != nil {
		return nil, err
	}
	var d struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	var rules []map[string]string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			rules = append(rules, map[string]string{
				"record": fmt.Sprintf("dashboard:query_%d", len(rules)),
				"expr":   strings.ReplaceAll(tg.Expr, "$__rate_interval", "5m"),
			})
		}
	}
	return marshalYAML(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
}
