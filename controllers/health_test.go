package controllers

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	lua "github.com/yuin/gopher-lua"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

// argoHealthScript is the Argo CD health check the project ships.
var argoHealthScript = func() string {
	b, err := os.ReadFile(filepath.Join("..", "config", "argocd", "health.lua"))
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// argoHealth runs the script as Argo CD does: gopher-lua, the object in the
// global obj, the script's returned table read for status and message.
func argoHealth(u *unstructured.Unstructured) (string, string) {
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, u.Object))
	ExpectWithOffset(1, L.DoString(argoHealthScript)).To(Succeed())
	hs, ok := L.Get(-1).(*lua.LTable)
	ExpectWithOffset(1, ok).To(BeTrue(), "the script must return a table")
	return hs.RawGetString("status").String(), hs.RawGetString("message").String()
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch t := v.(type) {
	case map[string]any:
		tbl := L.NewTable()
		for k, e := range t {
			tbl.RawSetString(k, toLua(L, e))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, e := range t {
			tbl.Append(toLua(L, e))
		}
		return tbl
	case string:
		return lua.LString(t)
	case bool:
		return lua.LBool(t)
	case int64:
		return lua.LNumber(t)
	case float64:
		return lua.LNumber(t)
	case nil:
		return lua.LNil
	}
	Fail("unexpected JSON value")
	return lua.LNil
}

// verdict is what Ready, kstatus (Flux) and the Argo CD script say of an
// object as the API server has it.
type verdict struct {
	ready              metav1.ConditionStatus
	kstatus, argo, why string
}

func judge(obj client.Object) verdict {
	u := &unstructured.Unstructured{}
	gvk, err := apiutil.GVKForObject(obj, scheme)
	Expect(err).NotTo(HaveOccurred())
	u.SetGroupVersionKind(gvk)
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), u)).To(Succeed())
	res, err := status.Compute(u)
	Expect(err).NotTo(HaveOccurred())
	argo, msg := argoHealth(u)
	v := verdict{ready: metav1.ConditionUnknown, kstatus: res.Status.String(), argo: argo, why: res.Message + " | " + msg}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m := c.(map[string]any)
		if m["type"] == v1alpha1.ConditionReady && m["observedGeneration"] == u.GetGeneration() {
			v.ready = metav1.ConditionStatus(m["status"].(string))
		}
	}
	return v
}

// The three must agree: Ready=True for the current generation is Current
// and Healthy, Stalled is Failed and Degraded, anything else is InProgress
// and Progressing.
func agreeOn(obj client.Object, want string) func(Gomega) {
	return func(g Gomega) {
		v := judge(obj)
		switch want {
		case "Current":
			g.Expect(v).To(Equal(verdict{ready: metav1.ConditionTrue, kstatus: "Current", argo: "Healthy", why: v.why}))
		case "Failed":
			g.Expect(v).To(Equal(verdict{ready: metav1.ConditionFalse, kstatus: "Failed", argo: "Degraded", why: v.why}))
		case "InProgress":
			g.Expect(v.ready).NotTo(Equal(metav1.ConditionTrue), v.why)
			g.Expect([]string{v.kstatus, v.argo}).To(Equal([]string{"InProgress", "Progressing"}), v.why)
		}
	}
}

var _ = Describe("Status as GitOps tools read it", func() {
	It("agrees with kstatus and the Argo CD health check through create, rollout, a failing step and recovery", func() {
		ns := newNamespace()
		nsObj := &corev1.Namespace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: ns}, nsObj)).To(Succeed())
		nsObj.Labels[manualRolloutLabel] = "true"
		Expect(k8sClient.Update(ctx, nsObj)).To(Succeed())

		mp := anthropicProvider(ns, "anthropic", nil)
		ual := &v1alpha1.UserAllowlist{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "family"},
			Spec: v1alpha1.UserAllowlistSpec{Users: []v1alpha1.AllowedUser{{Email: "alice@example.com"}}}}
		gw := &v1alpha1.ChatGateway{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "family"},
			Spec: v1alpha1.ChatGatewaySpec{
				Providers: []v1alpha1.LocalRef{{Name: "anthropic"}}, DefaultModel: "sonnet",
				Auth:       v1alpha1.AuthSpec{AllowlistRef: v1alpha1.LocalRef{Name: "family"}},
				Monitoring: noPrometheusOperator(),
			},
		}
		By("creating it: before and after the operator has seen it, nothing serves yet")
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		agreeOn(gw, "InProgress")(Default)
		Expect(k8sClient.Create(ctx, mp)).To(Succeed())
		Expect(k8sClient.Create(ctx, ual)).To(Succeed())
		Eventually(agreeOn(mp, "Current")).Should(Succeed())
		Eventually(agreeOn(ual, "Current")).Should(Succeed())
		d := &appsv1.Deployment{}
		Eventually(func() error { return k8sClient.Get(ctx, nsName(ns, render.DeploymentName(gw)), d) }).Should(Succeed())
		Eventually(condition(gw, func() []metav1.Condition { return gw.Status.Conditions }, v1alpha1.ConditionGatewayAvailable)).
			Should(HaveField("Reason", v1alpha1.ReasonRollingOut))
		Consistently(agreeOn(gw, "InProgress"), time.Second).Should(Succeed())
		Expect(meta.IsStatusConditionTrue(gw.Status.Conditions, v1alpha1.ConditionReconciling)).To(BeTrue())

		By("the Deployment controller creating the pod, not yet available")
		Expect(writeRollout(ctx, k8sClient, d, 1, 0)).To(Succeed())
		Eventually(condition(gw, func() []metav1.Condition { return gw.Status.Conditions }, v1alpha1.ConditionGatewayAvailable)).
			Should(HaveField("Message", ContainSubstring("0 of 1 updated pods available")))
		agreeOn(gw, "InProgress")(Default)

		By("the pod becoming available")
		Expect(writeRollout(ctx, k8sClient, d, 1, 1)).To(Succeed())
		Eventually(agreeOn(gw, "Current")).Should(Succeed())

		By("a spec change rolling the pods")
		changeSpec(gw, func(gw *v1alpha1.ChatGateway) {
			gw.Spec.Sessions.IdleTimeout = &metav1.Duration{Duration: 30 * time.Minute}
		})
		Eventually(func(g Gomega) int64 {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			return d.Generation
		}).Should(BeNumerically(">", d.Status.ObservedGeneration))
		Eventually(agreeOn(gw, "InProgress")).Should(Succeed())
		Expect(writeRollout(ctx, k8sClient, d, 1, 1)).To(Succeed())
		Eventually(agreeOn(gw, "Current")).Should(Succeed())

		By("a policy refusing the next Deployment: a failing step")
		policy := &admissionv1.ValidatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "freeze-" + ns},
			Spec: admissionv1.ValidatingAdmissionPolicySpec{
				FailurePolicy: ptr.To(admissionv1.Fail),
				MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionv1.RuleWithOperations{
						Operations: []admissionv1.OperationType{admissionv1.Update, admissionv1.Create},
						Rule:       admissionv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}},
					},
				}}},
				Validations: []admissionv1.Validation{{Expression: "false", Message: "Deployments are frozen in this namespace"}},
			},
		}
		binding := &admissionv1.ValidatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "freeze-" + ns},
			Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        policy.Name,
				ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
				MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
					MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}},
			},
		}
		Expect(k8sClient.Create(ctx, policy)).To(Succeed())
		Expect(k8sClient.Create(ctx, binding)).To(Succeed())
		// The policy takes effect once the API server has compiled it.
		Eventually(func() error {
			probe := &appsv1.Deployment{}
			Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), probe)).To(Succeed())
			probe.Labels["test.chatgateway.dev/probe"] = "x"
			return k8sClient.Update(ctx, probe, client.DryRunAll)
		}).Should(MatchError(ContainSubstring("frozen")))
		changeSpec(gw, func(gw *v1alpha1.ChatGateway) {
			gw.Spec.Sessions.IdleTimeout = &metav1.Duration{Duration: 45 * time.Minute}
		})
		Eventually(agreeOn(gw, "Failed")).Should(Succeed())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(gw), gw)).To(Succeed())
		ready := meta.FindStatusCondition(gw.Status.Conditions, v1alpha1.ConditionReady)
		Expect(ready.Reason).To(Equal(v1alpha1.ReasonApplyFailed))
		Expect(ready.Message).To(ContainSubstring(`Deployment "family-gateway"`))
		Expect(meta.IsStatusConditionTrue(gw.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())
		Expect(gw.Status.ObservedGeneration).To(Equal(gw.Generation), "a stalled generation is observed")

		By("lifting the policy: the operator retries, rolls out and is Ready again")
		Expect(k8sClient.Delete(ctx, binding)).To(Succeed())
		Expect(k8sClient.Delete(ctx, policy)).To(Succeed())
		Eventually(func(g Gomega) int64 {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			return d.Generation - d.Status.ObservedGeneration
		}, 2*time.Minute).Should(BeNumerically(">", 0))
		Eventually(agreeOn(gw, "InProgress")).Should(Succeed())
		Expect(writeRollout(ctx, k8sClient, d, 1, 1)).To(Succeed())
		Eventually(agreeOn(gw, "Current")).Should(Succeed())
	})

	It("ships the Argo CD health check that README shows", func() {
		readme, err := os.ReadFile(filepath.Join("..", "README.md"))
		Expect(err).NotTo(HaveOccurred())
		var indented []string
		for _, line := range strings.Split(argoHealthScript, "\n") {
			if line == "" {
				indented = append(indented, "")
				continue
			}
			indented = append(indented, "    "+line)
		}
		Expect(string(readme)).To(ContainSubstring("resource.customizations.health.chatgateway.dev_*: |\n" + strings.Join(indented, "\n")))
	})
})
