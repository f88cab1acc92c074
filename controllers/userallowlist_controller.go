package controllers

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// UserAllowlistReconciler reports who an allowlist lets in. The email list
// itself is rendered by each ChatGateway that references the allowlist.
type UserAllowlistReconciler struct {
	client.Client
	Scheme *runtime.Scheme
}

// +kubebuilder:rbac:groups=chatgateway.dev,resources=userallowlists,verbs=get;list;watch
// +kubebuilder:rbac:groups=chatgateway.dev,resources=userallowlists/status,verbs=get;update;patch

// Reconcile computes the user count and the admins.
func (r *UserAllowlistReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ual := &v1alpha1.UserAllowlist{}
	if err := r.Get(ctx, req.NamespacedName, ual); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := ual.DeepCopy()
	// An allowlist has nothing to wait for: the CRD validated it, so Ready
	// holds for each generation as soon as it is seen.
	conds := newConditions(ual.Generation)
	var admins []string
	for _, u := range ual.Spec.Users {
		if u.Role == v1alpha1.RoleAdmin {
			admins = append(admins, u.Email)
		}
	}
	slices.Sort(admins)
	ual.Status.Admins = admins
	ual.Status.UserCount = int32(len(ual.Spec.Users))
	if conds.writeTo(&ual.Status.Conditions) {
		ual.Status.ObservedGeneration = ual.Generation
	}
	// The summary says "All conditions are met"; say what the allowlist holds.
	msg := fmt.Sprintf("%d users, %d admins", len(ual.Spec.Users), len(admins))
	if len(admins) == 0 {
		msg += "; nobody can see usage for the whole gateway until a user has role Admin"
	}
	meta.FindStatusCondition(ual.Status.Conditions, v1alpha1.ConditionReady).Message = msg
	if err := patchStatus(ctx, r.Client, before, ual); err != nil {
		return ctrl.Result{}, fmt.Errorf("patching UserAllowlist status: %w", err)
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the controller.
func (r *UserAllowlistReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.UserAllowlist{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("userallowlist").
		Complete(r)
}
