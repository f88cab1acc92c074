package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// ModelProviderReconciler resolves a provider's Secrets, reports its models
// and, with spec.liteLLM, renders LiteLLM's config and runs LiteLLM.
type ModelProviderReconciler struct {
	client.Client
	// APIReader reads Secrets directly, so that the manager never caches
	// the content of every Secret in the cluster.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	applier   *applier
}

// +kubebuilder:rbac:groups=chatgateway.dev,resources=modelproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=chatgateway.dev,resources=modelproviders/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps;services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete

// Reconcile runs the steps; a deferred step summarises their conditions and
// patches the status if it changed.
func (r *ModelProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	mp := &v1alpha1.ModelProvider{}
	if err := r.Get(ctx, req.NamespacedName, mp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := mp.DeepCopy()
	condTypes := []string{v1alpha1.ConditionSecretResolved}
	if runsLiteLLM(mp) {
		condTypes = append(condTypes, v1alpha1.ConditionLiteLLMAvailable)
	}
	conds := newConditions(mp.Generation, condTypes...)
	defer func() {
		if conds.writeTo(&mp.Status.Conditions) {
			mp.Status.ObservedGeneration = mp.Generation
		}
		if err := patchStatus(ctx, r.Client, before, mp); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("patching ModelProvider status: %w", err))
		}
	}()

	r.reconcileModels(mp)
	for _, step := range []func(context.Context, *v1alpha1.ModelProvider, *conditions) error{
		r.reconcileSecret,
		r.reconcileLiteLLMConfig,
		r.reconcileLiteLLMDeployment,
	} {
		if err := step(ctx, mp, conds); err != nil {
			conds.fail(err)
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

func runsLiteLLM(mp *v1alpha1.ModelProvider) bool {
	return mp.Spec.LiteLLM != nil && mp.Spec.LiteLLM.Deployment != nil
}

// reconcileSecret sets SecretResolved: the API-key Secret and, for a
// LiteLLM the operator runs, its env Secret. Values are only checked for
// presence; they are mounted and never read into status.
func (r *ModelProviderReconciler) reconcileSecret(ctx context.Context, mp *v1alpha1.ModelProvider, conds *conditions) error {
	const typ = v1alpha1.ConditionSecretResolved
	var found []string
	if ref := mp.Spec.APIKeySecretRef; ref != nil {
		s, err := readSecret(ctx, r.APIReader, mp.Namespace, ref.Name)
		switch {
		case err != nil:
			return failed(v1alpha1.ReasonReadFailed, fmt.Sprintf("reading Secret %q", ref.Name), err)
		case s == nil:
			conds.False(typ, v1alpha1.ReasonSecretNotFound, fmt.Sprintf(
				"Secret %q not found in namespace %q: create it with the API key under key %q", ref.Name, mp.Namespace, ref.Key))
			return nil
		case len(s.Data[ref.Key]) == 0:
			conds.False(typ, v1alpha1.ReasonKeyNotFound, fmt.Sprintf(
				"Secret %q has no key %q (or it is empty): add the API key under that key", ref.Name, ref.Key))
			return nil
		}
		found = append(found, fmt.Sprintf("Secret %q has key %q", ref.Name, ref.Key))
	}
	if runsLiteLLM(mp) && mp.Spec.LiteLLM.Deployment.EnvSecretRef != nil {
		name := mp.Spec.LiteLLM.Deployment.EnvSecretRef.Name
		s, err := readSecret(ctx, r.APIReader, mp.Namespace, name)
		switch {
		case err != nil:
			return failed(v1alpha1.ReasonReadFailed, fmt.Sprintf("reading Secret %q", name), err)
		case s == nil:
			conds.False(typ, v1alpha1.ReasonSecretNotFound, fmt.Sprintf(
				"Secret %q (liteLLM.deployment.envSecretRef) not found in namespace %q: LiteLLM cannot start without it", name, mp.Namespace))
			return nil
		}
		found = append(found, fmt.Sprintf("Secret %q exists", name))
	}
	if len(found) == 0 {
		conds.True(typ, v1alpha1.ReasonNoSecret, "No API key is configured; requests go upstream without one")
		return nil
	}
	conds.True(typ, v1alpha1.ReasonSecretFound, strings.Join(found, "; "))
	return nil
}

// reconcileLiteLLMConfig applies the LiteLLM config.yaml ConfigMap for a
// provider with spec.liteLLM, and removes the one it made when liteLLM goes away.
func (r *ModelProviderReconciler) reconcileLiteLLMConfig(ctx context.Context, mp *v1alpha1.ModelProvider, _ *conditions) error {
	if mp.Spec.LiteLLM == nil {
		if mp.Status.LiteLLMConfigMap == "" {
			return nil
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: mp.Namespace, Name: mp.Status.LiteLLMConfigMap}}
		if err := deleteIfExists(ctx, r.Client, cm); err != nil {
			return failed(v1alpha1.ReasonApplyFailed, "deleting the LiteLLM ConfigMap", err)
		}
		mp.Status.LiteLLMConfigMap = ""
		return nil
	}
	cm, err := render.LiteLLMConfigMap(mp)
	if err != nil {
		return failed(v1alpha1.ReasonRenderFailed, "rendering the LiteLLM config", err)
	}
	if _, err := r.applier.apply(ctx, mp, cm, ""); err != nil {
		return failed(v1alpha1.ReasonApplyFailed, fmt.Sprintf("applying ConfigMap %q", cm.Name), err)
	}
	mp.Status.LiteLLMConfigMap = cm.Name
	return nil
}

// reconcileLiteLLMDeployment runs LiteLLM for spec.liteLLM.deployment: its
// Deployment (config hash on the pod template) and Service, and sets
// LiteLLMAvailable from the rollout. Without it, what it made goes.
func (r *ModelProviderReconciler) reconcileLiteLLMDeployment(ctx context.Context, mp *v1alpha1.ModelProvider, conds *conditions) error {
	if !runsLiteLLM(mp) {
		if mp.Status.LiteLLMDeployment == "" {
			return nil
		}
		meta := metav1.ObjectMeta{Namespace: mp.Namespace, Name: mp.Status.LiteLLMDeployment}
		for _, obj := range []client.Object{&appsv1.Deployment{ObjectMeta: meta}, &corev1.Service{ObjectMeta: meta}} {
			if err := deleteIfExists(ctx, r.Client, obj); err != nil {
				return failed(v1alpha1.ReasonApplyFailed, "deleting LiteLLM", err)
			}
		}
		mp.Status.LiteLLMDeployment = ""
		return nil
	}
	const typ = v1alpha1.ConditionLiteLLMAvailable
	if !conds.isTrue(v1alpha1.ConditionSecretResolved) {
		conds.Unknown(typ, v1alpha1.ReasonNotEvaluated, "LiteLLM is deployed once its Secrets exist")
		return nil
	}
	envVersion := ""
	if ref := mp.Spec.LiteLLM.Deployment.EnvSecretRef; ref != nil {
		pom := &metav1.PartialObjectMetadata{}
		pom.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		if err := r.Get(ctx, types.NamespacedName{Namespace: mp.Namespace, Name: ref.Name}, pom); err != nil {
			return failed(v1alpha1.ReasonReadFailed, fmt.Sprintf("reading Secret %q", ref.Name), err)
		}
		envVersion = pom.ResourceVersion
	}
	d, err := render.LiteLLMDeployment(mp, envVersion)
	if err != nil {
		return failed(v1alpha1.ReasonRenderFailed, "rendering the LiteLLM Deployment", err)
	}
	svc := render.LiteLLMService(mp)
	if _, err := r.applier.apply(ctx, mp, svc, ""); err != nil {
		return failed(v1alpha1.ReasonApplyFailed, fmt.Sprintf("applying Service %q", svc.Name), err)
	}
	applied, err := r.applier.apply(ctx, mp, d, "")
	if err != nil {
		return failed(v1alpha1.ReasonApplyFailed, fmt.Sprintf("applying Deployment %q", d.Name), err)
	}
	mp.Status.LiteLLMDeployment = d.Name
	current, err := observedDeployment(ctx, r.Client, client.ObjectKeyFromObject(d), applied, d.Spec.Replicas)
	if err != nil {
		return failed(v1alpha1.ReasonReadFailed, "reading the LiteLLM Deployment", err)
	}
	status, reason, msg := deploymentAvailability(current)
	conds.set(typ, status, reason, msg)
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

// readSecret reads a Secret directly from the API server; nil when it does not exist.
func readSecret(ctx context.Context, c client.Reader, ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return s, nil
}

// SetupWithManager registers the controller. Secrets are watched
// metadata-only and mapped to providers through a field index; owned
// children as the ChatGateway's are, without the echoes of our own writes.
func (r *ModelProviderReconciler) SetupWithManager(mgr ctrl.Manager, cache *applyCache) error {
	r.applier = &applier{client: r.Client, scheme: r.Scheme, last: cache}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.ModelProvider{}, providerSecretIndex,
		func(o client.Object) []string {
			mp := o.(*v1alpha1.ModelProvider)
			var names []string
			if ref := mp.Spec.APIKeySecretRef; ref != nil {
				names = append(names, ref.Name)
			}
			if runsLiteLLM(mp) && mp.Spec.LiteLLM.Deployment.EnvSecretRef != nil {
				names = append(names, mp.Spec.LiteLLM.Deployment.EnvSecretRef.Name)
			}
			return names
		}); err != nil {
		return fmt.Errorf("indexing ModelProviders by Secret: %w", err)
	}
	own := func(gk schema.GroupKind) builder.OwnsOption { return builder.WithPredicates(notOwnWrites(cache, gk)) }
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ModelProvider{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.ConfigMap{}, builder.OnlyMetadata, own(schema.GroupKind{Kind: "ConfigMap"})).
		Owns(&corev1.Service{}, builder.OnlyMetadata, own(schema.GroupKind{Kind: "Service"})).
		Owns(&appsv1.Deployment{}, own(schema.GroupKind{Group: "apps", Kind: "Deployment"})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.providersForSecret), builder.OnlyMetadata,
			builder.WithPredicates(secretEvents(cache))).
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
