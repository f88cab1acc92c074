package controllers

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

var _ = Describe("The session store", func() {
	It("gives the Embedded store a claim, the master key and a Recreate strategy", func() {
		f := newFamily(noPrometheusOperator())
		f.waitReady()
		pvc := &corev1.PersistentVolumeClaim{}
		Expect(k8sClient.Get(ctx, f.key(render.PVCName(f.gw)), pvc)).To(Succeed())
		Expect(pvc.Spec.Resources.Requests.Storage().String()).To(Equal("1Gi"))
		d := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, f.key(render.DeploymentName(f.gw)), d)).To(Succeed())
		Expect(d.Spec.Strategy.Type).To(Equal(appsv1.RecreateDeploymentStrategyType),
			"two pods must never write one SQLite file")
		Expect(mountPaths(d)).To(ContainElements(gc.StoreDataDir, gc.KeysDir))
	})

	It("keeps the conversations' claim when asked to, and hands it back to the gateway when not", func() {
		f := newFamily(noPrometheusOperator())
		f.waitReady()
		claim := func(g Gomega) *corev1.PersistentVolumeClaim {
			pvc := &corev1.PersistentVolumeClaim{}
			g.Expect(k8sClient.Get(ctx, f.key(render.PVCName(f.gw)), pvc)).To(Succeed())
			return pvc
		}
		owned := func(g Gomega) bool { return metav1.IsControlledBy(claim(g), f.gw) }
		Eventually(owned).Should(BeTrue(), "by default the claim goes with the gateway")

		setPolicy := func(p v1alpha1.ClaimRetention) {
			Eventually(func() error {
				if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(f.gw), f.gw); err != nil {
					return err
				}
				f.gw.Spec.Sessions.Store.WhenDeleted = p
				return k8sClient.Update(ctx, f.gw)
			}).Should(Succeed())
		}
		keysOwned := func(g Gomega) bool {
			s := &corev1.Secret{}
			g.Expect(k8sClient.Get(ctx, f.key(render.KeysSecretName(f.gw)), s)).To(Succeed())
			return metav1.IsControlledBy(s, f.gw)
		}
		Eventually(keysOwned).Should(BeTrue(), "by default the master key goes with the gateway")
		setPolicy(v1alpha1.ClaimRetain)
		Eventually(owned).Should(BeFalse(), "a retained claim must not be garbage-collected with the gateway")
		Eventually(keysOwned).Should(BeFalse(), "nor the master key that decrypts it")
		Expect(claim(Default).Labels).To(HaveKeyWithValue(render.LabelManagedBy, render.ManagedBy))

		setPolicy(v1alpha1.ClaimDelete)
		Eventually(owned).Should(BeTrue())
		Eventually(keysOwned).Should(BeTrue())
	})

	It("reports a malformed master key, never replaces it, and rolls no pods until it is restored", func() {
		f := newFamily(noPrometheusOperator())
		f.waitReady()
		keys := &corev1.Secret{}
		Expect(k8sClient.Get(ctx, f.key(render.KeysSecretName(f.gw)), keys)).To(Succeed())
		good := keys.Data[gc.MasterKeyKey]
		d := &appsv1.Deployment{}
		Expect(k8sClient.Get(ctx, f.key(render.DeploymentName(f.gw)), d)).To(Succeed())
		generation := d.Generation

		By("a restore gone wrong: the key base64-encoded twice, 44 bytes")
		keys.Data[gc.MasterKeyKey] = []byte("c2VjcmV0LW1hc3Rlci1rZXktYmFzZTY0LXR3aWNlISEhIQ==")[:44]
		Expect(k8sClient.Update(ctx, keys)).To(Succeed())
		conds := func() []metav1.Condition { return f.gw.Status.Conditions }
		Eventually(condition(f.gw, conds, v1alpha1.ConditionKeysReady)).Should(And(
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", v1alpha1.ReasonMalformedKey),
			HaveField("Message", ContainSubstring("44 bytes")),
			HaveField("Message", Not(ContainSubstring("c2VjcmV0"))),
		))
		Eventually(condition(f.gw, conds, v1alpha1.ConditionReady)).Should(And(
			HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonMalformedKey)))
		Expect(meta.IsStatusConditionTrue(f.gw.Status.Conditions, v1alpha1.ConditionStalled)).To(BeTrue())

		By("a spec change meanwhile: the pods are not rolled onto the bad key")
		changeSpec(f.gw, func(gw *v1alpha1.ChatGateway) {
			gw.Spec.Sessions.IdleTimeout = &metav1.Duration{Duration: 30 * time.Minute}
		})
		Eventually(func(g Gomega) int64 {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(f.gw), f.gw)).To(Succeed())
			return f.gw.Status.ObservedGeneration
		}).Should(Equal(f.gw.Generation))
		Consistently(func(g Gomega) int64 {
			g.Expect(k8sClient.Get(ctx, f.key(render.DeploymentName(f.gw)), d)).To(Succeed())
			return d.Generation
		}, 2*time.Second).Should(Equal(generation))
		Expect(k8sClient.Get(ctx, f.key(render.KeysSecretName(f.gw)), keys)).To(Succeed())
		Expect(keys.Data[gc.MasterKeyKey]).To(HaveLen(44), "the operator must never replace a key")

		By("restoring the key from the backup")
		keys.Data[gc.MasterKeyKey] = good
		Expect(k8sClient.Update(ctx, keys)).To(Succeed())
		f.waitReady()
		Expect(k8sClient.Get(ctx, f.key(render.DeploymentName(f.gw)), d)).To(Succeed())
		Expect(d.Generation).To(BeNumerically(">", generation), "the spec change reaches the pods once the key is back")
	})

	It("creates a retained claim without an owner", func() {
		ns := newNamespace()
		Expect(k8sClient.Create(ctx, anthropicProvider(ns, "anthropic", nil))).To(Succeed())
		gw := &v1alpha1.ChatGateway{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kept"},
			Spec: v1alpha1.ChatGatewaySpec{
				Providers: []v1alpha1.LocalRef{{Name: "anthropic"}}, DefaultModel: "sonnet",
				Auth:       v1alpha1.AuthSpec{AllowlistRef: v1alpha1.LocalRef{Name: "kept"}},
				Sessions:   v1alpha1.SessionsSpec{Store: v1alpha1.StoreSpec{WhenDeleted: v1alpha1.ClaimRetain}},
				Monitoring: noPrometheusOperator(),
			},
		}
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		pvc := &corev1.PersistentVolumeClaim{}
		Eventually(func() error { return k8sClient.Get(ctx, nsName(ns, render.PVCName(gw)), pvc) }).Should(Succeed())
		Expect(pvc.OwnerReferences).To(BeEmpty())
	})

	It("wires the Postgres DSN Secret into the pods, with no claim, for several replicas", func() {
		ns := newNamespace()
		Expect(k8sClient.Create(ctx, anthropicProvider(ns, "anthropic", nil))).To(Succeed())
		Expect(k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chat-db"},
			StringData: map[string]string{"dsn": "postgres://chat:canary-password@db/chat"}})).To(Succeed())
		gw := &v1alpha1.ChatGateway{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team"},
			Spec: v1alpha1.ChatGatewaySpec{
				Replicas:  ptr.To[int32](3),
				Providers: []v1alpha1.LocalRef{{Name: "anthropic"}}, DefaultModel: "sonnet",
				Auth: v1alpha1.AuthSpec{AllowlistRef: v1alpha1.LocalRef{Name: "team"}},
				Sessions: v1alpha1.SessionsSpec{Store: v1alpha1.StoreSpec{
					Type: v1alpha1.StorePostgres, DSNSecretRef: &v1alpha1.SecretKeyRef{Name: "chat-db", Key: "dsn"}}},
				Monitoring: noPrometheusOperator(),
			},
		}
		Expect(k8sClient.Create(ctx, gw)).To(Succeed())
		d := &appsv1.Deployment{}
		Eventually(func() error { return k8sClient.Get(ctx, nsName(ns, render.DeploymentName(gw)), d) }).Should(Succeed())
		Expect(*d.Spec.Replicas).To(BeEquivalentTo(3))
		Expect(d.Spec.Strategy.Type).To(Equal(appsv1.RollingUpdateDeploymentStrategyType))
		Expect(mountPaths(d)).To(ContainElement(gc.StoreSecretDir))
		Expect(mountPaths(d)).NotTo(ContainElement(gc.StoreDataDir))

		var dsnVolume *corev1.Volume
		for i, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == "chat-db" {
				dsnVolume = &d.Spec.Template.Spec.Volumes[i]
			}
		}
		Expect(dsnVolume).NotTo(BeNil())
		Expect(dsnVolume.Secret.Items).To(ConsistOf(corev1.KeyToPath{Key: "dsn", Path: gc.StoreDSNFileName, Mode: dsnVolume.Secret.Items[0].Mode}))

		cm := &corev1.ConfigMap{}
		Expect(k8sClient.Get(ctx, nsName(ns, render.ConfigMapName(gw)), cm)).To(Succeed())
		conf, err := gc.Parse([]byte(cm.Data[gc.ConfigFileName]))
		Expect(err).NotTo(HaveOccurred())
		Expect(conf.Sessions.Store.DSNFile).To(Equal(gc.StoreSecretDir + "/" + gc.StoreDSNFileName))
		Expect(cm.Data[gc.ConfigFileName]).NotTo(ContainSubstring("canary-password"))

		err = k8sClient.Get(ctx, nsName(ns, render.PVCName(gw)), &corev1.PersistentVolumeClaim{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a Postgres gateway needs no claim")
	})
})

func mountPaths(d *appsv1.Deployment) []string {
	var paths []string
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		paths = append(paths, m.MountPath)
	}
	return paths
}
