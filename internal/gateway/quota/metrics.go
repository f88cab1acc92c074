package quota

import (
	"context"
	"time"

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
	"Today's settled spend over the daily limit, per user and limit (soft, hard): the quota store's at scrape time, so every replica reports the spend of all; this replica's own view when the store does not answer.",
	[]string{metricnames.LabelEndUser, metricnames.LabelLimit}, nil)

// usedReadTimeout bounds the store reads of one scrape; the accounts left
// when it runs out report this replica's view.
const usedReadTimeout = 2 * time.Second

// usedCollector computes the ratios at scrape time from the store's settled
// spend. A replica's own view (the store's at its last lease grant plus
// what it settled since) misses what the other replicas settled after that
// grant, so with several replicas no gauge equalled the ledger's spend. The
// read is one indexed query per person with a quota, per scrape: off the
// request path. With metricsEndUser None every user would share one
// series, so nothing is reported.
type usedCollector struct{ k *Keeper }

func (c usedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- usedDesc }

func (c usedCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.k.now()
	ctx, cancel := context.WithTimeout(context.Background(), usedReadTimeout)
	defer cancel()
	c.k.accounts.Range(func(_, v any) bool {
		a := v.(*account)
		a.mu.Lock()
		p, lim, endUser, spent, spentDay := a.policy, a.limits, a.endUser, a.spent, a.spentDay
		a.mu.Unlock()
		if p == nil || endUser == "" {
			return true
		}
		start, _, day := p.Window(now)
		if day != spentDay {
			spent = 0 // a new day, nothing settled in it yet
		}
		if ctx.Err() == nil {
			if u, err := c.k.store.QuotaUsage(ctx, a.user, start, now); err == nil {
				spent = u.SpentPicodollars
			}
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
