package gateway_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

// TestRenderedQueriesNameExportedSeries sends traffic through a gateway (a
// request, a stream, a failover, a user past a soft quota), then checks
// that every series a rendered alert expression or dashboard query names
// is one the gateway's registry exports: an alert on a series nobody
// exports never fires, and a panel on one stays empty.
func TestRenderedQueriesNameExportedSeries(t *testing.T) {
	e := newEnv(t, withQuota("0.000001", "5"))
	if _, err := e.chat("gpt", "hello", false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.chat("gpt", "hello", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.chat("both", "hi [[fault:provider=anthropic,503]]", false); err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, line := range e.metric("") {
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			exported[line[:i]] = true
		}
	}

	in := render.Inputs{Gateway: &v1alpha1.ChatGateway{ObjectMeta: metav1.ObjectMeta{Name: "family", Namespace: "home"}}}
	var queries []string
	rule, err := render.PrometheusRule(in)
	if err != nil {
		t.Fatal(err)
	}
	// A recording rule's series is made by Prometheus, not exported by the
	// gateway: its own expression is what must name exported series.
	recorded := map[string]bool{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			queries = append(queries, r.Expr.String())
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	dashboard, err := render.GrafanaDashboard(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range dashboard.Data {
		var v any
		if err := json.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("dashboard JSON: %v", err)
		}
		queries = append(queries, dashboardQueries(v)...)
	}

	named := map[string][]string{}
	for _, q := range queries {
		for _, s := range promqlSeries(q) {
			named[s] = append(named[s], q)
		}
	}
	for _, s := range slices.Sorted(maps.Keys(named)) {
		if !exported[s] && !recorded[s] {
			t.Errorf("%s is not exported by the gateway, yet these query it:\n  %s", s, strings.Join(named[s], "\n  "))
		}
	}
	// The rules and the dashboard are about these; finding fewer means the
	// queries were not read.
	for _, s := range []string{metricnames.Spend, metricnames.Requests, metricnames.Failovers, metricnames.QuotaUsedRatio,
		metricnames.RequestDuration + "_bucket", metricnames.TimeToFirstToken + "_bucket"} {
		if _, ok := named[s]; !ok {
			t.Errorf("no rendered query names %s (found %v)", s, slices.Sorted(maps.Keys(named)))
		}
	}
}

// dashboardQueries collects a Grafana dashboard's PromQL: every panel
// target's expr, and the query of every query-type template variable.
func dashboardQueries(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		if s, ok := x["expr"].(string); ok {
			out = append(out, s)
		}
		if x["type"] == "query" {
			switch q := x["query"].(type) {
			case string:
				out = append(out, q)
			case map[string]any:
				if s, ok := q["query"].(string); ok {
					out = append(out, s)
				}
			}
		}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			out = append(out, dashboardQueries(x[k])...)
		}
	case []any:
		for _, y := range x {
			out = append(out, dashboardQueries(y)...)
		}
	}
	return out
}

// promqlSeries returns the series names a PromQL expression (or a Grafana
// label_values() query) selects. It reads the expression as PromQL's lexer
// does, as far as names go: string literals, label matchers, ranges,
// grouping label lists, numbers, durations, keywords and aggregations,
// function calls and Grafana's $variables name no series; every other identifier does, and so
// does a __name__ matcher. (github.com/prometheus/prometheus, whose parser
// would do this, is not a dependency of this module.)
func promqlSeries(expr string) []string {
	if rest, ok := strings.CutPrefix(strings.TrimSpace(expr), "label_values("); ok {
		// label_values(selector, label): only the selector is PromQL.
		if i := topLevelComma(rest); i >= 0 {
			expr = rest[:i]
		} else {
			expr = strings.TrimSuffix(rest, ")")
		}
	}
	var out []string
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true, "anchored": true, "smoothed": true, "inf": true, "nan": true, "atan2": true,
		// Aggregations, which may be followed by a grouping rather than "(".
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
		"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true}
	grouping := map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	s := expr
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(s, i)
		case c == '{':
			end := matching(s, i, '{', '}')
			out = append(out, nameMatchers(s[i+1:end])...)
			i = end + 1
		case c == '[':
			i = matching(s, i, '[', ']') + 1
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				i = matching(s, i, '{', '}') + 1
			}
			for i < len(s) && isIdent(s[i], false) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			// A number or a duration: digits, letters (1e3, 0x1f, 5m, 1h30m) and dots.
			for i < len(s) && (isIdent(s[i], false) || s[i] == '.') {
				i++
			}
		case isIdent(c, true):
			j := i
			for j < len(s) && isIdent(s[j], false) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && s[k] == ' ' {
				k++
			}
			switch {
			case grouping[strings.ToLower(word)]:
				if k < len(s) && s[k] == '(' {
					j = matching(s, k, '(', ')') + 1
				}
			case keywords[strings.ToLower(word)]:
			case k < len(s) && s[k] == '(':
				// A function or an aggregation; its arguments follow.
			default:
				out = append(out, word)
			}
			i = j
		default:
			i++
		}
	}
	return out
}

func isIdent(c byte, first bool) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) int {
	q := s[i]
	for i++; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q != '`':
			i++
		case s[i] == q:
			return i + 1
		}
	}
	return len(s)
}

// matching returns the index of the bracket closing the one at i, skipping
// strings; len(s)-1 when it is missing.
func matching(s string, i int, open, close byte) int {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '"', '\'', '`':
			i = skipString(s, i) - 1
		case open:
			depth++
		case close:
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return len(s) - 1
}

func topLevelComma(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"', '\'', '`':
			i = skipString(s, i) - 1
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			depth--
		case ',':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// nameMatchers returns the names a matcher list selects by __name__="…".
func nameMatchers(list string) []string {
	var out []string
	for rest := list; ; {
		i := strings.Index(rest, "__name__")
		if i < 0 {
			return out
		}
		rest = strings.TrimLeft(rest[i+len("__name__"):], " ")
		if strings.HasPrefix(rest, "=") && !strings.HasPrefix(rest, "=~") {
			rest = strings.TrimLeft(rest[1:], " ")
			if rest != "" && (rest[0] == '"' || rest[0] == '\'') {
				end := skipString(rest, 0)
				out = append(out, rest[1:end-1])
				rest = rest[end:]
			}
		}
	}
}

func TestPromQLSeries(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (namespace, service, end_user) (increase(chatgateway_spend_usd_total{namespace="ns",service="s"}[24h])) > 5`: "chatgateway_spend_usd_total",
		`sum(increase(chatgateway_spend_usd_total{namespace="ns"}[30d] anchored))`:                                           "chatgateway_spend_usd_total",
		`histogram_quantile(0.95, sum by (le) (rate(a_bucket{x=~"$end_user"}[$__rate_interval])))`:                           "a_bucket",
		`max by (end_user, limit) (q{limit="soft"}) >= 1 and on (end_user) group_left(model) b offset 5m unless bool c`:      "q b c",
		`sum(rate(x{label="has sum(not_a_series) in it", y='z}'}[1h30m] @ 1609746000)) * 3600 / 1e3 + inf`:                   "x",
		`{__name__="by_name", job="j"} or ignoring (a, b) d:recorded:rate5m`:                                                 "by_name d:recorded:rate5m",
		`label_values(chatgateway_spend_usd_total{namespace="ns"}, end_user)`:                                                "chatgateway_spend_usd_total",
		`vector(0)`:              "",
		`${var} + $other * 0x1f`: "",
	} {
		if got := strings.Join(promqlSeries(expr), " "); got != want {
			t.Errorf("%s\n got %q\nwant %q", expr, got, want)
		}
	}
}
