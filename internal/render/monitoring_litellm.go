package render

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
)

// LiteLLM's Prometheus callback (litellm/integrations/prometheus.py) counts
// spend in litellm_spend_metric (prometheus_client appends _total), labelled
// with, among others, model: the deployment's litellm_params.model as
// LiteLLM's get_llm_provider leaves it, without the provider prefix
// ("bedrock/us.amazon.nova-micro-v1:0" is counted as
// "us.amazon.nova-micro-v1:0"). That metric carries neither the model_name
// the gateway asks for (model_group) nor the gateway's alias, so the rule
// maps each alias to that label value.
const (
	liteLLMSpendMetric       = "litellm_spend_metric_total"
	liteLLMModelLabel        = "model"
	liteLLMPrometheusCB      = "prometheus"
	defaultLiteLLMSpendDrift = "0.05"
	// driftModelLabel carries LiteLLM's model label on both sides of the
	// comparison; the gateway's own model label holds its alias.
	driftModelLabel = "litellm_model"
)

// liteLLMDriftRules are the AlertLiteLLMSpendDrift rules: one per provider
// of spec.providers that renders a LiteLLM config with its Prometheus
// callback on and whose base URL is a Service in the cluster, so that
// LiteLLM's series can be told apart by the namespace and service labels a
// ServiceMonitor gives them. For each LiteLLM model the gateway's aliases
// map to, the gateway's spend over driftWindow (every gateway in the
// namespace that uses the provider: LiteLLM counts them all) is compared
// with LiteLLM's litellm_spend_metric_total over the same window, both
// exact (anchored); the alert's value is the difference as a fraction of
// LiteLLM's figure. A model the gateway has not used in the window, or
// that LiteLLM has no series for, is not compared.
func liteLLMDriftRules(in Inputs) ([]monitoringv1.Rule, error) {
	gw := in.Gateway
	fraction := string(ptr.Deref(gw.Spec.Monitoring.Alerts.LiteLLMSpendDrift, defaultLiteLLMSpendDrift))
	if f, err := strconv.ParseFloat(fraction, 64); err != nil || f <= 0 || f > 1 {
		return nil, fmt.Errorf("monitoring.alerts.liteLLMSpendDrift: %q is not a fraction greater than 0 and at most 1", fraction)
	}
	var rules []monitoringv1.Rule
	for _, ref := range gw.Spec.Providers {
		i := slices.IndexFunc(in.Providers, func(mp v1alpha1.ModelProvider) bool { return mp.Name == ref.Name })
		if i < 0 {
			continue
		}
		mp := &in.Providers[i]
		lite := mp.Spec.LiteLLM
		if mp.Spec.Type != v1alpha1.ProviderOpenAICompatible || lite == nil || !slices.Contains(lite.Settings.SuccessCallback, liteLLMPrometheusCB) {
			continue
		}
		ns, svc, ok := clusterService(mp.Spec.EffectiveBaseURL(), mp.Namespace)
		if !ok {
			continue
		}
		ours := driftOurSpend(gw.Namespace, mp)
		if ours == "" {
			continue
		}
		theirs := fmt.Sprintf(`sum by (%s) (label_replace(increase(%s{namespace=%q,service=%q}[%s] anchored), %q, "$1", %q, "(.*)"))`,
			driftModelLabel, liteLLMSpendMetric, ns, svc, driftWindow, driftModelLabel, liteLLMModelLabel)
		// group_left keeps our side's namespace and provider labels (a
		// one-to-one match on() would keep only litellm_model). The service
		// label names the gateway whose rule this is, so that two gateways
		// sharing the provider raise two distinct alerts.
		expr := fmt.Sprintf(`label_replace(abs(%s - on (%s) group_left () %s) / on (%s) group_left () %s > %s, "service", %q, "", "")`,
			ours, driftModelLabel, theirs, driftModelLabel, theirs, fraction, ServiceName(gw))
		rules = append(rules, monitoringv1.Rule{
			Alert:  AlertLiteLLMSpendDrift,
			Expr:   intstr.FromString(expr),
			For:    ptr.To(monitoringv1.Duration(driftAlertFor)),
			Labels: map[string]string{severityLabel: severityWarning},
			Annotations: map[string]string{
				"summary": fmt.Sprintf("The gateway's spend for {{ $labels.%s }} via %s disagrees with LiteLLM's.", driftModelLabel, mp.Name),
				"description": fmt.Sprintf(`Over the last hour, the spend the chat gateways in namespace {{ $labels.namespace }} metered for LiteLLM model {{ $labels.%s }} (provider %s) differs from LiteLLM's litellm_spend_metric_total (Service %s/%s) by {{ humanizePercentage $value }} of LiteLLM's figure, more than the %s allowed. Compare the model's prices in ModelProvider %s with LiteLLM's, and check both are scraped.`,
					driftModelLabel, mp.Name, ns, svc, fraction, mp.Name),
			},
		})
	}
	return rules, nil
}

// driftOurSpend is the gateways' spend through mp over driftWindow, per
// LiteLLM model label (driftModelLabel), or "" when no alias maps to a
// model of mp's LiteLLM config. Each alias's series are relabelled with
// their LiteLLM model first, so aliases that share one add up.
func driftOurSpend(namespace string, mp *v1alpha1.ModelProvider) string {
	models := map[string]string{} // LiteLLM model_name → model label
	for _, m := range mp.Spec.LiteLLM.Models {
		models[m.Name] = liteLLMModelLabelValue(m.Params)
	}
	var terms []string
	for _, m := range mp.Spec.Models {
		label, ok := models[m.ID]
		if !ok {
			continue
		}
		sel := fmt.Sprintf("namespace=%q,%s=%q,%s=%q", namespace, metricnames.LabelProvider, mp.Name, metricnames.LabelModel, m.Name)
		terms = append(terms, fmt.Sprintf(`label_replace(%s, %q, %q, "", "")`, spendIncrease(sel, driftWindow), driftModelLabel, label))
	}
	if len(terms) == 0 {
		return ""
	}
	return fmt.Sprintf("sum by (namespace, %s, %s) (%s)", metricnames.LabelProvider, driftModelLabel, strings.Join(terms, " or "))
}

// liteLLMModelLabelValue is the model label LiteLLM gives a deployment's
// series: its params.model without the provider prefix. get_llm_provider
// takes the prefix off when it names the provider: the one
// custom_llm_provider sets, else whatever precedes the first "/".
func liteLLMModelLabelValue(params map[string]string) string {
	model := params["model"]
	if p := params["custom_llm_provider"]; p != "" {
		return strings.TrimPrefix(model, p+"/")
	}
	if _, rest, ok := strings.Cut(model, "/"); ok {
		return rest
	}
	return model
}

// clusterService reads the namespace and Service of an in-cluster URL:
// http://litellm:4000 (the provider's namespace), litellm.ai.svc, or
// litellm.ai.svc.cluster.local. Anything else is not a Service whose scrape
// labels can be known: an IP, a name outside the cluster, or litellm.ai,
// which may be a Service and namespace or a public domain.
func clusterService(rawURL, namespace string) (ns, svc string, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", false
	}
	host := u.Hostname()
	if host == "" || net.ParseIP(host) != nil {
		return "", "", false
	}
	parts := strings.Split(host, ".")
	switch {
	case len(parts) == 1:
		return namespace, parts[0], true
	case len(parts) >= 3 && parts[2] == "svc":
		return parts[1], parts[0], true
	}
	return "", "", false
}
