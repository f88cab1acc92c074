package loopback

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

func TestServiceMonitorScrapeConfigs(t *testing.T) {
	gw := &v1alpha1.ChatGateway{ObjectMeta: metav1.ObjectMeta{Namespace: "family", Name: "family"}, Spec: v1alpha1.ChatGatewaySpec{
		Providers: []v1alpha1.LocalRef{{Name: "anthropic"}}, DefaultModel: "sonnet",
		Auth: v1alpha1.AuthSpec{AllowlistRef: v1alpha1.LocalRef{Name: "family"}},
	}}
	mp := v1alpha1.ModelProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "family", Name: "anthropic"}, Spec: v1alpha1.ModelProviderSpec{
		Type:   v1alpha1.ProviderAnthropic,
		Models: []v1alpha1.ModelSpec{{Name: "sonnet", ID: "claude-sonnet-4-5", Pricing: v1alpha1.ModelPricing{InputPerMTok: "3", OutputPerMTok: "15"}}},
	}}
	in := render.Inputs{Gateway: gw, Providers: []v1alpha1.ModelProvider{mp}, Image: "test"}
	sm, err1 := render.ServiceMonitor(in)
	svc, err2 := render.Service(in)
	dep, err3 := render.Deployment(in)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The scrape goes to the metrics port, never to the API port.
	pods := []Pod{{Name: "family-gateway-1", Ports: map[string]string{render.GatewayPortName: "127.0.0.1:1001", render.MetricsPortName: "127.0.0.1:9001"}},
		{Name: "family-gateway-2", Ports: map[string]string{render.GatewayPortName: "127.0.0.1:1002", render.MetricsPortName: "127.0.0.1:9002"}}}

	got, err := ServiceMonitorScrapeConfigs(sm, svc, dep, pods)
	if err != nil {
		t.Fatal(err)
	}
	target := func(pod, addr string) StaticConfig {
		return StaticConfig{Targets: []string{addr}, Labels: map[string]string{
			"namespace": "family", "service": "family-gateway", "pod": pod, "container": "gateway", "job": "family-gateway", "endpoint": "metrics"}}
	}
	want := []ScrapeConfig{{
		JobName: "serviceMonitor/family/family-gateway/0", ScrapeInterval: "30s", MetricsPath: "/metrics",
		StaticConfigs: []StaticConfig{target("family-gateway-1", "127.0.0.1:9001"), target("family-gateway-2", "127.0.0.1:9002")},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scrape configs (-want +got):\n%s", diff)
	}

	// What would select no target in a cluster is an error here.
	for name, c := range map[string]struct {
		mutate func()
		want   string
	}{
		"selector":        {func() { sm.Spec.Selector.MatchLabels["app.kubernetes.io/instance"] = "other" }, "does not match"},
		"namespace":       {func() { sm.Namespace = "elsewhere" }, "selects only its own namespace"},
		"port name":       {func() { sm.Spec.Endpoints[0].Port = "web" }, `no port named "web"`},
		"target port":     {func() { svc.Spec.Ports[1].TargetPort = intstr.FromString("nope") }, "which no container"},
		"pod selector":    {func() { svc.Spec.Selector = map[string]string{"app": "other"} }, "does not select the pods"},
		"missing process": {func() { pods = pods[:1]; pods[0].Ports = map[string]string{} }, "has no process"},
		"relabelling":     {func() { sm.Spec.Endpoints[0].HonorLabels = true }, "not translated"},
	} {
		sm, _ = render.ServiceMonitor(in)
		svc, _ = render.Service(in)
		pods = []Pod{{Name: "p", Ports: map[string]string{render.GatewayPortName: "127.0.0.1:1"}}}
		c.mutate()
		if _, err := ServiceMonitorScrapeConfigs(sm, svc, dep, pods); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, c.want)
		}
	}
}
