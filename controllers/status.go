package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// patchStatus sends obj's status as a JSON merge patch computed against
// before, and nothing when it did not change. Only this operator writes
// these statuses, so the patch carries no resourceVersion precondition and
// a reconcile racing the first status write never conflicts.
func patchStatus(ctx context.Context, c client.Client, before, obj client.Object) error {
	p := client.MergeFrom(before)
	data, err := p.Data(obj)
	if err != nil {
		return err
	}
	if string(data) == "{}" {
		return nil
	}
	return c.Status().Patch(ctx, obj, p)
}
