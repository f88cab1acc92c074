package controllers

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

// ReasonRenderFailed says the spec and what it references cannot make a
// gateway config (a default model no provider serves, say).
const ReasonRenderFailed = "RenderFailed"

func (st *gatewayState) inputs(image string) render.Inputs {
	if st.gw.Spec.Image != "" {
		image = st.gw.Spec.Image
	}
	return render.Inputs{
		Gateway: st.gw, Providers: st.providers, Allowlist: st.allowlist,
		Image: image, TokenGeneration: st.tokenGeneration,
	}
}

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
	cm, err := render.GatewayConfigMap(st.inputs(r.GatewayImage))
	if err != nil {
		st.renderErr = err
		if meta.IsStatusConditionFalse(st.gw.Status.Conditions, v1alpha1.ConditionProvidersReady) {
			return nil // it already says what to fix, in plainer words
		}
		setCondition(&st.gw.Status.Conditions, st.gw.Generation, v1alpha1.ConditionProvidersReady, false,
			ReasonRenderFailed, "Cannot build the gateway config: "+err.Error())
		return nil
	}
	return applyOwned(ctx, r.Client, r.Scheme, st.gw, cm)
}

// reconcileEmails applies the OAuth2 Proxy ConfigMap: the authenticated-emails
// file from the allowlist and, with the sidecar on, its config.
func (r *ChatGatewayReconciler) reconcileEmails(ctx context.Context, st *gatewayState) error {
	cm, err := render.OAuth2ProxyConfigMap(st.inputs(r.GatewayImage))
	if err != nil {
		return fmt.Errorf("rendering the OAuth2 Proxy ConfigMap: %w", err)
	}
	return applyOwned(ctx, r.Client, r.Scheme, st.gw, cm)
}

// reconcilePVC creates the Embedded store's claim. It is owned by the
// gateway unless spec.sessions.store.whenDeleted is Retain; on an existing
// claim only that ownership follows the spec, since a bound claim's spec is
// immutable but for growing. Switching to Postgres leaves a claim alone: it
// holds conversations.
func (r *ChatGatewayReconciler) reconcilePVC(ctx context.Context, st *gatewayState) error {
	pvc, err := render.PVC(st.inputs(r.GatewayImage))
	if err != nil || pvc == nil {
		return err
	}
	retain := st.gw.Spec.Sessions.Store.WhenDeleted == v1alpha1.ClaimRetain
	existing := &corev1.PersistentVolumeClaim{}
	err = r.Get(ctx, client.ObjectKeyFromObject(pvc), existing)
	switch {
	case apierrors.IsNotFound(err) && retain:
		return applyUnowned(ctx, r.Client, pvc)
	case apierrors.IsNotFound(err):
		return applyOwned(ctx, r.Client, r.Scheme, st.gw, pvc)
	case err != nil:
		return fmt.Errorf("reading the store claim: %w", err)
	}
	owned := metav1.IsControlledBy(existing, st.gw)
	if owned != retain {
		return nil
	}
	orig := existing.DeepCopy()
	if retain {
		if err := controllerutil.RemoveControllerReference(st.gw, existing, r.Scheme); err != nil {
			return fmt.Errorf("releasing the store claim: %w", err)
		}
	} else if err := controllerutil.SetControllerReference(st.gw, existing, r.Scheme); err != nil {
		return fmt.Errorf("owning the store claim: %w", err)
	}
	if err := r.Patch(ctx, existing, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("changing the store claim's owner: %w", err)
	}
	return nil
}

// reconcileDeployment applies the gateway Deployment and reports its replicas.
func (r *ChatGatewayReconciler) reconcileDeployment(ctx context.Context, st *gatewayState) error {
	if !st.workloadReady() || st.renderErr != nil {
		return nil
	}
	d, err := render.Deployment(st.inputs(r.GatewayImage))
	if err != nil {
		return fmt.Errorf("rendering the Deployment: %w", err)
	}
	if err := applyOwned(ctx, r.Client, r.Scheme, st.gw, d); err != nil {
		return err
	}
	current := &appsv1.Deployment{}
	if err := r.Get(ctx, client.ObjectKeyFromObject(d), current); err == nil {
		st.gw.Status.ReadyReplicas = current.Status.ReadyReplicas
	}
	if d.Spec.Replicas != nil {
		st.gw.Status.Replicas = *d.Spec.Replicas
	}
	return nil
}

// reconcileService applies the Service and reports the gateway's URL.
func (r *ChatGatewayReconciler) reconcileService(ctx context.Context, st *gatewayState) error {
	svc, err := render.Service(st.inputs(r.GatewayImage))
	if err != nil {
		return fmt.Errorf("rendering the Service: %w", err)
	}
	if err := applyOwned(ctx, r.Client, r.Scheme, st.gw, svc); err != nil {
		return err
	}
	st.gw.Status.URL = fmt.Sprintf("http://%s.%s.svc:%d", svc.Name, svc.Namespace, svc.Spec.Ports[0].Port)
	return nil
}

// reconcileNetworkPolicy applies the policy that admits only the sidecar's
// port and token holders.
func (r *ChatGatewayReconciler) reconcileNetworkPolicy(ctx context.Context, st *gatewayState) error {
	np, err := render.NetworkPolicy(st.inputs(r.GatewayImage))
	if err != nil {
		return fmt.Errorf("rendering the NetworkPolicy: %w", err)
	}
	return applyOwned(ctx, r.Client, r.Scheme, st.gw, np)
}

// reconcileDashboard applies, or removes, the Grafana dashboard ConfigMap.
func (r *ChatGatewayReconciler) reconcileDashboard(ctx context.Context, st *gatewayState) error {
	gw := st.gw
	if !gw.Spec.Monitoring.GrafanaDashboard.Enabled {
		return deleteIfExists(ctx, r.Client, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Namespace: gw.Namespace, Name: render.DashboardConfigMapName(gw)}})
	}
	cm, err := render.GrafanaDashboard(st.inputs(r.GatewayImage))
	if err != nil {
		return fmt.Errorf("rendering the dashboard: %w", err)
	}
	return applyOwned(ctx, r.Client, r.Scheme, gw, cm)
}

// reconcileSecretRefs checks the Secrets the spec names (OAuth2 Proxy client
// and cookie secrets, the Postgres DSN, the Slack webhook) and sets
// SecretsResolved, naming each missing Secret and key.
func (r *ChatGatewayReconciler) reconcileSecretRefs(ctx context.Context, st *gatewayState) error {
	gw := st.gw
	var missing []string
	for _, ref := range gatewaySecretRefs(gw) {
		found, hasKey, err := secretHasKey(ctx, r.APIReader, gw.Namespace, ref)
		if err != nil {
			return err
		}
		if !found || !hasKey {
			missing = append(missing, fmt.Sprintf("Secret %q key %q", ref.Name, ref.Key))
		}
	}
	if len(missing) > 0 {
		setCondition(&gw.Status.Conditions, gw.Generation, ConditionSecretsResolved, false, v1alpha1.ReasonSecretNotFound,
			fmt.Sprintf("Missing in namespace %q: %s; the gateway pods cannot start without them", gw.Namespace, strings.Join(missing, ", ")))
		return nil
	}
	setCondition(&gw.Status.Conditions, gw.Generation, ConditionSecretsResolved, true, v1alpha1.ReasonSecretFound,
		"Every referenced Secret and key exists")
	return nil
}

// ConditionSecretsResolved says whether the Secrets a ChatGateway names exist.
const ConditionSecretsResolved = "SecretsResolved"

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
