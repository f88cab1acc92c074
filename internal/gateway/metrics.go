package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
)

// metrics live on a private registry: the gateway exposes exactly these,
// plus the Go and process collectors, and tests can build as many gateways
// as they like.
type metrics struct {
	reg *prometheus.Registry

	requests  *prometheus.CounterVec
	spend     *prometheus.CounterVec
	tokens    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	ttft      *prometheus.HistogramVec
	failovers *prometheus.CounterVec
	authFails *prometheus.CounterVec
	inFlight  prometheus.Gauge

	reloads      prometheus.Counter
	reloadErrors prometheus.Counter
	lastReload   prometheus.Gauge
}

// Label values are bounded: aliases and provider names come from the
// config, status codes and failure classes from small fixed sets, end_user
// from the allowlist. None ever carries content.
func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricnames.Requests,
		Help: "Model requests by user, model alias that served, the alias asked for (\"auto\" for routed requests; empty when unknown), provider that answered (empty when none did) and HTTP status (499: the client went away).",
	}, []string{"end_user", "model", "requested_model", "provider", "status"})
	m.spend = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricnames.Spend,
		Help: "Cost of model requests in US dollars, from the configured prices.",
	}, []string{"end_user", "model", "provider"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricnames.Tokens,
		Help: "Tokens by type: input (uncached), output, cache_read, cache_write.",
	}, []string{"end_user", "model", "provider", "type"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    metricnames.RequestDuration,
		Help:    "Time from receiving a model request to its last byte.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320},
	}, []string{"model", "provider"})
	m.ttft = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    metricnames.TimeToFirstToken,
		Help:    "Time from receiving a streaming request to its first event reaching the client.",
		Buckets: []float64{0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6},
	}, []string{"model", "provider"})
	m.failovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricnames.Failovers,
		Help: "Attempts that failed and moved on to another provider, by failure class.",
	}, []string{"from", "to", "reason"})
	m.authFails = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricnames.AuthFailures,
		Help: "Requests refused before reaching a model, by reason.",
	}, []string{"reason"})
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: metricnames.RequestsInFlight,
		Help: "Model requests being served.",
	})
	m.reloads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: metricnames.ConfigReloads,
		Help: "Successful loads of the config and its files.",
	})
	m.reloadErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: metricnames.ConfigReloadErrors,
		Help: "Changed configs that failed to load; the gateway kept the last good one.",
	})
	m.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: metricnames.ConfigLastReload,
		Help: "When the config in use was loaded.",
	})
	for _, c := range []prometheus.Collector{m.requests, m.spend, m.tokens, m.duration, m.ttft, m.failovers, m.authFails, m.inFlight, m.reloads, m.reloadErrors, m.lastReload} {
		f(c)
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// outcome is what one model request did, for metrics, the ledger and the log.
type outcome struct {
	endUser  string
	model    string // alias that served, else the one asked for
	provider string // empty when no provider answered
	status   int
	usage    metering.Usage
	cost     metering.Picodollars
	duration time.Duration
	ttft     time.Duration // zero unless a stream reached the client

	// requested is the alias asked for, "auto", or "" for an unknown name:
	// a label value, so never what the caller typed.
	requested string
}

func (m *metrics) observe(o *outcome) {
	m.requests.WithLabelValues(o.endUser, o.model, o.requested, o.provider, strconv.Itoa(o.status)).Inc()
	m.duration.WithLabelValues(o.model, o.provider).Observe(o.duration.Seconds())
	if o.ttft > 0 {
		m.ttft.WithLabelValues(o.model, o.provider).Observe(o.ttft.Seconds())
	}
	if o.provider == "" {
		return
	}
	m.spend.WithLabelValues(o.endUser, o.model, o.provider).Add(o.cost.USD())
	for _, t := range []struct {
		typ string
		n   int64
	}{{"input", o.usage.Input}, {"output", o.usage.Output}, {"cache_read", o.usage.CacheRead}, {"cache_write", o.usage.CacheWrite}} {
		if t.n > 0 {
			m.tokens.WithLabelValues(o.endUser, o.model, o.provider, t.typ).Add(float64(t.n))
		}
	}
}
