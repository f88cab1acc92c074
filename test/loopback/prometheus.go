package loopback

import (
	"fmt"
	"maps"
	"slices"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Pod is one replica of a rendered Deployment run as local processes.
type Pod struct {
	// Name is the pod's name, as the pod label will carry it.
	Name string
	// Ports maps a container port name of the pod template to the
	// loopback host:port of the process that serves it.
	Ports map[string]string
}

// ScrapeConfig is one entry of a Prometheus config's scrape_configs.
type ScrapeConfig struct {
	JobName        string         `json:"job_name"`
	ScrapeInterval string         `json:"scrape_interval,omitempty"`
	ScrapeTimeout  string         `json:"scrape_timeout,omitempty"`
	MetricsPath    string         `json:"metrics_path,omitempty"`
	Scheme         string         `json:"scheme,omitempty"`
	StaticConfigs  []StaticConfig `json:"static_configs"`
}

// StaticConfig is a list of targets sharing labels.
type StaticConfig struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// ServiceMonitorScrapeConfigs is what Prometheus Operator makes of a
// ServiceMonitor (pkg/prometheus/promcfg.go, generateServiceMonitorConfig):
// one job per endpoint, named serviceMonitor/<namespace>/<name>/<index>,
// whose targets are the pods behind the Service port the endpoint names,
// and whose relabelling gives each target the labels namespace, service,
// pod, container, job (the Service's name, or its jobLabel label) and
// endpoint (the port name). Here the Kubernetes service discovery and the
// relabelling are done in advance: the ServiceMonitor must select the
// Service, the Service the Deployment's pods, and the port must lead to a
// container port, or it is an error, as it would be an empty target list in
// a cluster. Fields this translation does not carry out are errors too, so
// a ServiceMonitor that uses them cannot pass for equivalent.
func ServiceMonitorScrapeConfigs(sm *monitoringv1.ServiceMonitor, svc *corev1.Service, dep *appsv1.Deployment, pods []Pod) ([]ScrapeConfig, error) {
	spec := sm.Spec
	if len(spec.TargetLabels) > 0 || len(spec.PodTargetLabels) > 0 || spec.SampleLimit != nil {
		return nil, fmt.Errorf("ServiceMonitor %s: targetLabels, podTargetLabels and limits are not translated", sm.Name)
	}
	ns := spec.NamespaceSelector
	switch {
	case ns.Any:
	case len(ns.MatchNames) > 0:
		if !slices.Contains(ns.MatchNames, svc.Namespace) {
			return nil, fmt.Errorf("ServiceMonitor %s does not select namespace %s", sm.Name, svc.Namespace)
		}
	case svc.Namespace != sm.Namespace:
		return nil, fmt.Errorf("ServiceMonitor %s/%s selects only its own namespace, not Service %s/%s", sm.Namespace, sm.Name, svc.Namespace, svc.Name)
	}
	if err := selects(&spec.Selector, svc.Labels); err != nil {
		return nil, fmt.Errorf("ServiceMonitor %s and Service %s: %w", sm.Name, svc.Name, err)
	}
	if dep.Namespace != svc.Namespace || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
		return nil, fmt.Errorf("Service %s does not select the pods of Deployment %s", svc.Name, dep.Name)
	}
	job := svc.Name
	if spec.JobLabel != "" && svc.Labels[spec.JobLabel] != "" {
		job = svc.Labels[spec.JobLabel]
	}
	var out []ScrapeConfig
	for i, ep := range spec.Endpoints {
		if len(ep.RelabelConfigs) > 0 || len(ep.MetricRelabelConfigs) > 0 || ep.HonorLabels {
			return nil, fmt.Errorf("ServiceMonitor %s endpoint %d: relabelling and honorLabels are not translated", sm.Name, i)
		}
		if ep.Port == "" {
			return nil, fmt.Errorf("ServiceMonitor %s endpoint %d: only endpoints naming a Service port are translated", sm.Name, i)
		}
		container, portName, err := servicePortTarget(svc, dep, ep.Port)
		if err != nil {
			return nil, fmt.Errorf("ServiceMonitor %s endpoint %d: %w", sm.Name, i, err)
		}
		sc := ScrapeConfig{
			JobName:        fmt.Sprintf("serviceMonitor/%s/%s/%d", sm.Namespace, sm.Name, i),
			ScrapeInterval: string(ep.Interval),
			ScrapeTimeout:  string(ep.ScrapeTimeout),
			MetricsPath:    ep.Path,
		}
		if ep.Scheme != nil {
			sc.Scheme = string(*ep.Scheme)
		}
		for _, p := range pods {
			addr, ok := p.Ports[portName]
			if !ok {
				return nil, fmt.Errorf("pod %s has no process on container port %q", p.Name, portName)
			}
			sc.StaticConfigs = append(sc.StaticConfigs, StaticConfig{
				Targets: []string{addr},
				Labels: map[string]string{
					"namespace": svc.Namespace,
					"service":   svc.Name,
					"pod":       p.Name,
					"container": container,
					"job":       job,
					"endpoint":  ep.Port,
				},
			})
		}
		out = append(out, sc)
	}
	return out, nil
}

// selects reports an error unless sel matches set.
func selects(sel *metav1.LabelSelector, set map[string]string) error {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return err
	}
	if s.Empty() || !s.Matches(labels.Set(set)) {
		return fmt.Errorf("selector %v does not match labels %v", sel, slices.Sorted(maps.Keys(set)))
	}
	return nil
}

// servicePortTarget follows a Service port name to the container and
// container port name that serve it.
func servicePortTarget(svc *corev1.Service, dep *appsv1.Deployment, name string) (container, port string, err error) {
	for _, sp := range svc.Spec.Ports {
		if sp.Name != name {
			continue
		}
		for _, c := range dep.Spec.Template.Spec.Containers {
			for _, cp := range c.Ports {
				if (sp.TargetPort.Type == intstr.String && cp.Name == sp.TargetPort.StrVal) ||
					(sp.TargetPort.Type == intstr.Int && cp.ContainerPort == sp.TargetPort.IntVal) {
					if cp.Name == "" {
						return "", "", fmt.Errorf("container port %d of %s has no name", cp.ContainerPort, c.Name)
					}
					return c.Name, cp.Name, nil
				}
			}
		}
		return "", "", fmt.Errorf("Service port %q leads to %s, which no container of Deployment %s exposes", name, sp.TargetPort.String(), dep.Name)
	}
	return "", "", fmt.Errorf("Service %s has no port named %q", svc.Name, name)
}

// RuleFile is a PrometheusRule as the rule file Prometheus Operator writes
// for it: its groups, unchanged.
func RuleFile(pr *monitoringv1.PrometheusRule) ([]byte, error) {
	return yaml.Marshal(struct {
		Groups []monitoringv1.RuleGroup `json:"groups"`
	}{pr.Spec.Groups})
}
