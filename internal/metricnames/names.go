// Package metricnames holds the names of the series the gateway exports and
// of their labels. The gateway registers its collectors under these names and
// the operator's renderers (alert rules, dashboard) query them, so a rename
// is one edit that both sides see. internal/gateway's exported-series test
// checks that every series a rendered rule or panel names is exported, and
// test/e2e's TestMonitoringOnPrometheus that every panel's query returns the
// right numbers on a real Prometheus scraping the gateway.
//
// It imports nothing and holds nothing but constants.
package metricnames

// Series the gateway exports.
const (
	Requests           = "chatgateway_requests_total"
	Spend              = "chatgateway_spend_usd_total"
	Tokens             = "chatgateway_tokens_total"
	Images             = "chatgateway_images_total"
	RequestDuration    = "chatgateway_request_duration_seconds"
	TimeToFirstToken   = "chatgateway_time_to_first_token_seconds"
	Failovers          = "chatgateway_failovers_total"
	AuthFailures       = "chatgateway_auth_failures_total"
	RequestsInFlight   = "chatgateway_requests_in_flight"
	ConfigReloads      = "chatgateway_config_reloads_total"
	ConfigReloadErrors = "chatgateway_config_reload_errors_total"
	ConfigLastReload   = "chatgateway_config_last_reload_success_timestamp_seconds"
	QuotaUsedRatio     = "chatgateway_quota_used_ratio"
	QuotaRejections    = "chatgateway_quota_rejections_total"
	QuotaNotifications = "chatgateway_quota_notifications_total"
)

// Label names.
const (
	LabelEndUser        = "end_user"
	LabelModel          = "model"
	LabelRequestedModel = "requested_model"
	LabelProvider       = "provider"
	LabelStatus         = "status"
	LabelType           = "type"
	LabelFrom           = "from"
	LabelTo             = "to"
	LabelReason         = "reason"
	LabelLimit          = "limit"
	LabelThreshold      = "threshold"
	LabelResult         = "result"
)
