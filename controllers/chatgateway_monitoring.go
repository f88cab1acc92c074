package controllers

import (
	"context"
	"fmt"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

// The Prometheus Operator CRDs the gateway's monitoring needs.
var (
	serviceMonitorGK = schema.GroupKind{Group: monitoringv1.SchemeGroupVersion.Group, Kind: monitoringv1.ServiceMonitorsKind}
	prometheusRuleGK = schema.GroupKind{Group: monitoringv1.SchemeGroupVersion.Group, Kind: monitoringv1.PrometheusRuleKind}
	monitoringCRDs   = map[string]bool{"servicemonitors.monitoring.coreos.com": true, "prometheusrules.monitoring.coreos.com": true}
)

// reconcileMonitoring applies the ServiceMonitor and PrometheusRule where
// Prometheus Operator's CRDs are served, and sets MonitoringReady. Without
// the CRDs it says so; a watch on CRDs brings the gateway back when they
// are installed, so no restart is needed.
func (r *ChatGatewayReconciler) reconcileMonitoring(ctx context.Context, st *gatewayState) error {
	gw := st.gw
	mon := gw.Spec.Monitoring
	const typ = v1alpha1.ConditionMonitoringReady
	var missing []string
	if mon.ServiceMonitor.Enabled {
		if ok, err := r.served(serviceMonitorGK); err != nil {
			return err
		} else if !ok {
			missing = append(missing, "servicemonitors.monitoring.coreos.com")
		} else if err := applyMonitoringChild(ctx, r, st, serviceMonitorGVK, render.ServiceMonitorName(gw), render.ServiceMonitor); err != nil {
			return err
		}
	} else if err := r.deleteIfServed(ctx, serviceMonitorGK, &monitoringv1.ServiceMonitor{ObjectMeta: metav1.ObjectMeta{
		Namespace: gw.Namespace, Name: render.ServiceMonitorName(gw)}}); err != nil {
		return err
	}
	if mon.Alerts.Enabled {
		if ok, err := r.served(prometheusRuleGK); err != nil {
			return err
		} else if !ok {
			missing = append(missing, "prometheusrules.monitoring.coreos.com")
		} else if err := applyMonitoringChild(ctx, r, st, prometheusRuleGVK, render.PrometheusRuleName(gw), render.PrometheusRule); err != nil {
			return err
		}
	} else if err := r.deleteIfServed(ctx, prometheusRuleGK, &monitoringv1.PrometheusRule{ObjectMeta: metav1.ObjectMeta{
		Namespace: gw.Namespace, Name: render.PrometheusRuleName(gw)}}); err != nil {
		return err
	}
	switch {
	case len(missing) > 0:
		pending, err := r.installedNotServed(ctx, missing)
		if err != nil {
			return err
		}
		if pending {
			// The API server publishes a new CRD in discovery a moment after
			// marking it Established, and no further event comes: look again.
			st.requeueAfter = minPositive(st.requeueAfter, crdServedPoll)
			st.conds.False(typ, v1alpha1.ReasonCRDNotServed, fmt.Sprintf(
				"Prometheus Operator's %s installed but not served yet; looking again in %s", crdsAre(missing), crdServedPoll))
			break
		}
		st.conds.False(typ, v1alpha1.ReasonCRDNotInstalled, fmt.Sprintf(
			"Prometheus Operator's %s not installed: install Prometheus Operator, or disable the ServiceMonitor and alerts in spec.monitoring",
			crdsAre(missing)))
	case !mon.ServiceMonitor.Enabled && !mon.Alerts.Enabled:
		st.conds.True(typ, v1alpha1.ReasonDisabled, "ServiceMonitor and alerts are disabled")
	default:
		st.conds.True(typ, v1alpha1.ReasonReady, "ServiceMonitor and alert rules applied as configured")
	}
	return nil
}

func applyMonitoringChild[T client.Object](ctx context.Context, r *ChatGatewayReconciler, st *gatewayState,
	gvk schema.GroupVersionKind, name string, build func(render.Inputs) (T, error)) error {
	if ok, err := r.upToDate(ctx, st, gvk, name); err != nil || ok {
		return err
	}
	obj, err := build(st.inputs(r.GatewayImage))
	if err != nil {
		return failed(v1alpha1.ReasonRenderFailed, "rendering monitoring", err)
	}
	return r.applyChild(ctx, st, obj)
}

// served asks the RESTMapper, which rediscovers a group it has not seen, so a
// CRD installed after the manager started is found.
func (r *ChatGatewayReconciler) served(gk schema.GroupKind) (bool, error) {
	_, err := r.RESTMapper().RESTMapping(gk, monitoringv1.SchemeGroupVersion.Version)
	if err == nil {
		return true, nil
	}
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	return false, fmt.Errorf("discovering %s: %w", gk, err)
}

// crdsAre names the CRDs with their verb: "CRD a is", "CRDs a, b are".
func crdsAre(names []string) string {
	if len(names) == 1 {
		return "CRD " + names[0] + " is"
	}
	return "CRDs " + strings.Join(names, ", ") + " are"
}

// crdServedPoll is how soon a gateway looks again for a monitoring CRD that
// exists but is not yet served.
const crdServedPoll = 2 * time.Second

// installedNotServed reports whether any of the named CRDs exists (in the
// manager's metadata cache of CRDs) although discovery does not serve it yet.
func (r *ChatGatewayReconciler) installedNotServed(ctx context.Context, names []string) (bool, error) {
	for _, name := range names {
		crd := &metav1.PartialObjectMetadata{}
		crd.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
		err := r.Get(ctx, client.ObjectKey{Name: name}, crd)
		switch {
		case err == nil:
			return true, nil
		case !apierrors.IsNotFound(err):
			return false, failed(v1alpha1.ReasonReadFailed, fmt.Sprintf("reading CustomResourceDefinition %q", name), err)
		}
	}
	return false, nil
}

func (r *ChatGatewayReconciler) deleteIfServed(ctx context.Context, gk schema.GroupKind, obj client.Object) error {
	if ok, err := r.served(gk); err != nil || !ok {
		return err
	}
	return deleteIfExists(ctx, r.Client, obj)
}
