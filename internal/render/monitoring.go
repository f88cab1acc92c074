package render

import (
	"fmt"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
)

// Rule names.
const (
	AlertUserDailySpendHigh  = "ChatGatewayUserDailySpendHigh"
	AlertProviderFailingOver = "ChatGatewayProviderFailingOver"
	AlertUserOverSoftQuota   = "ChatGatewayUserOverSoftQuota"
	AlertLiteLLMSpendDrift   = "ChatGatewayLiteLLMSpendDrift"
	// RecordUserDailySpend is each person's spend over the last 24 hours
	// on one gateway, in USD, labelled namespace, service and end_user: the
	// daily-spend alert and the dashboard read this one series.
	RecordUserDailySpend = "namespace_service_end_user:chatgateway_spend_usd:increase1d"

	failoverWindow = "15m"
	spendAlertFor  = "5m"
	quotaAlertFor  = "5m"
	// driftWindow is the hour over which the gateway's and LiteLLM's spend
	// are compared; driftAlertFor rides out the seconds by which the two
	// counters see the same request apart.
	driftWindow     = "1h"
	driftAlertFor   = "5m"
	severityLabel   = "severity"
	severityWarning = "warning"
	severityInfo    = "info"
)

// spendIncrease is the spend of sel's series over window, exactly: the
// anchored modifier (Prometheus 3.16 and later; 3.7 to 3.15 with
// --enable-feature=promql-extended-range-selectors) takes the counter's
// last value at the window's start as the baseline and adds nothing by
// extrapolation, so a sum of it matches the gateway's ledger to the
// micro-dollar, where plain increase() scales the difference up by as much
// as a scrape interval's share of the series' life.
func spendIncrease(sel, window string) string {
	return fmt.Sprintf("increase(%s{%s}[%s] anchored)", metricnames.Spend, sel, window)
}

// ServiceMonitor makes Prometheus Operator scrape the gateway's /metrics
// through the Service port "metrics" every monitoring.serviceMonitor.interval.
func ServiceMonitor(in Inputs) (*monitoringv1.ServiceMonitor, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	gw := in.Gateway
	interval := durationOr(gw.Spec.Monitoring.ServiceMonitor.Interval, defaultScrapeInterval)
	return &monitoringv1.ServiceMonitor{
		TypeMeta:   metav1.TypeMeta{APIVersion: monitoringv1.SchemeGroupVersion.String(), Kind: monitoringv1.ServiceMonitorsKind},
		ObjectMeta: objectMeta(gw, ServiceMonitorName(gw), ComponentMonitoring),
		Spec: monitoringv1.ServiceMonitorSpec{
			Selector: metav1.LabelSelector{MatchLabels: SelectorLabels(gw)},
			Endpoints: []monitoringv1.Endpoint{{
				Port:     MetricsPortName,
				Path:     "/metrics",
				Interval: monitoringv1.Duration(promDuration(interval)),
			}},
		},
	}, nil
}

// PrometheusRule holds the alert rules for one gateway (see ruleGroups).
func PrometheusRule(in Inputs) (*monitoringv1.PrometheusRule, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	groups, err := ruleGroups(in)
	if err != nil {
		return nil, err
	}
	return &monitoringv1.PrometheusRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: monitoringv1.SchemeGroupVersion.String(), Kind: monitoringv1.PrometheusRuleKind},
		ObjectMeta: objectMeta(in.Gateway, PrometheusRuleName(in.Gateway), ComponentMonitoring),
		Spec:       monitoringv1.PrometheusRuleSpec{Groups: groups},
	}, nil
}

// PrometheusRuleYAML is the same rules as a plain Prometheus rules file, the
// format promtool checks and tests.
func PrometheusRuleYAML(in Inputs) ([]byte, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	groups, err := ruleGroups(in)
	if err != nil {
		return nil, err
	}
	b, err := marshalYAML(struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}{groups})
	if err != nil {
		return nil, fmt.Errorf("marshalling rules: %w", err)
	}
	return b, nil
}

// ruleGroups are one group for one gateway, scoped to its series by the
// namespace and service labels Prometheus Operator attaches. Prometheus
// evaluates a group's rules in order, so the alerts read the recording as
// it was just made:
//   - RecordUserDailySpend: each person's spend over 24 hours;
//   - AlertUserDailySpendHigh: that spend is above
//     monitoring.alerts.dailySpendUSD;
//   - AlertProviderFailingOver: requests keep failing over from a provider,
//     at least once in every 15-minute window for 15 minutes;
//   - AlertUserOverSoftQuota: a user's spend today reached their soft quota.
//     It reads the gauge chatgateway_quota_used_ratio{end_user,limit}
//     (today's spend over the limit), which the gateway exports; a day's
//     spend cannot be read from a counter in PromQL with the day starting
//     in the quota's time zone;
//   - AlertLiteLLMSpendDrift, one per LiteLLM provider with its Prometheus
//     callback on (see liteLLMDriftRules).
//
// Annotations name users, models and providers only, never content.
func ruleGroups(in Inputs) ([]monitoringv1.RuleGroup, error) {
	gw := in.Gateway
	threshold := usdOr(gw.Spec.Monitoring.Alerts.DailySpendUSD, defaultDailySpendUSD)
	if _, err := gc.ParseUSD(threshold); err != nil {
		return nil, fmt.Errorf("monitoring.alerts.dailySpendUSD: %w", err)
	}
	sel := seriesSelector(gw)
	where := "chat gateway {{ $labels.namespace }}/{{ $labels.service }}"
	user := metricnames.LabelEndUser
	rules := []monitoringv1.Rule{
		{
			Record: RecordUserDailySpend,
			Expr:   intstr.FromString(fmt.Sprintf("sum by (namespace, service, %s) (%s)", user, spendIncrease(sel, "1d"))),
		},
		{
			Alert:  AlertUserDailySpendHigh,
			Expr:   intstr.FromString(fmt.Sprintf("%s{%s} > %s", RecordUserDailySpend, sel, threshold)),
			For:    ptr.To(monitoringv1.Duration(spendAlertFor)),
			Labels: map[string]string{severityLabel: severityWarning},
			Annotations: map[string]string{
				"summary": fmt.Sprintf("A user spent more than $%s in 24 hours.", threshold),
				"description": fmt.Sprintf(`{{ $labels.%s }} spent ${{ printf "%%.%df" $value }} in the last 24 hours on %s, above the alert threshold of $%s.`,
					user, centsOr(threshold), where, threshold),
			},
		},
		{
			Alert: AlertProviderFailingOver,
			Expr: intstr.FromString(fmt.Sprintf(
				"sum by (namespace, service, %s) (rate(%s{%s}[%s])) > 0", metricnames.LabelFrom, metricnames.Failovers, sel, failoverWindow)),
			For:    ptr.To(monitoringv1.Duration(failoverWindow)),
			Labels: map[string]string{severityLabel: severityWarning},
			Annotations: map[string]string{
				"summary": fmt.Sprintf("Requests keep failing over from provider {{ $labels.%s }}.", metricnames.LabelFrom),
				"description": fmt.Sprintf(`Requests to provider {{ $labels.%s }} have failed over to the next provider for %s on %s ({{ printf "%%.3f" $value }} failovers a second). Check the provider's status, rate limits and API key.`,
					metricnames.LabelFrom, failoverWindow, where),
			},
		},
		{
			Alert: AlertUserOverSoftQuota,
			Expr: intstr.FromString(fmt.Sprintf(
				`max by (namespace, service, %s) (%s{%s,%s="soft"}) >= 1`, user, metricnames.QuotaUsedRatio, sel, metricnames.LabelLimit)),
			For:    ptr.To(monitoringv1.Duration(quotaAlertFor)),
			Labels: map[string]string{severityLabel: severityInfo},
			Annotations: map[string]string{
				"summary": fmt.Sprintf("{{ $labels.%s }} is over their daily soft quota.", user),
				"description": fmt.Sprintf(`{{ $labels.%s }} has spent {{ humanizePercentage $value }} of their daily soft quota on %s. Requests still go through until the hard quota.`,
					user, where),
			},
		},
	}
	drift, err := liteLLMDriftRules(in)
	if err != nil {
		return nil, err
	}
	return []monitoringv1.RuleGroup{{Name: "chatgateway-" + gw.Name, Rules: append(rules, drift...)}}, nil
}

// centsOr is how many decimals show an amount next to threshold: cents,
// or as many as the threshold has, so that a spend over a $0.001 threshold
// does not read $0.00.
func centsOr(threshold string) int {
	_, frac, _ := strings.Cut(threshold, ".")
	return max(2, len(frac))
}

// seriesSelector matches this gateway's series.
func seriesSelector(gw *v1alpha1.ChatGateway) string {
	return fmt.Sprintf("namespace=%q,service=%q", gw.Namespace, ServiceName(gw))
}

// promDuration writes d as Prometheus does ("30s", "1m", "1h30m").
func promDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	out := ""
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if n := d / u.d; n > 0 {
			out += fmt.Sprintf("%d%s", n, u.unit)
			d -= n * u.d
		}
	}
	return out
}
