package controllers

import (
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

// CacheOptions keep the manager's caches to what the operator made: the
// kinds it owns are cached only when they carry its managed-by label, so a
// large cluster's ConfigMaps, Deployments and Services never fill its
// memory. Secrets are cached as metadata only (see the reconcilers), and so
// are the children but Deployments, whose status the reconcilers read (and
// of which the cache keeps no pod template).
func CacheOptions() cache.Options {
	mine := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})}
	return cache.Options{
		// Nothing reads managedFields: they are often the larger part of an object.
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}:             mine,
			&corev1.Service{}:               mine,
			&corev1.PersistentVolumeClaim{}: mine,
			&appsv1.Deployment{}:            {Label: mine.Label, Transform: trimDeployment},
			&networkingv1.NetworkPolicy{}:   mine,
		},
	}
}

// trimDeployment keeps of a cached Deployment what the reconcilers read:
// its metadata, replicas and status. The pod template, most of its size, is
// what the operator renders and applies, never reads back.
func trimDeployment(obj any) (any, error) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return obj, nil
	}
	meta := *d.ObjectMeta.DeepCopy()
	meta.ManagedFields = nil
	return &appsv1.Deployment{
		TypeMeta:   d.TypeMeta,
		ObjectMeta: meta,
		Spec:       appsv1.DeploymentSpec{Replicas: d.Spec.Replicas},
		Status:     d.Status,
	}, nil
}

// NewScheme holds every type the operator reads or writes.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	utilruntime.Must(monitoringv1.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}
