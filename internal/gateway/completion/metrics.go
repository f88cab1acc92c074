package completion

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
)

// metrics are the request series. Label values are bounded: aliases and
// provider names come from the config, status codes and failure classes
// from small fixed sets, end_user from the allowlist. None ever carries
// content.
type metrics struct {
	requests  *prometheus.CounterVec
	spend     *prometheus.CounterVec
	tokens    *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	ttft      *prometheus.HistogramVec
	failovers *prometheus.CounterVec
	inFlight  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.Requests,
			Help: "Model requests by user, model alias that served, the alias asked for (\"auto\" for routed requests; empty when unknown), provider that answered (empty when none did) and HTTP status (499: the client went away).",
		}, []string{metricnames.LabelEndUser, metricnames.LabelModel, metricnames.LabelRequestedModel, metricnames.LabelProvider, metricnames.LabelStatus}),
		spend: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.Spend,
			Help: "Cost of model requests in US dollars, from the configured prices.",
		}, []string{metricnames.LabelEndUser, metricnames.LabelModel, metricnames.LabelProvider}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.Tokens,
			Help: "Tokens by type: input (uncached), output, cache_read, cache_write.",
		}, []string{metricnames.LabelEndUser, metricnames.LabelModel, metricnames.LabelProvider, metricnames.LabelType}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricnames.RequestDuration,
			Help:    "Time from receiving a model request to its last byte.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320},
		}, []string{metricnames.LabelModel, metricnames.LabelProvider}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricnames.TimeToFirstToken,
			Help:    "Time from receiving a streaming request to its first event reaching the client.",
			Buckets: []float64{0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6},
		}, []string{metricnames.LabelModel, metricnames.LabelProvider}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.Failovers,
			Help: "Attempts that failed and moved on to another provider, by failure class.",
		}, []string{metricnames.LabelFrom, metricnames.LabelTo, metricnames.LabelReason}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricnames.RequestsInFlight,
			Help: "Model requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.spend, m.tokens, m.duration, m.ttft, m.failovers, m.inFlight)
	return m
}

func (m *metrics) observe(endUser string, o *Outcome) {
	m.requests.WithLabelValues(endUser, o.Model, o.Requested, o.Provider, strconv.Itoa(o.Status)).Inc()
	m.duration.WithLabelValues(o.Model, o.Provider).Observe(o.Duration.Seconds())
	if o.TTFT > 0 {
		m.ttft.WithLabelValues(o.Model, o.Provider).Observe(o.TTFT.Seconds())
	}
	if o.Provider == "" {
		return
	}
	m.spend.WithLabelValues(endUser, o.Model, o.Provider).Add(o.Cost.USD())
	for _, t := range []struct {
		typ string
		n   int64
	}{{"input", o.Usage.Input}, {"output", o.Usage.Output}, {"cache_read", o.Usage.CacheRead}, {"cache_write", o.Usage.CacheWrite}} {
		if t.n > 0 {
			m.tokens.WithLabelValues(endUser, o.Model, o.Provider, t.typ).Add(float64(t.n))
		}
	}
}
