package render

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// MetricsServicePort is the Service port named "metrics" that Prometheus
// scrapes; it leads to the gateway's metrics port. When spec.service.port
// takes 9090, metrics move to 9091 (two Service ports cannot share a number).
func MetricsServicePort(gw *v1alpha1.ChatGateway) int32 {
	if servicePort(gw) == MetricsPort {
		return MetricsPort + 1
	}
	return MetricsPort
}

// Service exposes the gateway: port spec.service.port (named http) leads to
// the OAuth2 Proxy sidecar when it is enabled and to the gateway's API port
// otherwise; port "metrics" leads to the gateway's metrics port.
func Service(in Inputs) (*corev1.Service, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	gw := in.Gateway
	target := intstr.FromString(GatewayPortName)
	if oauth2Proxy(gw) != nil {
		target = intstr.FromString(OAuth2ProxyPortName)
	}
	svcType := gw.Spec.Service.Type
	if svcType == "" {
		svcType = corev1.ServiceTypeClusterIP
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(gw, ServiceName(gw), ComponentGateway),
		Spec: corev1.ServiceSpec{
			Type:     svcType,
			Selector: SelectorLabels(gw),
			Ports: []corev1.ServicePort{
				{Name: ServicePortName, Port: servicePort(gw), TargetPort: target, Protocol: corev1.ProtocolTCP},
				{Name: MetricsPortName, Port: MetricsServicePort(gw), TargetPort: intstr.FromString(MetricsPortName), Protocol: corev1.ProtocolTCP},
			},
		},
	}, nil
}

// PVC is the Embedded store's volume, or nil with the Postgres store.
func PVC(in Inputs) (*corev1.PersistentVolumeClaim, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	gw := in.Gateway
	if storeType(gw) != v1alpha1.StoreEmbedded {
		return nil, nil
	}
	size := defaultStoreSize.DeepCopy()
	if s := gw.Spec.Sessions.Store.Size; s != nil && !s.IsZero() {
		size = s.DeepCopy()
	}
	return &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: objectMeta(gw, PVCName(gw), ComponentStore),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: gw.Spec.Sessions.Store.StorageClassName,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: size},
			},
		},
	}, nil
}

// PrometheusPodLabel is the label Prometheus Operator puts on Prometheus
// pods; by default the NetworkPolicy admits such pods, from any namespace,
// to the metrics port.
const PrometheusPodLabel = "prometheus"

// NetworkPolicy admits to the gateway pods, and nothing else:
//   - anyone on the OAuth2 Proxy port, when the sidecar is enabled (it
//     signs people in);
//   - pods of the gateway's namespace labelled chatgateway.dev/token-holder:
//     "true" on the gateway's API port (API clients holding the token);
//   - the scrapers (spec.monitoring.scrapers; by default Prometheus pods,
//     app.kubernetes.io/name: prometheus, from any namespace) on the
//     metrics port, and only there.
//
// NetworkPolicies add up, so whoever needs more (an ingress controller in
// front of a gateway without the sidecar, say) adds a policy of their own.
// Egress is left open: providers are on the internet.
func NetworkPolicy(in Inputs) (*networkingv1.NetworkPolicy, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	gw := in.Gateway
	tcp := ptr.To(corev1.ProtocolTCP)
	port := func(p int32) []networkingv1.NetworkPolicyPort {
		return []networkingv1.NetworkPolicyPort{{Protocol: tcp, Port: ptr.To(intstr.FromInt32(p))}}
	}
	var rules []networkingv1.NetworkPolicyIngressRule
	if oauth2Proxy(gw) != nil {
		rules = append(rules, networkingv1.NetworkPolicyIngressRule{Ports: port(OAuth2ProxyPort)})
	}
	rules = append(rules,
		networkingv1.NetworkPolicyIngressRule{
			From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{LabelTokenHolder: "true"},
			}}},
			Ports: port(GatewayPort),
		},
		networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{scrapers(gw)}, Ports: port(MetricsPort)},
	)
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: objectMeta(gw, NetworkPolicyName(gw), ComponentGateway),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: SelectorLabels(gw)},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress:     rules,
		},
	}, nil
}

// scrapers is the NetworkPolicy peer allowed on the metrics port. A
// namespace selector is always set ({} when the spec leaves it out), so
// that "any namespace" is what an unset one means, as documented, rather
// than the NetworkPolicy's own "this namespace only".
func scrapers(gw *v1alpha1.ChatGateway) networkingv1.NetworkPolicyPeer {
	s := gw.Spec.Monitoring.Scrapers
	if s == nil {
		return networkingv1.NetworkPolicyPeer{
			NamespaceSelector: &metav1.LabelSelector{},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{LabelName: PrometheusPodLabel}},
		}
	}
	ns := &metav1.LabelSelector{}
	if s.NamespaceSelector != nil {
		ns = s.NamespaceSelector.DeepCopy()
	}
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: s.PodSelector.DeepCopy()}
}
