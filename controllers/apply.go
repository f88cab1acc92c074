package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// FieldOwner is the one field manager every server-side apply uses.
const FieldOwner = client.FieldOwner("chatgateway-operator")

// applyOwned server-side applies a rendered child, owned by owner. Applying
// an unchanged render is a no-op on the API server: nothing is written.
func applyOwned(ctx context.Context, c client.Client, scheme *runtime.Scheme, owner, obj client.Object) error {
	if err := controllerutil.SetControllerReference(owner, obj, scheme); err != nil {
		return fmt.Errorf("setting owner of %s: %w", obj.GetName(), err)
	}
	return applyUnowned(ctx, c, obj)
}

// applyUnowned server-side applies a child that must outlive its gateway.
func applyUnowned(ctx context.Context, c client.Client, obj client.Object) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("converting %s: %w", obj.GetName(), err)
	}
	// The renderers own spec and data only; status and the zero timestamps
	// of typed objects must not be claimed by the apply.
	delete(u, "status")
	pruneNulls(u)
	ac := client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: u})
	if err := c.Apply(ctx, ac, FieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

// pruneNulls drops null values (zero metav1.Time, nil pointers serialised by
// the converter) and the empty maps they leave behind.
func pruneNulls(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNulls(t)
			if len(t) == 0 {
				delete(m, k)
			}
		case []any:
			for _, item := range t {
				if im, ok := item.(map[string]any); ok {
					pruneNulls(im)
				}
			}
		}
	}
}

// deleteIfExists removes a child that the spec no longer asks for.
func deleteIfExists(ctx context.Context, c client.Client, obj client.Object) error {
	if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}
