package controllers

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

func (st *gatewayState) inputs(image string) render.Inputs {
	if st.gw.Spec.Image != "" {
		image = st.gw.Spec.Image
	}
	return render.Inputs{
		Gateway: st.gw, Providers: st.providers, Allowlist: st.allowlist,
		Image: image, TokenGeneration: st.tokenGeneration, GatewayYAML: st.gatewayYAML,
	}
}

// fingerprint identifies what the children are rendered from: the
// gateway's identity and spec (its generation: the CRD has a status
// subresource, so only spec changes move it), the providers' and the
// allowlist's, the image and the token generation. The renderers read
// nothing else, so two reconciles with the same fingerprint render the same
// children, and a child still as our last apply at that fingerprint left it
// needs neither a render nor a request (applier.upToDate).
func (st *gatewayState) fingerprint(image string) string {
	if st.inputsKey != "" {
		return st.inputsKey
	}
	gw := st.gw
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%s\x00%s\x00%s", gw.UID, gw.Generation, gw.Spec.Image, image, st.tokenGeneration)
	for _, p := range st.providers {
		fmt.Fprintf(h, "\x00provider\x00%s\x00%s\x00%d", p.Name, p.UID, p.Generation)
	}
	if al := st.allowlist; al != nil {
		fmt.Fprintf(h, "\x00allowlist\x00%s\x00%d", al.UID, al.Generation)
	}
	st.inputsKey = string(h.Sum(nil)[:16])
	return st.inputsKey
}

// upToDate reports whether the gateway's child of that kind and name is as
// our last apply from these same inputs left it (see applier.upToDate).
func (r *ChatGatewayReconciler) upToDate(ctx context.Context, st *gatewayState, gvk schema.GroupVersionKind, name string) (bool, error) {
	ok, err := r.applier.upToDate(ctx, gvk, types.NamespacedName{Namespace: st.gw.Namespace, Name: name}, st.fingerprint(r.GatewayImage))
	if err != nil {
		return false, failed(v1alpha1.ReasonReadFailed, fmt.Sprintf("reading %s %q", gvk.Kind, name), err)
	}
	return ok, nil
}

var (
	configMapGVK      = corev1.SchemeGroupVersion.WithKind("ConfigMap")
	serviceGVK        = corev1.SchemeGroupVersion.WithKind("Service")
	networkPolicyGVK  = networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy")
	serviceMonitorGVK = monitoringv1.SchemeGroupVersion.WithKind(monitoringv1.ServiceMonitorsKind)
	prometheusRuleGVK = monitoringv1.SchemeGroupVersion.WithKind(monitoringv1.PrometheusRuleKind)
)

// workloadReady reports whether the gateway can be rendered at all: without
// its providers there is no config to run it with.
func (st *gatewayState) workloadReady() bool {
	return len(st.providers) == len(st.gw.Spec.Providers) && st.tokenGeneration != ""
}

// reconcileGatewayConfig applies the gateway.yaml ConfigMap. A render error
// is reported on ProvidersReady: the fix is in the providers or the spec.
func (r *ChatGatewayReconciler) reconcileGatewayConfig(ctx context.Context, st *gatewayState) error {
	if !st.workloadReady() {
		return nil
	}
	if ok, err := r.upToDate(ctx, st, configMapGVK, render.ConfigMapName(st.gw)); err != nil || ok {
		return err
	}
	if b, err := render.GatewayConfigYAML(st.inputs(r.GatewayImage)); err == nil {
		st.gatewayYAML = b // for the Deployment's config hash too
	}
	cm, err := render.GatewayConfigMap(st.inputs(r.GatewayImage))
	if err != nil {
		st.renderErr = err
		if st.conds.byTyp[v1alpha1.ConditionProvidersReady].Status == metav1.ConditionFalse {
			return nil // it already says what to fix, in plainer words
		}
		st.conds.False(v1alpha1.ConditionProvidersReady, v1alpha1.ReasonRenderFailed, "Cannot build the gateway config: "+err.Error())
		return nil
	}
	return r.applyChild(ctx, st, cm)
}

// applyChild applies a child owned by the gateway, rendered from the
// gateway's inputs; a refusal is a failed step.
func (r *ChatGatewayReconciler) applyChild(ctx context.Context, st *gatewayState, obj client.Object) error {
	if _, err := r.applier.apply(ctx, st.gw, obj, st.fingerprint(r.GatewayImage)); err != nil {
		return failed(v1alpha1.ReasonApplyFailed, fmt.Sprintf("applying %s %q", kindOf(obj), obj.GetName()), err)
	}
	return nil
}

func kindOf(obj client.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	return fmt.Sprintf("%T", obj)
}

// reconcileEmails applies the OAuth2 Proxy ConfigMap: the authenticated-emails
// file from the allowlist and, with the sidecar on, its config.
func (r *ChatGatewayReconciler) reconcileEmails(ctx context.Context, st *gatewayState) error {
	if ok, err := r.upToDate(ctx, st, configMapGVK, render.EmailsConfigMapName(st.gw)); err != nil || ok {
		return err
	}
	cm, err := render.OAuth2ProxyConfigMap(st.inputs(r.GatewayImage))
	if err != nil {
		return failed(v1alpha1.ReasonRenderFailed, "rendering the OAuth2 Proxy ConfigMap", err)
	}
	return r.applyChild(ctx, st, cm)
}

// reconcilePVC creates the Embedded store's claim. It follows
// spec.sessions.store.whenDeleted (owned by the gateway unless Retain); on an
// existing claim only that ownership follows the spec, since a bound claim's
// spec is immutable but for growing. Switching to Postgres leaves a claim
// alone: it holds conversations.
func (r *ChatGatewayReconciler) reconcilePVC(ctx context.Context, st *gatewayState) error {
	pvc, err := render.PVC(st.inputs(r.GatewayImage))
	if err != nil || pvc == nil {
		return err
	}
	existing := &metav1.PartialObjectMetadata{}
	existing.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"))
	err = r.Get(ctx, client.ObjectKeyFromObject(pvc), existing)
	switch {
	case apierrors.IsNotFound(err):
		var owner client.Object
		if !retained(st.gw) {
			owner = st.gw
		}
		if _, err := r.applier.apply(ctx, owner, pvc, ""); err != nil {
			return failed(v1alpha1.ReasonApplyFailed, fmt.Sprintf("creating the store claim %q", pvc.Name), err)
		}
		return nil
	case err != nil:
		return failed(v1alpha1.ReasonReadFailed, "reading the store claim", err)
	}
	if err := r.followRetention(ctx, st.gw, existing); err != nil {
		return failed(v1alpha1.ReasonApplyFailed, fmt.Sprintf("changing the owner of the store claim %q", pvc.Name), err)
	}
	return nil
}

func retained(gw *v1alpha1.ChatGateway) bool {
	return gw.Spec.Sessions.Store.WhenDeleted == v1alpha1.ClaimRetain
}

// followRetention gives obj (the store claim or the keys Secret) an owner
// reference to the gateway, or takes it away, as whenDeleted says: what the
// garbage collector must not delete with the gateway has no owner.
func (r *ChatGatewayReconciler) followRetention(ctx context.Context, gw *v1alpha1.ChatGateway, obj client.Object) error {
	retain := retained(gw)
	if metav1.IsControlledBy(obj, gw) != retain {
		return nil
	}
	orig := obj.DeepCopyObject().(client.Object)
	if retain {
		if err := controllerutil.RemoveControllerReference(gw, obj, r.Scheme); err != nil {
			return err
		}
	} else if err := controllerutil.SetControllerReference(gw, obj, r.Scheme); err != nil {
		return err
	}
	if err := r.Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
		return err
	}
	r.applier.recordWrite(obj)
	return nil
}

// reconcileDeployment applies the gateway Deployment; observeRollout, the
// last step, sets GatewayAvailable from its rollout. Without providers, a
// token and a usable master key there is nothing to run, and a Deployment
// that exists is left as it is: its pods keep serving and are not rolled.
func (r *ChatGatewayReconciler) reconcileDeployment(ctx context.Context, st *gatewayState) error {
	const typ = v1alpha1.ConditionGatewayAvailable
	switch {
	case !st.workloadReady() || st.renderErr != nil:
		st.conds.Unknown(typ, v1alpha1.ReasonNotEvaluated, "The Deployment is applied once the providers and the token are ready")
		return nil
	case !st.keysOK:
		st.conds.Unknown(typ, v1alpha1.ReasonNotEvaluated, "The Deployment is left as it is, its pods not rolled, until KeysReady is True")
		return nil
	}
	key := types.NamespacedName{Namespace: st.gw.Namespace, Name: render.DeploymentName(st.gw)}
	if ok, err := r.upToDate(ctx, st, deploymentGVK, key.Name); err != nil {
		return err
	} else if ok {
		st.deployment = &deploymentApply{key: key}
		return nil
	}
	d, err := render.Deployment(st.inputs(r.GatewayImage))
	if err != nil {
		return failed(v1alpha1.ReasonRenderFailed, "rendering the Deployment", err)
	}
	applied, err := r.applier.apply(ctx, st.gw, d, st.fingerprint(r.GatewayImage))
	if err != nil {
		return failed(v1alpha1.ReasonApplyFailed, fmt.Sprintf("applying Deployment %q", d.Name), err)
	}
	st.deployment = &deploymentApply{key: key, applied: applied, replicas: d.Spec.Replicas}
	return nil
}

// deploymentApply is what reconcileDeployment leaves for observeRollout.
type deploymentApply struct {
	key      types.NamespacedName
	applied  *metav1.PartialObjectMetadata // nil when nothing was sent
	replicas *int32                        // as rendered, when applied
}

// observeRollout sets GatewayAvailable from the gateway Deployment's
// rollout as the Deployment controller reports it. It is the last step, so
// the status written reads the latest rollout the cache has seen.
func (r *ChatGatewayReconciler) observeRollout(ctx context.Context, st *gatewayState) error {
	if st.deployment == nil {
		return nil // reconcileDeployment said why
	}
	current, err := observedDeployment(ctx, r.Client, st.deployment.key, st.deployment.applied, st.deployment.replicas)
	if err != nil {
		return failed(v1alpha1.ReasonReadFailed, "reading the Deployment", err)
	}
	if current.Spec.Replicas != nil {
		st.gw.Status.Replicas = *current.Spec.Replicas
	}
	st.gw.Status.ReadyReplicas = current.Status.ReadyReplicas
	status, reason, msg := deploymentAvailability(current)
	st.conds.set(v1alpha1.ConditionGatewayAvailable, status, reason, msg)
	return nil
}

// reconcileService applies the Service and reports the gateway's URL.
func (r *ChatGatewayReconciler) reconcileService(ctx context.Context, st *gatewayState) error {
	svc, err := render.Service(st.inputs(r.GatewayImage)) // a cheap render, and the URL needs it
	if err != nil {
		return failed(v1alpha1.ReasonRenderFailed, "rendering the Service", err)
	}
	if ok, err := r.upToDate(ctx, st, serviceGVK, svc.Name); err != nil {
		return err
	} else if !ok {
		if err := r.applyChild(ctx, st, svc); err != nil {
			return err
		}
	}
	st.gw.Status.URL = fmt.Sprintf("http://%s.%s.svc:%d", svc.Name, svc.Namespace, svc.Spec.Ports[0].Port)
	return nil
}

// reconcileNetworkPolicy applies the policy that admits only the sidecar's
// port and token holders.
func (r *ChatGatewayReconciler) reconcileNetworkPolicy(ctx context.Context, st *gatewayState) error {
	if ok, err := r.upToDate(ctx, st, networkPolicyGVK, render.NetworkPolicyName(st.gw)); err != nil || ok {
		return err
	}
	np, err := render.NetworkPolicy(st.inputs(r.GatewayImage))
	if err != nil {
		return failed(v1alpha1.ReasonRenderFailed, "rendering the NetworkPolicy", err)
	}
	return r.applyChild(ctx, st, np)
}

// reconcileDashboard applies, or removes, the Grafana dashboard ConfigMap.
func (r *ChatGatewayReconciler) reconcileDashboard(ctx context.Context, st *gatewayState) error {
	gw := st.gw
	if !gw.Spec.Monitoring.GrafanaDashboard.Enabled {
		return deleteIfExists(ctx, r.Client, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Namespace: gw.Namespace, Name: render.DashboardConfigMapName(gw)}})
	}
	if ok, err := r.upToDate(ctx, st, configMapGVK, render.DashboardConfigMapName(gw)); err != nil || ok {
		return err
	}
	cm, err := render.GrafanaDashboard(st.inputs(r.GatewayImage))
	if err != nil {
		return failed(v1alpha1.ReasonRenderFailed, "rendering the dashboard", err)
	}
	return r.applyChild(ctx, st, cm)
}

// reconcileSecretRefs checks the Secrets the spec names (OAuth2 Proxy client
// and cookie secrets, the Postgres DSN, the Slack webhook) and sets
// SecretsResolved, naming each missing Secret and key. Each Secret is read
// once, directly from the API server.
func (r *ChatGatewayReconciler) reconcileSecretRefs(ctx context.Context, st *gatewayState) error {
	gw := st.gw
	var missing []string
	for _, ref := range gatewaySecretRefs(gw) {
		facts, _, _, found, err := r.secrets.lookup(ctx, r.Client, r.APIReader, types.NamespacedName{Namespace: gw.Namespace, Name: ref.Name})
		if err != nil {
			return failed(v1alpha1.ReasonReadFailed, fmt.Sprintf("reading Secret %q", ref.Name), err)
		}
		if !found || facts.keyLen[ref.Key] == 0 {
			missing = append(missing, fmt.Sprintf("Secret %q key %q", ref.Name, ref.Key))
		}
	}
	if len(missing) > 0 {
		st.conds.False(v1alpha1.ConditionSecretsResolved, v1alpha1.ReasonSecretNotFound,
			fmt.Sprintf("Missing in namespace %q: %s; the gateway pods cannot start without them", gw.Namespace, strings.Join(missing, ", ")))
		return nil
	}
	st.conds.True(v1alpha1.ConditionSecretsResolved, v1alpha1.ReasonSecretFound, "Every referenced Secret and key exists")
	return nil
}

// gatewaySecretRefs lists the user Secrets a ChatGateway references.
func gatewaySecretRefs(gw *v1alpha1.ChatGateway) []*v1alpha1.SecretKeyRef {
	var refs []*v1alpha1.SecretKeyRef
	if p := gw.Spec.Auth.OAuth2Proxy; p != nil && p.Enabled {
		refs = append(refs, p.ClientSecretRef, p.CookieSecretRef)
	}
	refs = append(refs, gw.Spec.Sessions.Store.DSNSecretRef)
	if n := gw.Spec.Quotas.Notify; n != nil {
		refs = append(refs, n.SlackWebhookSecretRef)
	}
	out := refs[:0]
	for _, r := range refs {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}
