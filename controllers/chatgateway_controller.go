package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// Field indexes from a ChatGateway to what it references.
const (
	gatewayProviderIndex  = "spec.providers.name"
	gatewayAllowlistIndex = "spec.auth.allowlistRef.name"
)

// ChatGatewayReconciler turns a ChatGateway into the gateway deployment.
type ChatGatewayReconciler struct {
	client.Client
	APIReader client.Reader
	Scheme    *runtime.Scheme
}

// gatewayState is what the sub-reconcilers share during one reconcile.
type gatewayState struct {
	gw        *v1alpha1.ChatGateway
	providers []v1alpha1.ModelProvider // in spec order; only those found
	allowlist *v1alpha1.UserAllowlist
}

// +kubebuilder:rbac:groups=chatgateway.dev,resources=chatgateways,verbs=get;list;watch
// +kubebuilder:rbac:groups=chatgateway.dev,resources=chatgateways/status,verbs=get;update;patch

// Reconcile runs the sub-reconcilers in order, then writes status if it changed.
func (r *ChatGatewayReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	gw := &v1alpha1.ChatGateway{}
	if err := r.Get(ctx, req.NamespacedName, gw); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := gw.Status.DeepCopy()
	st := &gatewayState{gw: gw}

	var errs []error
	for _, sub := range []func(context.Context, *gatewayState) error{
		r.reconcileProviders,
		r.reconcileAllowlist,
	} {
		if err := sub(ctx, st); err != nil {
			errs = append(errs, err)
		}
	}
	summarizeReady(&gw.Status.Conditions, gw.Generation,
		v1alpha1.ConditionProvidersReady, v1alpha1.ConditionAllowlistReady)
	if len(errs) == 0 {
		gw.Status.ObservedGeneration = gw.Generation
	}
	if !equality.Semantic.DeepEqual(before, &gw.Status) {
		if err := r.Status().Update(ctx, gw); err != nil {
			errs = append(errs, fmt.Errorf("updating ChatGateway status: %w", err))
		}
	}
	return ctrl.Result{}, errors.Join(errs...)
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
			return fmt.Errorf("reading ModelProvider %q: %w", ref.Name, err)
		}
		if !isReady(mp.Status.Conditions, mp.Generation) {
			notReady = append(notReady, ref.Name)
		}
		st.providers = append(st.providers, mp)
	}
	set := func(ok bool, reason, msg string) {
		setCondition(&gw.Status.Conditions, gw.Generation, v1alpha1.ConditionProvidersReady, ok, reason, msg)
	}
	switch {
	case len(missing) > 0:
		set(false, ReasonNotFound, fmt.Sprintf("ModelProvider %s not found in namespace %q", quoteJoin(missing), gw.Namespace))
	case len(notReady) > 0:
		set(false, ReasonNotReady, fmt.Sprintf("ModelProvider %s not Ready: see its status", quoteJoin(notReady)))
	case !servesModel(st.providers, gw.Spec.DefaultModel):
		set(false, ReasonInvalid, fmt.Sprintf("defaultModel %q is not a model of any listed provider", gw.Spec.DefaultModel))
	default:
		set(true, ReasonReady, fmt.Sprintf("%d providers ready", len(st.providers)))
	}
	return nil
}

// reconcileAllowlist loads the UserAllowlist and sets AllowlistReady.
func (r *ChatGatewayReconciler) reconcileAllowlist(ctx context.Context, st *gatewayState) error {
	gw := st.gw
	name := gw.Spec.Auth.AllowlistRef.Name
	ual := &v1alpha1.UserAllowlist{}
	err := r.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: name}, ual)
	set := func(ok bool, reason, msg string) {
		setCondition(&gw.Status.Conditions, gw.Generation, v1alpha1.ConditionAllowlistReady, ok, reason, msg)
	}
	switch {
	case apierrors.IsNotFound(err):
		set(false, ReasonNotFound, fmt.Sprintf("UserAllowlist %q not found in namespace %q: nobody can sign in", name, gw.Namespace))
		return nil
	case err != nil:
		return fmt.Errorf("reading UserAllowlist %q: %w", name, err)
	}
	st.allowlist = ual
	set(true, ReasonReady, fmt.Sprintf("%d users allowed", len(ual.Spec.Users)))
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
// ChatGateway back when something it references changes.
func (r *ChatGatewayReconciler) SetupWithManager(mgr ctrl.Manager) error {
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
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.ChatGateway{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.ModelProvider{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysFor(gatewayProviderIndex))).
		Watches(&v1alpha1.UserAllowlist{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysFor(gatewayAllowlistIndex))).
		Named("chatgateway").
		Complete(r)
}

// gatewaysFor maps a referenced object to the ChatGateways that name it.
func (r *ChatGatewayReconciler) gatewaysFor(index string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &v1alpha1.ChatGatewayList{}
		if err := r.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{index: o.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Failed to list ChatGateways", "index", index, "name", o.GetName())
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, gw := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&gw)})
		}
		return reqs
	}
}
