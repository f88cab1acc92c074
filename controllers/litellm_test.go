package controllers

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

var _ = Describe("LiteLLM run by the operator", func() {
	It("runs LiteLLM with its config, rolls it when the provider or its credentials change, and is Ready only when it is available", func() {
		ns := newNamespace()
		nsObj := &corev1.Namespace{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: ns}, nsObj)).To(Succeed())
		nsObj.Labels[manualRolloutLabel] = "true"
		Expect(k8sClient.Update(ctx, nsObj)).To(Succeed())
		for name, data := range map[string]map[string]string{
			"litellm-master-key": {"api-key": "sk-litellm-canary"},
			"aws-bedrock":        {"AWS_ACCESS_KEY_ID": "AKIACANARY", "AWS_SECRET_ACCESS_KEY": "canary-secret", "AWS_REGION": "us-east-1"},
		} {
			Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data})).To(Succeed())
		}
		mp := &v1alpha1.ModelProvider{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "litellm-bedrock"},
			Spec: v1alpha1.ModelProviderSpec{
				Type: v1alpha1.ProviderOpenAICompatible, BaseURL: "http://litellm-bedrock-litellm:4000",
				APIKeySecretRef: &v1alpha1.SecretKeyRef{Name: "litellm-master-key", Key: "api-key"},
				Models: []v1alpha1.ModelSpec{{Name: "nova-micro", ID: "nova-micro",
					Pricing: v1alpha1.ModelPricing{InputPerMTok: "0.035", OutputPerMTok: "0.14"}}},
				LiteLLM: &v1alpha1.LiteLLMSpec{
					Settings: v1alpha1.LiteLLMSettings{SuccessCallback: []string{"prometheus"}},
					Models: []v1alpha1.LiteLLMModel{{Name: "nova-micro",
						Params: map[string]string{"model": "bedrock/us.amazon.nova-micro-v1:0", "aws_region_name": "us-east-1"}}},
					Deployment: &v1alpha1.LiteLLMDeploymentSpec{EnvSecretRef: &v1alpha1.LocalRef{Name: "aws-bedrock"}},
				},
			},
		}
		Expect(k8sClient.Create(ctx, mp)).To(Succeed())
		conds := func() []metav1.Condition { return mp.Status.Conditions }
		d := &appsv1.Deployment{}
		key := nsName(ns, render.LiteLLMName(mp))
		Eventually(func() error { return k8sClient.Get(ctx, key, d) }).Should(Succeed())
		Expect(k8sClient.Get(ctx, key, &corev1.Service{})).To(Succeed())
		Expect(metav1.GetControllerOf(d).Name).To(Equal(mp.Name))
		Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal(render.DefaultLiteLLMImage), "the CRD defaults the image")
		cm := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, nsName(ns, render.LiteLLMConfigMapName(mp)), cm)).To(Succeed())
		Expect(cm.Data[render.LiteLLMConfigKey]).To(And(ContainSubstring("telemetry: false"), ContainSubstring(`success_callback: ["prometheus"]`)))
		for _, v := range cm.Data {
			Expect(v).NotTo(ContainSubstring("canary"))
		}
		Eventually(condition(mp, conds, v1alpha1.ConditionLiteLLMAvailable)).Should(HaveField("Reason", v1alpha1.ReasonRollingOut))
		Eventually(condition(mp, conds, v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionFalse))

		By("LiteLLM becoming available")
		Expect(writeRollout(ctx, k8sClient, d, 1, 1)).To(Succeed())
		Eventually(condition(mp, conds, v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
		hash := d.Spec.Template.Annotations[render.AnnotationConfigHash]
		envVersion := d.Spec.Template.Annotations[render.AnnotationEnvSecretVersion]
		Expect(hash).NotTo(BeEmpty())
		Expect(envVersion).NotTo(BeEmpty())

		By("changing the provider: the config changes and LiteLLM rolls")
		update(mp, func() { mp.Spec.LiteLLM.Models[0].Params["aws_region_name"] = "eu-west-1" })
		Eventually(func(g Gomega) string {
			g.Expect(k8sClient.Get(ctx, key, d)).To(Succeed())
			return d.Spec.Template.Annotations[render.AnnotationConfigHash]
		}).ShouldNot(Equal(hash))
		Eventually(condition(mp, conds, v1alpha1.ConditionLiteLLMAvailable)).Should(HaveField("Reason", v1alpha1.ReasonRollingOut))
		Expect(writeRollout(ctx, k8sClient, d, 1, 1)).To(Succeed())
		Eventually(condition(mp, conds, v1alpha1.ConditionReady)).Should(And(
			HaveField("Status", metav1.ConditionTrue), HaveField("ObservedGeneration", mp.Generation)))

		By("new AWS credentials: LiteLLM reads its environment once, so it rolls")
		s := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, nsName(ns, "aws-bedrock"), s)).To(Succeed())
		s.StringData = map[string]string{"AWS_SECRET_ACCESS_KEY": "rotated-canary"}
		Expect(k8sClient.Update(ctx, s)).To(Succeed())
		Eventually(func(g Gomega) string {
			g.Expect(k8sClient.Get(ctx, key, d)).To(Succeed())
			return d.Spec.Template.Annotations[render.AnnotationEnvSecretVersion]
		}).ShouldNot(Equal(envVersion))

		By("dropping deployment: back to the ConfigMap alone")
		update(mp, func() { mp.Spec.LiteLLM.Deployment = nil })
		Eventually(func() bool { return apierrors.IsNotFound(k8sClient.Get(ctx, key, &appsv1.Deployment{})) }).Should(BeTrue())
		Eventually(func() bool { return apierrors.IsNotFound(k8sClient.Get(ctx, key, &corev1.Service{})) }).Should(BeTrue())
		Eventually(condition(mp, conds, v1alpha1.ConditionReady)).Should(HaveField("Status", metav1.ConditionTrue))
		Expect(k8sClient.Get(ctx, nsName(ns, render.LiteLLMConfigMapName(mp)), cm)).To(Succeed())
	})
})

// update gets obj, changes it and updates it, again on a conflict with the
// operator's status writes.
func update(obj client.Object, change func()) {
	Eventually(func() error {
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		return k8sClient.Update(ctx, obj)
	}).Should(Succeed())
}
