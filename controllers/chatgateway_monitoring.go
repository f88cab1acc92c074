package controllers

import (
	"context"
	"fmt"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
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
		st.conds.False(typ, v1alpha1.ReasonCRDNotInstalled, fmt.Sprintf(
			"Prometheus Operator's CRD %s is not installed: install Prometheus Operator, or disable the ServiceMonitor and alerts in spec.monitoring",
			strings.Join(missing, ", ")))
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

func (r *ChatGatewayReconciler) deleteIfServed(ctx context.Context, gk schema.GroupKind, obj client.Object) error {
	if ok, err := r.served(gk); err != nil || !ok {
		return err
	}
	return deleteIfExists(ctx, r.Client, obj)
}
