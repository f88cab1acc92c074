package controllers

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// patchStatus sends obj's status as a JSON merge patch computed against
// before, and nothing when it did not change. Only this operator writes
// these statuses, so the patch carries no resourceVersion precondition and
// a reconcile racing the first status write never conflicts. The API server
// answers with the object's metadata only: nothing reads the rest back.
func patchStatus(ctx context.Context, c client.Client, before, obj client.Object) error {
	data, err := client.MergeFrom(before).Data(obj)
	if err != nil {
		return err
	}
	if string(data) == "{}" {
		return nil
	}
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return fmt.Errorf("patching the status of %s: %w", obj.GetName(), err)
	}
	answer := &metav1.PartialObjectMetadata{}
	answer.SetGroupVersionKind(gvk)
	answer.SetNamespace(obj.GetNamespace())
	answer.SetName(obj.GetName())
	return c.Status().Patch(ctx, answer, client.RawPatch(types.MergePatchType, data), typedBody)
}
