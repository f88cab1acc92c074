package gateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
)

// metrics live on a private registry: the gateway exposes exactly what its
// parts register (the completion core's request series, the quota's),
// these, and the Go and process collectors; tests can build as many
// gateways as they like.
type metrics struct {
	reg *prometheus.Registry

	authFails    *prometheus.CounterVec
	reloads      prometheus.Counter
	reloadErrors prometheus.Counter
	lastReload   prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		authFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.AuthFailures,
			Help: "Requests refused before reaching a model, by reason.",
		}, []string{metricnames.LabelReason}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricnames.ConfigReloads,
			Help: "Successful loads of the config and its files.",
		}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricnames.ConfigReloadErrors,
			Help: "Changed configs that failed to load; the gateway kept the last good one.",
		}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricnames.ConfigLastReload,
			Help: "When the config in use was loaded.",
		}),
	}
	m.reg.MustRegister(m.authFails, m.reloads, m.reloadErrors, m.lastReload,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
