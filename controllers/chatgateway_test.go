package controllers

import (
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

// family creates what a household's gateway references, and the gateway.
type family struct {
	ns string
	gw *v1alpha1.ChatGateway
}

func newFamily(monitoring v1alpha1.MonitoringSpec) *family {
	ns := newNamespace()
	for name, data := range map[string]map[string]string{
		"anthropic-api-key": {"api-key": "sk-ant-canary-secret"},
		"oauth2-proxy":      {"client-secret": "client-canary-secret", "cookie-secret": "0123456789abcdef0123456789abcdef"},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
	}
	Expect(k8sClient.Create(ctx, anthropicProvider(ns, "anthropic",
		&v1alpha1.SecretKeyRef{Name: "anthropic-api-key", Key: "api-key"}))).To(Succeed())
	Expect(k8sClient.Create(ctx, &v1alpha1.UserAllowlist{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "family"},
		Spec: v1alpha1.UserAllowlistSpec{Users: []v1alpha1.AllowedUser{
			{Email: "alice@example.com", Role: v1alpha1.RoleAdmin}, {Email: "bob@example.com"},
		}},
	})).To(Succeed())
	gw := &v1alpha1.ChatGateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "family"},
		Spec: v1alpha1.ChatGatewaySpec{
			Providers:    []v1alpha1.LocalRef{{Name: "anthropic"}},
			DefaultModel: "sonnet",
			Auth: v1alpha1.AuthSpec{
				AllowlistRef: v1alpha1.LocalRef{Name: "family"},
				OAuth2Proxy: &v1alpha1.OAuth2ProxySpec{
					Enabled: true, Provider: "google", ClientID: "family-chat",
					ClientSecretRef: &v1alpha1.SecretKeyRef{Name: "oauth2-proxy", Key: "client-secret"},
					CookieSecretRef: &v1alpha1.SecretKeyRef{Name: "oauth2-proxy", Key: "cookie-secret"},
				},
			},
			Monitoring: monitoring,
		},
	}
	Expect(k8sClient.Create(ctx, gw)).To(Succeed())
	return &family{ns: ns, gw: gw}
}

func (f *family) key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: f.ns, Name: name}
}

func (f *family) waitReady() {
	Eventually(condition(f.gw, func() []metav1.Condition { return f.gw.Status.Conditions }, v1alpha1.ConditionReady)).
		Should(HaveField("Status", metav1.ConditionTrue))
}

func (f *family) tokenSecret() *corev1.Secret {
	s := &corev1.Secret{}
	Expect(k8sClient.Get(ctx, f.key(render.TokenSecretName(f.gw)), s)).To(Succeed())
	return s
}

// children are every object the operator makes for the family's gateway.
func (f *family) children() map[string]client.Object {
	gw := f.gw
	return map[string]client.Object{
		"token":         &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: render.TokenSecretName(gw)}},
		"keys":          &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: render.KeysSecretName(gw)}},
		"config":        &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: render.ConfigMapName(gw)}},
		"emails":        &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: render.EmailsConfigMapName(gw)}},
		"store":         &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: render.PVCName(gw)}},
		"deployment":    &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: render.DeploymentName(gw)}},
		"service":       &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: render.ServiceName(gw)}},
		"networkpolicy": &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: render.NetworkPolicyName(gw)}},
		"dashboard":     &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: render.DashboardConfigMapName(gw)}},
	}
}

func (f *family) resourceVersions() map[string]string {
	rv := map[string]string{}
	for name, obj := range f.children() {
		Expect(k8sClient.Get(ctx, f.key(obj.GetName()), obj)).To(Succeed(), name)
		rv[name] = obj.GetResourceVersion()
	}
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f.gw), f.gw)).To(Succeed())
	rv["chatgateway"] = f.gw.ResourceVersion
	return rv
}

// changeSpec updates the gateway as change says, on its latest version: the
// operator patches the status meanwhile, which moves the resourceVersion.
func changeSpec(gw *v1alpha1.ChatGateway, change func(*v1alpha1.ChatGateway)) {
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(gw), gw); err != nil {
			return err
		}
		change(gw)
		return k8sClient.Update(ctx, gw)
	}).Should(Succeed())
}

// poke makes the controller reconcile the gateway once more, by changing an
// annotation it does not use, and waits until it has.
func (f *family) poke(value string) {
	before := reconcileCount()
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(f.gw), f.gw); err != nil {
			return err
		}
		if f.gw.Annotations == nil {
			f.gw.Annotations = map[string]string{}
		}
		f.gw.Annotations["test.chatgateway.dev/poke"] = value
		return k8sClient.Update(ctx, f.gw)
	}).Should(Succeed())
	Eventually(reconcileCount).Should(BeNumerically(">", before))
}

func reconcileCount() float64 {
	n, err := testutil.GatherAndCount(ctrlmetrics.Registry, "controller_runtime_reconcile_total")
	Expect(err).NotTo(HaveOccurred())
	Expect(n).To(BeNumerically(">", 0))
	mfs, err := ctrlmetrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "chatgateway" {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

var _ = Describe("ChatGateway children", func() {
	It("makes every child, owned by the gateway, with no secret value outside Secrets", func() {
		start := time.Now()
		f := newFamily(noPrometheusOperator())
		f.waitReady()
		GinkgoWriter.Printf("Ready %s after the resources were created\n", time.Since(start))

		for name, obj := range f.children() {
			Eventually(func() error { return k8sClient.Get(ctx, f.key(obj.GetName()), obj) }).Should(Succeed(), name)
			owner := metav1.GetControllerOf(obj)
			Expect(owner).NotTo(BeNil(), name)
			Expect(owner.Name).To(Equal("family"))
			Expect(owner.Kind).To(Equal("ChatGateway"))
			Expect(*owner.BlockOwnerDeletion).To(BeTrue(), "%s must go when the gateway is deleted", name)
		}

		token := f.tokenSecret()
		Expect(token.Data[gc.TokenKey]).To(HaveLen(43))
		Expect(f.gw.Status.TokenRotatedAt).NotTo(BeNil())
		Expect(f.gw.Status.NextTokenRotation.Time).To(Equal(f.gw.Status.TokenRotatedAt.Add(720 * time.Hour)))

		keys := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, f.key(render.KeysSecretName(f.gw)), keys)).To(Succeed())
		Expect(keys.Data[gc.MasterKeyKey]).To(HaveLen(32))

		cfg := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, f.key(render.ConfigMapName(f.gw)), cfg)).To(Succeed())
		parsed, err := gc.Parse([]byte(cfg.Data[gc.ConfigFileName]))
		Expect(err).NotTo(HaveOccurred())
		Expect(parsed.Providers[0].APIKeyFile).To(Equal(render.ProviderKeyPath("anthropic")))
		Expect(parsed.Users).To(HaveLen(2))

		emails := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, f.key(render.EmailsConfigMapName(f.gw)), emails)).To(Succeed())
		Expect(emails.Data).To(ContainElement("alice@example.com\nbob@example.com\n"))

		for _, cm := range []*corev1.ConfigMap{cfg, emails} {
			for _, v := range cm.Data {
				Expect(v).NotTo(ContainSubstring("canary"))
				Expect(v).NotTo(ContainSubstring(string(token.Data[gc.TokenKey])))
			}
		}

		d := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, f.key(render.DeploymentName(f.gw)), d)).To(Succeed())
		Expect(d.Spec.Template.Spec.Containers).To(HaveLen(2), "gateway and the oauth2-proxy sidecar")
		Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal(testImage))
		Expect(d.Spec.Template.Annotations).To(HaveKey(render.AnnotationConfigHash))
		Expect(d.Spec.Template.Annotations).To(HaveKey(render.AnnotationTokenGeneration))
		for _, c := range d.Spec.Template.Spec.Containers {
			sc := c.SecurityContext
			Expect(*sc.ReadOnlyRootFilesystem && !*sc.AllowPrivilegeEscalation).To(BeTrue(), c.Name)
			Expect(sc.Capabilities.Drop).To(ContainElement(corev1.Capability("ALL")), c.Name)
		}
		Expect(*d.Spec.Template.Spec.SecurityContext.RunAsNonRoot).To(BeTrue())
		Expect(f.gw.Status.URL).To(Equal("http://family-gateway." + f.ns + ".svc:80"))
		Expect(f.gw.Status.Replicas).To(BeEquivalentTo(1))

		dash := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, f.key(render.DashboardConfigMapName(f.gw)), dash)).To(Succeed())
		Expect(dash.Labels).To(HaveKeyWithValue("grafana_dashboard", "1"))
	})

	It("writes nothing in a steady state", func() {
		f := newFamily(noPrometheusOperator())
		f.waitReady()
		f.poke("1") // settle: the first reconciles after creation may still be in flight
		before := f.resourceVersions()
		f.poke("2")
		after := f.resourceVersions()
		delete(before, "chatgateway") // the poke itself changed the gateway
		delete(after, "chatgateway")
		Expect(after).To(Equal(before), "a resync of a converged gateway must not write any child")
	})

	It("rotates the token on schedule, keeps the previous for the grace period, and rolls the pods", func() {
		f := newFamily(noPrometheusOperator())
		f.waitReady()
		first := f.tokenSecret()
		d := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, f.key(render.DeploymentName(f.gw)), d)).To(Succeed())
		generation := d.Spec.Template.Annotations[render.AnnotationTokenGeneration]

		By("a restart-like resync before the interval changes nothing")
		f.poke("early")
		Expect(f.tokenSecret().Data[gc.TokenKey]).To(Equal(first.Data[gc.TokenKey]))

		By("stepping the clock past the rotation interval")
		testClock.Step(721 * time.Hour)
		f.poke("late")
		var rotated *corev1.Secret
		Eventually(func() []byte {
			rotated = f.tokenSecret()
			return rotated.Data[gc.TokenKey]
		}).ShouldNot(Equal(first.Data[gc.TokenKey]))
		Expect(rotated.Data[gc.PreviousTokenKey]).To(Equal(first.Data[gc.TokenKey]))
		expires, err := time.Parse(time.RFC3339, string(rotated.Data[gc.PreviousExpiresAtKey]))
		Expect(err).NotTo(HaveOccurred())
		Expect(expires).To(Equal(testClock.Now().UTC().Truncate(time.Second).Add(10 * time.Minute)))

		Eventually(func() string {
			Expect(k8sClient.Get(ctx, f.key(render.DeploymentName(f.gw)), d)).To(Succeed())
			return d.Spec.Template.Annotations[render.AnnotationTokenGeneration]
		}).ShouldNot(Equal(generation))
		Eventually(eventsIn(f.ns)).Should(ContainElement(And(
			HaveField("Reason", "TokenRotated"), HaveField("Note", ContainSubstring("on schedule")))))
	})

	It("rotates at once and revokes the previous token when annotated (the kill switch)", func() {
		f := newFamily(noPrometheusOperator())
		f.waitReady()
		first := f.tokenSecret()
		// As kubectl annotate does: a patch, which a status write racing it cannot conflict with.
		annotate := []byte(`{"metadata":{"annotations":{"` + v1alpha1.RotateTokenAnnotation + `":"incident-1"}}}`)
		Expect(k8sClient.Patch(ctx, f.gw, client.RawPatch(types.MergePatchType, annotate))).To(Succeed())
		Eventually(func() []byte { return f.tokenSecret().Data[gc.TokenKey] }).ShouldNot(Equal(first.Data[gc.TokenKey]))
		s := f.tokenSecret()
		Expect(s.Data).NotTo(HaveKey(gc.PreviousTokenKey), "the old token must stop working at once")
		Eventually(eventsIn(f.ns)).Should(ContainElement(HaveField("Note", ContainSubstring("revoked"))))

		By("the same annotation value does not rotate again")
		current := s.Data[gc.TokenKey]
		f.poke("again")
		Expect(f.tokenSecret().Data[gc.TokenKey]).To(Equal(current))
	})

	It("names missing referenced Secrets and recovers when they appear", func() {
		ns := newNamespace()
		Expect(k8sClient.Create(ctx, anthropicProvider(ns, "anthropic", nil))).To(Succeed())
		gw := &v1alpha1.ChatGateway{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late"},
			Spec: v1alpha1.ChatGatewaySpec{
				Providers: []v1alpha1.LocalRef{{Name: "anthropic"}}, DefaultModel: "sonnet",
				Auth: v1alpha1.AuthSpec{AllowlistRef: v1alpha1.LocalRef{Name: "nobody"},
					OAuth2Proxy: &v1alpha1.OAuth2ProxySpec{Enabled: true, Provider: "github", ClientID: "x",
						ClientSecretRef: &v1alpha1.SecretKeyRef{Name: "oauth", Key: "client-secret"},
						CookieSecretRef: &v1alpha1.SecretKeyRef{Name: "oauth", Key: "cookie-secret"}}},
				Monitoring: noPrometheusOperator(),
			},
		}
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		conds := func() []metav1.Condition { return gw.Status.Conditions }
		Eventually(condition(gw, conds, v1alpha1.ConditionSecretsResolved)).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Message", ContainSubstring(`Secret "oauth" key "client-secret"`)),
		))
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "oauth"},
			StringData: map[string]string{"client-secret": "x", "cookie-secret": "0123456789abcdef"}})).To(Succeed())
		Eventually(condition(gw, conds, v1alpha1.ConditionSecretsResolved)).Should(HaveField("Status", metav1.ConditionTrue))
	})

	It("carries allowlist edits into the emails file and the gateway config", func() {
		f := newFamily(noPrometheusOperator())
		f.waitReady()
		ual := &v1alpha1.UserAllowlist{}
		Expect(k8sClient.Get(ctx, f.key("family"), ual)).To(Succeed())
		ual.Spec.Users = append(ual.Spec.Users, v1alpha1.AllowedUser{Email: "carol@example.com"})
		Expect(k8sClient.Update(ctx, ual)).To(Succeed())
		Eventually(func(g Gomega) string {
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, f.key(render.EmailsConfigMapName(f.gw)), cm)).To(Succeed())
			return strings.Join(mapValues(cm.Data), "")
		}).Should(ContainSubstring("alice@example.com\nbob@example.com\ncarol@example.com\n"))
		Eventually(func(g Gomega) string {
			cm := &corev1.ConfigMap{}
			g.Expect(k8sClient.Get(ctx, f.key(render.ConfigMapName(f.gw)), cm)).To(Succeed())
			return cm.Data[gc.ConfigFileName]
		}).Should(ContainSubstring("carol@example.com"))
	})

	It("recreates a deleted child", func() {
		f := newFamily(noPrometheusOperator())
		f.waitReady()
		svc := &corev1.Service{}
		Expect(k8sClient.Get(ctx, f.key(render.ServiceName(f.gw)), svc)).To(Succeed())
		uid := svc.UID
		Expect(k8sClient.Delete(ctx, svc)).To(Succeed())
		Eventually(func(g Gomega) types.UID {
			g.Expect(k8sClient.Get(ctx, f.key(render.ServiceName(f.gw)), svc)).To(Succeed())
			return svc.UID
		}).ShouldNot(Equal(uid))
	})

	It("renders the LiteLLM config for an OpenAI-compatible provider", func() {
		ns := newNamespace()
		mp := &v1alpha1.ModelProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "litellm-bedrock"},
			Spec: v1alpha1.ModelProviderSpec{
				Type: v1alpha1.ProviderOpenAICompatible, BaseURL: "http://litellm:4000",
				Models: []v1alpha1.ModelSpec{{Name: "nova-micro", ID: "nova-micro",
					Pricing: v1alpha1.ModelPricing{InputPerMTok: "0.035", OutputPerMTok: "0.14"}}},
				LiteLLM: &v1alpha1.LiteLLMSpec{ConfigMapName: "litellm-config",
					Models: []v1alpha1.LiteLLMModel{{Name: "nova-micro",
						Params: map[string]string{"model": "bedrock/us.amazon.nova-micro-v1:0", "aws_region_name": "us-east-1"}}}},
			},
		}
		Expect(k8sClient.Create(ctx, mp)).To(Succeed())
		cm := &corev1.ConfigMap{}
		Eventually(func() error {
			return k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "litellm-config"}, cm)
		}).Should(Succeed())
		Expect(cm.Data[render.LiteLLMConfigKey]).To(ContainSubstring("model_name: nova-micro"))
		Expect(metav1.GetControllerOf(cm).Name).To(Equal("litellm-bedrock"))
	})
})

// The monitoring CRDs are installed part-way through, so this container runs
// its specs in order and last: the other specs run without Prometheus Operator.
var _ = Describe("ChatGateway monitoring", Ordered, func() {
	var f *family
	It("says CRDNotInstalled while Prometheus Operator's CRDs are missing", func() {
		f = newFamily(v1alpha1.MonitoringSpec{
			ServiceMonitor:   v1alpha1.ServiceMonitorSpec{Enabled: true},
			Alerts:           v1alpha1.AlertsSpec{Enabled: true},
			GrafanaDashboard: v1alpha1.GrafanaDashboardSpec{Enabled: true},
		})
		Eventually(condition(f.gw, func() []metav1.Condition { return f.gw.Status.Conditions }, v1alpha1.ConditionMonitoringReady)).
			Should(And(
				HaveField("Status", metav1.ConditionFalse),
				HaveField("Reason", v1alpha1.ReasonCRDNotInstalled),
				HaveField("Message", ContainSubstring("servicemonitors.monitoring.coreos.com")),
			))
	})

	It("makes the ServiceMonitor and PrometheusRule once the CRDs are installed and served, without a restart", func() {
		// Discovery lags behind the CRDs' Established condition, as it can on
		// a busy API server: the CRD events find the group not served yet.
		monitoringDiscoveryLags.Store(true)
		DeferCleanup(func() { monitoringDiscoveryLags.Store(false) })
		_, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
			Paths: []string{filepath.Join("..", "test", "crds", "monitoring")}, ErrorIfPathMissing: true,
		})
		Expect(err).NotTo(HaveOccurred())
		Eventually(condition(f.gw, func() []metav1.Condition { return f.gw.Status.Conditions }, v1alpha1.ConditionMonitoringReady)).
			Should(And(
				HaveField("Status", metav1.ConditionFalse),
				HaveField("Reason", v1alpha1.ReasonCRDNotServed),
				HaveField("Message", And(ContainSubstring("servicemonitors.monitoring.coreos.com"), ContainSubstring("installed but not served yet"))),
			))
		// Discovery catches up; no event says so, the gateway looks again.
		monitoringDiscoveryLags.Store(false)
		Eventually(func() error {
			return k8sClient.Get(ctx, f.key(render.ServiceMonitorName(f.gw)), &monitoringv1.ServiceMonitor{})
		}).Should(Succeed())
		rule := &monitoringv1.PrometheusRule{}
		Eventually(func() error { return k8sClient.Get(ctx, f.key(render.PrometheusRuleName(f.gw)), rule) }).Should(Succeed())
		Expect(metav1.GetControllerOf(rule).Name).To(Equal("family"))
		f.waitReady()
	})
})

func eventsIn(ns string) func(g Gomega) []eventsv1.Event {
	return func(g Gomega) []eventsv1.Event {
		list := &eventsv1.EventList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		return list.Items
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func nsName(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}
