package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

// Field indexes from a ChatGateway to what it references.
const (
	gatewayProviderIndex  = "spec.providers.name"
	gatewayAllowlistIndex = "spec.auth.allowlistRef.name"
	gatewaySecretIndex    = "spec.secretRefs.name"
)

// ChatGatewayReconciler turns a ChatGateway into the gateway deployment.
type ChatGatewayReconciler struct {
	client.Client
	// APIReader reads Secrets directly, so no Secret content is cached.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// GatewayImage runs the gateway when a ChatGateway names no image.
	GatewayImage string
	applier      *applier
	secrets      *secretMemo
}

// gatewayConditions are the conditions a ChatGateway's steps set, in the
// order Ready names them.
var gatewayConditions = []string{
	v1alpha1.ConditionProvidersReady, v1alpha1.ConditionAllowlistReady, v1alpha1.ConditionSecretsResolved,
	v1alpha1.ConditionTokenReady, v1alpha1.ConditionKeysReady, v1alpha1.ConditionMonitoringReady,
	v1alpha1.ConditionGatewayAvailable,
}

// gatewayState is what the sub-reconcilers share during one reconcile.
type gatewayState struct {
	gw              *v1alpha1.ChatGateway
	conds           *conditions
	providers       []v1alpha1.ModelProvider // in spec order; only those found
	allowlist       *v1alpha1.UserAllowlist
	tokenGeneration string
	keysOK          bool
	renderErr       error
	requeueAfter    time.Duration
	inputsKey       string           // fingerprint, once computed
	gatewayYAML     []byte           // gateway.yaml, once rendered
	deployment      *deploymentApply // the applied gateway Deployment, for observeRollout
}

// +kubebuilder:rbac:groups=chatgateway.dev,resources=chatgateways,verbs=get;list;watch
// +kubebuilder:rbac:groups=chatgateway.dev,resources=chatgateways/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets;configmaps;services;persistentvolumeclaims,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors;prometheusrules,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile runs the sub-reconcilers in order; a deferred step summarises
// their conditions into Ready, Reconciling and Stalled and patches the status
// if it changed.
func (r *ChatGatewayReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	gw := &v1alpha1.ChatGateway{}
	if err := r.Get(ctx, req.NamespacedName, gw); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := gw.DeepCopy()
	st := &gatewayState{gw: gw, conds: newConditions(gw.Generation, gatewayConditions...)}
	defer func() {
		if st.conds.writeTo(&gw.Status.Conditions) {
			gw.Status.ObservedGeneration = gw.Generation
		}
		if err := patchStatus(ctx, r.Client, before, gw); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("patching ChatGateway status: %w", err))
		}
		if retErr != nil {
			res = ctrl.Result{} // the error requeues, with backoff
		}
	}()

	var errs []error
	// In order: what the gateway references, then each child it owns.
	for _, sub := range []func(context.Context, *gatewayState) error{
		r.reconcileProviders,
		r.reconcileAllowlist,
		r.reconcileSecretRefs,
		r.reconcileToken,
		r.reconcileKeys,
		r.reconcileGatewayConfig,
		r.reconcileEmails,
		r.reconcilePVC,
		r.reconcileDeployment,
		r.reconcileService,
		r.reconcileNetworkPolicy,
		r.reconcileMonitoring,
		r.reconcileDashboard,
		r.observeRollout,
	} {
		if err := sub(ctx, st); err != nil {
			st.conds.fail(err)
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: st.requeueAfter}, nil
}

// reconcileProviders loads the referenced ModelProviders and sets ProvidersReady.
func (r *ChatGatewayReconciler) reconcileProviders(ctx context.Context, st *gatewayState) error {
	gw := st.gw
	var missing, notReady []string
	for _, ref := range gw.Spec.Providers {
		mp := v1alpha1.ModelProvider{}
		err := r.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: ref.Name}, &mp)
		switch {
		case apierrors.IsNotFound(err):
			missing = append(missing, ref.Name)
			continue
		case err != nil:
			return failed(v1alpha1.ReasonReadFailed, fmt.Sprintf("reading ModelProvider %q", ref.Name), err)
		}
		if !isReady(mp.Status.Conditions, mp.Generation) {
			notReady = append(notReady, ref.Name)
		}
		st.providers = append(st.providers, mp)
	}
	const typ = v1alpha1.ConditionProvidersReady
	switch {
	case len(missing) > 0:
		st.conds.False(typ, v1alpha1.ReasonNotFound, fmt.Sprintf("ModelProvider %s not found in namespace %q", quoteJoin(missing), gw.Namespace))
	case len(notReady) > 0:
		st.conds.False(typ, v1alpha1.ReasonNotReady, fmt.Sprintf("ModelProvider %s not Ready: see its status", quoteJoin(notReady)))
	case !servesModel(st.providers, gw.Spec.DefaultModel):
		st.conds.False(typ, v1alpha1.ReasonInvalid, fmt.Sprintf("defaultModel %q is not a model of any listed provider", gw.Spec.DefaultModel))
	default:
		st.conds.True(typ, v1alpha1.ReasonReady, fmt.Sprintf("%d providers ready", len(st.providers)))
	}
	return nil
}

// reconcileAllowlist loads the UserAllowlist and sets AllowlistReady.
func (r *ChatGatewayReconciler) reconcileAllowlist(ctx context.Context, st *gatewayState) error {
	gw := st.gw
	name := gw.Spec.Auth.AllowlistRef.Name
	ual := &v1alpha1.UserAllowlist{}
	err := r.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: name}, ual)
	switch {
	case apierrors.IsNotFound(err):
		st.conds.False(v1alpha1.ConditionAllowlistReady, v1alpha1.ReasonNotFound,
			fmt.Sprintf("UserAllowlist %q not found in namespace %q: nobody can sign in", name, gw.Namespace))
		return nil
	case err != nil:
		return failed(v1alpha1.ReasonReadFailed, fmt.Sprintf("reading UserAllowlist %q", name), err)
	}
	st.allowlist = ual
	st.conds.True(v1alpha1.ConditionAllowlistReady, v1alpha1.ReasonReady, fmt.Sprintf("%d users allowed", len(ual.Spec.Users)))
	return nil
}

func servesModel(providers []v1alpha1.ModelProvider, alias string) bool {
	for _, p := range providers {
		for _, m := range p.Spec.Models {
			if m.Name == alias {
				return true
			}
		}
	}
	return false
}

func quoteJoin(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// SetupWithManager registers the controller and the watches that bring a
// ChatGateway back when something it references changes. Owned children are
// watched metadata-only (but Deployments, whose status tells whether the
// gateway serves), and their events that the operator's own writes caused
// are dropped: a fresh gateway is reconciled once for its creation and once
// more when its Deployment has rolled out.
func (r *ChatGatewayReconciler) SetupWithManager(mgr ctrl.Manager, cache *applyCache) error {
	r.applier = &applier{client: r.Client, scheme: r.Scheme, last: cache}
	r.secrets = newSecretMemo()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(context.Background(), &v1alpha1.ChatGateway{}, gatewayProviderIndex, func(o client.Object) []string {
		var names []string
		for _, p := range o.(*v1alpha1.ChatGateway).Spec.Providers {
			names = append(names, p.Name)
		}
		return names
	}); err != nil {
		return fmt.Errorf("indexing ChatGateways by provider: %w", err)
	}
	if err := idx.IndexField(context.Background(), &v1alpha1.ChatGateway{}, gatewayAllowlistIndex, func(o client.Object) []string {
		return []string{o.(*v1alpha1.ChatGateway).Spec.Auth.AllowlistRef.Name}
	}); err != nil {
		return fmt.Errorf("indexing ChatGateways by allowlist: %w", err)
	}
	if err := idx.IndexField(context.Background(), &v1alpha1.ChatGateway{}, gatewaySecretIndex, func(o client.Object) []string {
		var names []string
		for _, ref := range gatewaySecretRefs(o.(*v1alpha1.ChatGateway)) {
			names = append(names, ref.Name)
		}
		return names
	}); err != nil {
		return fmt.Errorf("indexing ChatGateways by Secret: %w", err)
	}
	own := func(gk schema.GroupKind) builder.OwnsOption { return builder.WithPredicates(notOwnWrites(cache, gk)) }
	return ctrl.NewControllerManagedBy(mgr).
		// Generation changes, plus the rotate-token annotation (the kill switch).
		For(&v1alpha1.ChatGateway{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.ConfigMap{}, builder.OnlyMetadata, own(schema.GroupKind{Kind: "ConfigMap"})).
		Owns(&corev1.Service{}, builder.OnlyMetadata, own(schema.GroupKind{Kind: "Service"})).
		Owns(&corev1.PersistentVolumeClaim{}, builder.OnlyMetadata, own(schema.GroupKind{Kind: "PersistentVolumeClaim"})).
		Owns(&appsv1.Deployment{}, own(schema.GroupKind{Group: "apps", Kind: "Deployment"})).
		Owns(&networkingv1.NetworkPolicy{}, builder.OnlyMetadata, own(schema.GroupKind{Group: "networking.k8s.io", Kind: "NetworkPolicy"})).
		Watches(&v1alpha1.ModelProvider{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysFor(gatewayProviderIndex)),
			builder.WithPredicates(providerReadinessChanged())).
		Watches(&v1alpha1.UserAllowlist{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysFor(gatewayAllowlistIndex)),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// Secrets metadata-only: the operator's (token, keys) and the ones the spec names.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysForSecret), builder.OnlyMetadata,
			builder.WithPredicates(secretEvents(cache))).
		Watches(&apiextensionsv1.CustomResourceDefinition{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysForCRD),
			builder.OnlyMetadata).
		Named("chatgateway").
		Complete(r)
}

// gatewaysForSecret maps a Secret to the ChatGateway it was made for (by its
// labels: a retained keys Secret has no owner) and to those that name it.
func (r *ChatGatewayReconciler) gatewaysForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	reqs := r.gatewaysFor(gatewaySecretIndex)(ctx, o)
	l := o.GetLabels()
	if l[render.LabelManagedBy] == render.ManagedBy && l[render.LabelInstance] != "" &&
		(l[render.LabelComponent] == render.ComponentToken || l[render.LabelComponent] == render.ComponentKeys) {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: l[render.LabelInstance]}})
	}
	return reqs
}

// gatewaysForCRD brings every ChatGateway back when Prometheus Operator's
// CRDs come or go, so monitoring appears without a restart.
func (r *ChatGatewayReconciler) gatewaysForCRD(ctx context.Context, o client.Object) []reconcile.Request {
	if !monitoringCRDs[o.GetName()] {
		return nil
	}
	list := &v1alpha1.ChatGatewayList{}
	if err := r.List(ctx, list); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Failed to list ChatGateways")
		return nil
	}
	return requestsFor(list.Items)
}

// requestsFor turns the objects a watch mapped to into reconcile requests.
func requestsFor[T any, P interface {
	*T
	client.Object
}](items []T) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(items))
	for i := range items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(P(&items[i]))})
	}
	return reqs
}

// gatewaysFor maps a referenced object to the ChatGateways that name it.
func (r *ChatGatewayReconciler) gatewaysFor(index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &v1alpha1.ChatGatewayList{}
		if err := r.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Failed to list ChatGateways", "index", index, "name", o.GetName())
			return nil
		}
		return requestsFor(list.Items)
	}
}
