package completion

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
)

// metrics are the request series. Label values are bounded: aliases and
// provider names come from the config, status codes and failure classes
// from small fixed sets, end_user from the allowlist. None ever carries
// content.
type metrics struct {
	// cache holds the children per label tuple (seriesKey → *series).
	cache     sync.Map
	requests  *prometheus.CounterVec
	spend     *prometheus.CounterVec
	tokens    *prometheus.CounterVec
	images    *prometheus.CounterVec
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
		images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.Images,
			Help: "Pictures made by image models (POST /v1/images/generations), by user, model alias and provider; their cost is in the spend counter.",
		}, []string{metricnames.LabelEndUser, metricnames.LabelModel, metricnames.LabelProvider}),
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
	reg.MustRegister(m.requests, m.spend, m.tokens, m.images, m.duration, m.ttft, m.failovers, m.inFlight)
	return m
}

// seriesKey is one label tuple of a request's series.
type seriesKey struct {
	endUser, model, requested, provider string
	status                              int
}

// series are the children of one label tuple, looked up once: a
// CounterVec's WithLabelValues hashes its labels on every call.
type series struct {
	requests prometheus.Counter
	duration prometheus.Observer // nil when no provider answered
	// ttft is made with the first stream: a child never observed would be
	// a time-to-first-token series of NaN for a model only ever asked
	// without streaming.
	ttftOnce sync.Once
	ttft     prometheus.Observer
	spend    prometheus.Counter
	tokens   [4]prometheus.Counter // input, output, cache_read, cache_write
	images   prometheus.Counter    // nil but for image models
}

var tokenTypes = [4]string{"input", "output", "cache_read", "cache_write"}

func (m *metrics) series(k seriesKey) *series { return m.seriesOf(k, false) }

// seriesOf is series; image says the model makes pictures, so its series
// count them (a chat model's do not carry a pictures series at zero).
func (m *metrics) seriesOf(k seriesKey, image bool) *series {
	if s, ok := m.cache.Load(k); ok {
		return s.(*series)
	}
	s := &series{requests: m.requests.WithLabelValues(k.endUser, k.model, k.requested, k.provider, strconv.Itoa(k.status))}
	if k.provider != "" {
		// Refusals and failures before any provider answered are counted,
		// but timed nowhere: a latency series with an empty provider would
		// mix them into the providers' latencies.
		s.duration = m.duration.WithLabelValues(k.model, k.provider)
		s.spend = m.spend.WithLabelValues(k.endUser, k.model, k.provider)
		if image {
			s.images = m.images.WithLabelValues(k.endUser, k.model, k.provider)
		} else {
			for i, t := range tokenTypes {
				s.tokens[i] = m.tokens.WithLabelValues(k.endUser, k.model, k.provider, t)
			}
		}
	}
	v, _ := m.cache.LoadOrStore(k, s)
	return v.(*series)
}

func (m *metrics) observe(endUser string, o *Outcome) { m.observeKind(endUser, o, false) }

func (m *metrics) observeKind(endUser string, o *Outcome, image bool) {
	s := m.seriesOf(seriesKey{endUser, o.Model, o.Requested, o.Provider, o.Status}, image)
	s.requests.Inc()
	if o.Provider == "" {
		return
	}
	s.duration.Observe(o.Duration.Seconds())
	if o.TTFT > 0 {
		s.ttftOnce.Do(func() { s.ttft = m.ttft.WithLabelValues(o.Model, o.Provider) })
		s.ttft.Observe(o.TTFT.Seconds())
	}
	s.spend.Add(o.Cost.USD())
	if s.images != nil {
		s.images.Add(float64(o.Images))
		return
	}
	for i, n := range [4]int64{o.Usage.Input, o.Usage.Output, o.Usage.CacheRead, o.Usage.CacheWrite} {
		if n > 0 {
			s.tokens[i].Add(float64(n))
		}
	}
}

// Precreate makes each person's request, spend and token series exist at
// zero for every model and provider that may serve them, as Prometheus
// advises for series known in advance: the first request's increase is
// then seen, with no created-timestamp ingestion and no race with the
// first scrape. The gateway calls it on start and on every reload.
func (c *Core) Precreate(endUsers []string, snap *Snapshot) {
	// Counters only: a histogram child at zero would be a latency series
	// whose quantiles are NaN until the first request.
	m := c.metrics
	for _, alias := range snap.Models.Models() {
		for _, rt := range snap.Models.Plan(alias) {
			for _, u := range endUsers {
				if u == "" {
					continue
				}
				p := rt.Provider.Name()
				m.requests.WithLabelValues(u, rt.Alias, rt.Alias, p, strconv.Itoa(http.StatusOK))
				m.spend.WithLabelValues(u, rt.Alias, p)
				if len(rt.ImagePrices) > 0 {
					m.images.WithLabelValues(u, rt.Alias, p)
					continue
				}
				for _, t := range tokenTypes {
					m.tokens.WithLabelValues(u, rt.Alias, p, t)
				}
			}
		}
	}
}
