package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

// providerSecretIndex indexes ModelProviders by the name of their API-key Secret.
const providerSecretIndex = "spec.apiKeySecretRef.name"

// ModelProviderReconciler resolves a provider's API-key Secret and reports
// the provider's models.
type ModelProviderReconciler struct {
	client.Client
	// APIReader reads Secrets directly, so that the manager never caches
	// the content of every Secret in the cluster.
	APIReader client.Reader
	Scheme    *runtime.Scheme
}

// +kubebuilder:rbac:groups=chatgateway.dev,resources=modelproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=chatgateway.dev,resources=modelproviders/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;patch;delete

// Reconcile resolves the Secret, then writes status if it changed.
func (r *ModelProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	mp := &v1alpha1.ModelProvider{}
	if err := r.Get(ctx, req.NamespacedName, mp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := mp.Status.DeepCopy()

	if err := r.reconcileSecret(ctx, mp); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.reconcileLiteLLM(ctx, mp); err != nil {
		return ctrl.Result{}, err
	}
	r.reconcileModels(mp)
	summarizeReady(&mp.Status.Conditions, mp.Generation, v1alpha1.ConditionSecretResolved)
	mp.Status.ObservedGeneration = mp.Generation

	if equality.Semantic.DeepEqual(before, &mp.Status) {
		return ctrl.Result{}, nil
	}
	if err := r.Status().Update(ctx, mp); err != nil {
		return ctrl.Result{}, fmt.Errorf("updating ModelProvider status: %w", err)
	}
	return ctrl.Result{}, nil
}

// reconcileSecret sets SecretResolved. The Secret's value is only checked for
// presence; it is mounted into the gateway and never read into status.
func (r *ModelProviderReconciler) reconcileSecret(ctx context.Context, mp *v1alpha1.ModelProvider) error {
	ref := mp.Spec.APIKeySecretRef
	set := func(ok bool, reason, msg string) {
		setCondition(&mp.Status.Conditions, mp.Generation, v1alpha1.ConditionSecretResolved, ok, reason, msg)
	}
	if ref == nil {
		set(true, v1alpha1.ReasonNoSecret, "No API key is configured; requests go upstream without one")
		return nil
	}
	found, hasKey, err := secretHasKey(ctx, r.APIReader, mp.Namespace, ref)
	switch {
	case err != nil:
		return err
	case !found:
		set(false, v1alpha1.ReasonSecretNotFound, fmt.Sprintf(
			"Secret %q not found in namespace %q: create it with the API key under key %q", ref.Name, mp.Namespace, ref.Key))
	case !hasKey:
		set(false, v1alpha1.ReasonKeyNotFound, fmt.Sprintf(
			"Secret %q has no key %q (or it is empty): add the API key under that key", ref.Name, ref.Key))
	default:
		set(true, v1alpha1.ReasonSecretFound, fmt.Sprintf("Secret %q has key %q", ref.Name, ref.Key))
	}
	return nil
}

// reconcileLiteLLM applies the LiteLLM config.yaml ConfigMap for a provider
// with spec.liteLLM, and removes the one it made when liteLLM goes away.
func (r *ModelProviderReconciler) reconcileLiteLLM(ctx context.Context, mp *v1alpha1.ModelProvider) error {
	if mp.Spec.LiteLLM == nil {
		if mp.Status.LiteLLMConfigMap == "" {
			return nil
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: mp.Namespace, Name: mp.Status.LiteLLMConfigMap}}
		if err := deleteIfExists(ctx, r.Client, cm); err != nil {
			return err
		}
		mp.Status.LiteLLMConfigMap = ""
		return nil
	}
	cm, err := render.LiteLLMConfigMap(mp)
	if err != nil {
		return fmt.Errorf("rendering the LiteLLM config: %w", err)
	}
	if err := applyOwned(ctx, r.Client, r.Scheme, mp, cm); err != nil {
		return err
	}
	mp.Status.LiteLLMConfigMap = cm.Name
	return nil
}

func (r *ModelProviderReconciler) reconcileModels(mp *v1alpha1.ModelProvider) {
	names := make([]string, 0, len(mp.Spec.Models))
	for _, m := range mp.Spec.Models {
		names = append(names, m.Name)
	}
	mp.Status.Models = names
	mp.Status.ModelCount = int32(len(names))
	mp.Status.BaseURL = mp.Spec.EffectiveBaseURL()
}

// secretHasKey reports whether the Secret exists and holds a non-empty key.
func secretHasKey(ctx context.Context, c client.Reader, ns string, ref *v1alpha1.SecretKeyRef) (found, hasKey bool, err error) {
	s := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return false, false, nil
		}
		return false, false, fmt.Errorf("reading Secret %s/%s: %w", ns, ref.Name, err)
	}
	return true, len(s.Data[ref.Key]) > 0, nil
}

// SetupWithManager registers the controller. Secrets are watched metadata-only
// and mapped to providers through a field index.
func (r *ModelProviderReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ModelProvider{}, providerSecretIndex,
		func(o client.Object) []string {
			if ref := o.(*v1alpha1.ModelProvider).Spec.APIKeySecretRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		}); err != nil {
		return fmt.Errorf("indexing ModelProviders by Secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ModelProvider{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.ConfigMap{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.providersForSecret), builder.OnlyMetadata).
		Named("modelprovider").
		Complete(r)
}

func (r *ModelProviderReconciler) providersForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.ModelProviderList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{providerSecretIndex: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list ModelProviders for Secret", "secret", o.GetName())
		return nil
	}
	return requestsFor(list.Items)
}
