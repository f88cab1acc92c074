package quota

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
)

// quotaMetrics are the quota series, registered on the gateway's registry.
type quotaMetrics struct {
	rejections    *prometheus.CounterVec
	notifications *prometheus.CounterVec
}

func newQuotaMetrics(reg prometheus.Registerer, k *Keeper) *quotaMetrics {
	m := &quotaMetrics{
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.QuotaRejections,
			Help: "Requests refused because their worst-case cost did not fit the user's daily hard limit.",
		}, []string{metricnames.LabelEndUser}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.QuotaNotifications,
			Help: "Quota notifications by threshold (soft, hard) and result (sent, failed, dropped, unconfigured).",
		}, []string{metricnames.LabelThreshold, metricnames.LabelResult}),
	}
	reg.MustRegister(m.rejections, m.notifications, usedCollector{k})
	return m
}

// usedDesc is the ratio gauge the operator's alert rules and dashboard
// query by this exact name.
var usedDesc = prometheus.NewDesc(metricnames.QuotaUsedRatio,
	"Today's settled spend over the daily limit, per user and limit (soft, hard), as this replica knows it: the store's at its last lease grant plus what it settled since; 0 from the start of a new quota day.",
	[]string{metricnames.LabelEndUser, metricnames.LabelLimit}, nil)

// usedCollector computes the ratios at scrape time, so a person's gauge
// falls to zero when their quota day ends rather than keeping yesterday's
// value until their next request. With metricsEndUser None every user
// would share one series, so nothing is reported.
type usedCollector struct{ k *Keeper }

func (c usedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- usedDesc }

func (c usedCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.k.now()
	c.k.accounts.Range(func(_, v any) bool {
		a := v.(*account)
		a.mu.Lock()
		p, lim, endUser, spent, spentDay := a.policy, a.limits, a.endUser, a.spent, a.spentDay
		a.mu.Unlock()
		if p == nil || endUser == "" {
			return true
		}
		if _, _, day := p.Window(now); day != spentDay {
			spent = 0 // a new day, nothing settled in it yet
		}
		// Floats only here, at the Prometheus boundary.
		if lim.Soft > 0 {
			ch <- prometheus.MustNewConstMetric(usedDesc, prometheus.GaugeValue, float64(spent)/float64(lim.Soft), endUser, thresholdSoft)
		}
		if lim.Hard > 0 {
			ch <- prometheus.MustNewConstMetric(usedDesc, prometheus.GaugeValue, float64(spent)/float64(lim.Hard), endUser, thresholdHard)
		}
		return true
	})
}
