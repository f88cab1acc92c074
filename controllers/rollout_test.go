package controllers

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// manualRolloutLabel on a spec's namespace leaves its Deployments' status to
// the spec, which writes each stage of a rollout itself.
const manualRolloutLabel = "test.chatgateway.dev/manual-rollout"

// rolloutPlayer plays the Deployment controller and the kubelet, which
// envtest does not run: it writes a Deployment's status as the Deployment
// controller does once every replica of the current generation is updated,
// ready and available.
type rolloutPlayer struct{ c client.Client }

func (p *rolloutPlayer) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ns := &corev1.Namespace{}
	if err := p.c.Get(ctx, client.ObjectKey{Name: req.Namespace}, ns); err != nil || ns.Labels[manualRolloutLabel] == "true" {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	d := &appsv1.Deployment{}
	if err := p.c.Get(ctx, req.NamespacedName, d); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if rolledOut(d) {
		return ctrl.Result{}, nil
	}
	err := writeRollout(ctx, p.c, d, replicasOf(d), replicasOf(d))
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return ctrl.Result{Requeue: true}, nil
	}
	return ctrl.Result{}, err
}

func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func rolledOut(d *appsv1.Deployment) bool {
	n := replicasOf(d)
	return d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == n && d.Status.AvailableReplicas == n
}

// writeRollout writes the status the Deployment controller reports for the
// current generation with updated of its replicas updated and available of
// them available; old pods make up the rest of the replicas.
func writeRollout(ctx context.Context, c client.Client, d *appsv1.Deployment, updated, available int32) error {
	want := replicasOf(d)
	now := metav1.NewTime(time.Now())
	progressing := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
		Reason: "ReplicaSetUpdated", Message: "ReplicaSet is progressing.", LastUpdateTime: now, LastTransitionTime: now}
	if updated == want && available == want {
		progressing.Reason, progressing.Message = "NewReplicaSetAvailable", "ReplicaSet has successfully progressed."
	}
	availStatus := corev1.ConditionTrue
	if available < want {
		availStatus = corev1.ConditionFalse
	}
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           want,
		UpdatedReplicas:    updated,
		ReadyReplicas:      available,
		AvailableReplicas:  available,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: availStatus, Reason: "MinimumReplicasAvailable",
				Message: "Deployment has minimum availability.", LastUpdateTime: now, LastTransitionTime: now},
			progressing,
		},
	}
	return c.Status().Update(ctx, d)
}
