package quota

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
)

// quotaMetrics are the quota series, registered on the gateway's registry.
type quotaMetrics struct {
	used          *prometheus.GaugeVec
	rejections    *prometheus.CounterVec
	notifications *prometheus.CounterVec
}

func newQuotaMetrics(reg prometheus.Registerer) *quotaMetrics {
	m := &quotaMetrics{
		// The operator's alert rules and dashboard query this exact name.
		used: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricnames.QuotaUsedRatio,
			Help: "Today's settled spend over the daily limit, per user and limit (soft, hard); updated as requests end.",
		}, []string{metricnames.LabelEndUser, metricnames.LabelLimit}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.QuotaRejections,
			Help: "Requests refused because their worst-case cost did not fit the user's daily hard limit.",
		}, []string{metricnames.LabelEndUser}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricnames.QuotaNotifications,
			Help: "Quota notifications by threshold (soft, hard) and result (sent, failed, dropped, unconfigured).",
		}, []string{metricnames.LabelThreshold, metricnames.LabelResult}),
	}
	reg.MustRegister(m.used, m.rejections, m.notifications)
	return m
}

// setUsed updates the ratio gauges. With metricsEndUser None every user
// would share one series and overwrite each other, so nothing is set.
func (m *quotaMetrics) setUsed(endUser string, l Limits, spent metering.Picodollars) {
	if endUser == "" {
		return
	}
	// Floats only here, at the Prometheus boundary.
	if l.Soft > 0 {
		m.used.WithLabelValues(endUser, thresholdSoft).Set(float64(spent) / float64(l.Soft))
	}
	if l.Hard > 0 {
		m.used.WithLabelValues(endUser, thresholdHard).Set(float64(spent) / float64(l.Hard))
	}
}
