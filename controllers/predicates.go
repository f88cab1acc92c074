package controllers

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// notOwnWrites lets through the events of an owned child kind that the
// operator did not cause itself: a change by someone else (drift to undo,
// a Deployment's status from its controller) and a deletion. A creation is
// always ours (or harmless), and an update that left the resourceVersion our
// last write returned is the echo of that write; both would only bring the
// owner back for a reconcile with nothing to do.
func notOwnWrites(cache *applyCache, gk schema.GroupKind) predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return !cache.ownWrite(cacheKey(gk, e.ObjectNew.GetNamespace(), e.ObjectNew.GetName()), e.ObjectNew.GetResourceVersion())
		},
		DeleteFunc: func(e event.DeleteEvent) bool {
			cache.forget(cacheKey(gk, e.Object.GetNamespace(), e.Object.GetName()))
			return true
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// secretEvents is notOwnWrites for Secrets, which are watched for two
// reasons: the operator's own (token, keys) and the user's that a resource
// names. A user's Secret appearing must bring its resources back.
func secretEvents(cache *applyCache) predicate.Funcs {
	gk := schema.GroupKind{Kind: "Secret"}
	own := notOwnWrites(cache, gk)
	own.CreateFunc = func(e event.CreateEvent) bool {
		return !cache.ownWrite(cacheKey(gk, e.Object.GetNamespace(), e.Object.GetName()), e.Object.GetResourceVersion())
	}
	return own
}

// providerReadinessChanged passes a ModelProvider's spec changes and the
// flips of its Ready condition: all that a ChatGateway reads from it.
func providerReadinessChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() {
				return true
			}
			return readyOf(e.ObjectOld) != readyOf(e.ObjectNew)
		},
	}
}

func readyOf(o client.Object) bool {
	mp, ok := o.(*v1alpha1.ModelProvider)
	if !ok {
		return false
	}
	return meta.IsStatusConditionTrue(mp.Status.Conditions, v1alpha1.ConditionReady) && isReady(mp.Status.Conditions, mp.Generation)
}
