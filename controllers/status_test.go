package controllers

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// newNamespace gives each spec its own namespace so specs cannot see each other.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "spec-"}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func condition(obj client.Object, conds func() []metav1.Condition, typ string) func(g Gomega) *metav1.Condition {
	return func(g Gomega) *metav1.Condition {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		c := meta.FindStatusCondition(conds(), typ)
		g.Expect(c).NotTo(BeNil(), "condition %s not set yet", typ)
		return c
	}
}

func anthropicProvider(ns, name string, secret *v1alpha1.SecretKeyRef) *v1alpha1.ModelProvider {
	return &v1alpha1.ModelProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ModelProviderSpec{
			Type:            v1alpha1.ProviderAnthropic,
			APIKeySecretRef: secret,
			Models: []v1alpha1.ModelSpec{{
				Name: "sonnet", ID: "claude-sonnet-4-5-20250929",
				Pricing: v1alpha1.ModelPricing{InputPerMTok: "3.00", OutputPerMTok: "15.00"},
			}},
		},
	}
}

// noPrometheusOperator turns off the children that need Prometheus
// Operator's CRDs, which only the monitoring spec installs.
func noPrometheusOperator() v1alpha1.MonitoringSpec {
	return v1alpha1.MonitoringSpec{GrafanaDashboard: v1alpha1.GrafanaDashboardSpec{Enabled: true}}
}

var _ = Describe("ModelProvider status", func() {
	It("reports a missing Secret by name and key, and resolves it when the Secret appears", func() {
		ns := newNamespace()
		mp := anthropicProvider(ns, "anthropic", &v1alpha1.SecretKeyRef{Name: "anthropic-api-key", Key: "api-key"})
		Expect(k8sClient.Create(ctx, mp)).To(Succeed())
		conds := func() []metav1.Condition { return mp.Status.Conditions }

		Eventually(condition(mp, conds, v1alpha1.ConditionSecretResolved)).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", v1alpha1.ReasonSecretNotFound),
			HaveField("Message", ContainSubstring(`Secret "anthropic-api-key" not found`)),
			HaveField("Message", ContainSubstring(`"api-key"`)),
		))
		Expect(meta.IsStatusConditionFalse(mp.Status.Conditions, v1alpha1.ConditionReady)).To(BeTrue())

		By("creating the Secret without the key")
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "anthropic-api-key"},
			Data:       map[string][]byte{"other": []byte("x")},
		}
		Expect(k8sClient.Create(ctx, secret)).To(Succeed())
		Eventually(condition(mp, conds, v1alpha1.ConditionSecretResolved)).Should(
			HaveField("Reason", v1alpha1.ReasonKeyNotFound))

		By("adding the key")
		secret.Data["api-key"] = []byte("sk-ant-canary-never-in-status")
		Expect(k8sClient.Update(ctx, secret)).To(Succeed())
		Eventually(condition(mp, conds, v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(mp.Status.Models).To(Equal([]string{"sonnet"}))
		Expect(mp.Status.ModelCount).To(BeEquivalentTo(1))
		Expect(mp.Status.BaseURL).To(Equal(v1alpha1.DefaultAnthropicBaseURL))
		Expect(mp.Status.ObservedGeneration).To(Equal(mp.Generation))
		Expect(fmt.Sprintf("%+v", mp.Status)).NotTo(ContainSubstring("canary"))
	})
})

var _ = Describe("UserAllowlist status", func() {
	It("counts users and lists the admins", func() {
		ns := newNamespace()
		ual := &v1alpha1.UserAllowlist{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "family"},
			Spec: v1alpha1.UserAllowlistSpec{Users: []v1alpha1.AllowedUser{
				{Email: "bob@example.com"}, {Email: "alice@example.com", Role: v1alpha1.RoleAdmin},
			}},
		}
		Expect(k8sClient.Create(ctx, ual)).To(Succeed())
		Eventually(condition(ual, func() []metav1.Condition { return ual.Status.Conditions }, v1alpha1.ConditionReady)).
			Should(HaveField("Status", metav1.ConditionTrue))
		Expect(ual.Status.UserCount).To(BeEquivalentTo(2))
		Expect(ual.Status.Admins).To(Equal([]string{"alice@example.com"}))
	})
})

var _ = Describe("ChatGateway status", func() {
	It("says which provider and allowlist are missing, and turns Ready when they exist", func() {
		ns := newNamespace()
		gw := &v1alpha1.ChatGateway{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "family"},
			Spec: v1alpha1.ChatGatewaySpec{
				Providers:    []v1alpha1.LocalRef{{Name: "anthropic"}},
				DefaultModel: "sonnet",
				Auth:         v1alpha1.AuthSpec{AllowlistRef: v1alpha1.LocalRef{Name: "family"}},
				Monitoring:   noPrometheusOperator(),
			},
		}
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		conds := func() []metav1.Condition { return gw.Status.Conditions }
		Eventually(condition(gw, conds, v1alpha1.ConditionProvidersReady)).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Message", ContainSubstring(`ModelProvider "anthropic" not found`)),
		))
		Eventually(condition(gw, conds, v1alpha1.ConditionAllowlistReady)).Should(
			HaveField("Message", ContainSubstring(`UserAllowlist "family" not found`)))
		Eventually(condition(gw, conds, v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionFalse))

		By("creating the provider and the allowlist")
		Expect(k8sClient.Create(ctx, anthropicProvider(ns, "anthropic", nil))).To(Succeed())
		Expect(k8sClient.Create(ctx, &v1alpha1.UserAllowlist{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "family"},
			Spec:       v1alpha1.UserAllowlistSpec{Users: []v1alpha1.AllowedUser{{Email: "alice@example.com"}}},
		})).To(Succeed())
		Eventually(condition(gw, conds, v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(gw.Status.ObservedGeneration).To(Equal(gw.Generation))

		By("naming a default model no provider serves")
		changeSpec(gw, func(gw *v1alpha1.ChatGateway) { gw.Spec.DefaultModel = "gpt-9" })
		Eventually(condition(gw, conds, v1alpha1.ConditionProvidersReady)).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Message", ContainSubstring(`defaultModel "gpt-9"`)),
		))
	})
})
