package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
)

// The Grafana dashboard model, only the fields we set (schemaVersion 39).
// Structs, not maps, keep the JSON in a fixed order.
type dashboard struct {
	Annotations   dashboardList[any]      `json:"annotations"`
	Description   string                  `json:"description"`
	Editable      bool                    `json:"editable"`
	GraphTooltip  int                     `json:"graphTooltip"`
	ID            *int                    `json:"id"`
	Links         []any                   `json:"links"`
	Panels        []panel                 `json:"panels"`
	Refresh       string                  `json:"refresh"`
	SchemaVersion int                     `json:"schemaVersion"`
	Tags          []string                `json:"tags"`
	Templating    dashboardList[variable] `json:"templating"`
	Time          timeRange               `json:"time"`
	Timezone      string                  `json:"timezone"`
	Title         string                  `json:"title"`
	UID           string                  `json:"uid"`
}

type dashboardList[T any] struct {
	List []T `json:"list"`
}

type timeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name        string         `json:"name"`
	Label       string         `json:"label"`
	Type        string         `json:"type"`
	Datasource  *datasourceRef `json:"datasource,omitempty"`
	Definition  string         `json:"definition,omitempty"`
	Query       any            `json:"query"`
	Regex       string         `json:"regex"`
	Refresh     int            `json:"refresh"`
	Sort        int            `json:"sort,omitempty"`
	Multi       bool           `json:"multi"`
	IncludeAll  bool           `json:"includeAll"`
	AllValue    string         `json:"allValue,omitempty"`
	Current     struct{}       `json:"current"`
	Options     []any          `json:"options"`
	Hide        int            `json:"hide"`
	Description string         `json:"description,omitempty"`
}

type variableQuery struct {
	Query string `json:"query"`
	RefID string `json:"refId"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  datasourceRef  `json:"datasource"`
	GridPos     gridPos        `json:"gridPos"`
	FieldConfig fieldConfig    `json:"fieldConfig"`
	Options     map[string]any `json:"options"`
	Targets     []target       `json:"targets"`
}

type gridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

type fieldConfig struct {
	Defaults  fieldDefaults `json:"defaults"`
	Overrides []any         `json:"overrides"`
}

type fieldDefaults struct {
	Unit       string         `json:"unit,omitempty"`
	Min        *float64       `json:"min,omitempty"`
	Decimals   *int           `json:"decimals,omitempty"`
	Color      map[string]any `json:"color,omitempty"`
	Custom     map[string]any `json:"custom,omitempty"`
	Thresholds thresholds     `json:"thresholds"`
}

type thresholds struct {
	Mode  string          `json:"mode"`
	Steps []thresholdStep `json:"steps"`
}

type thresholdStep struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

type target struct {
	RefID        string        `json:"refId"`
	Datasource   datasourceRef `json:"datasource"`
	Expr         string        `json:"expr"`
	LegendFormat string        `json:"legendFormat"`
	Instant      bool          `json:"instant"`
	Range        bool          `json:"range"`
}

// datasource is the dashboard's Prometheus, picked with the datasource variable.
var datasource = datasourceRef{Type: "prometheus", UID: "${datasource}"}

// DashboardKey is the ConfigMap key, and so the file name Grafana's sidecar
// writes: unique per gateway, as the sidecar puts every dashboard in one folder.
func DashboardKey(gw *v1alpha1.ChatGateway) string {
	return fmt.Sprintf("chatgateway-%s-%s.json", gw.Namespace, gw.Name)
}

// GrafanaDashboardJSON is the dashboard for one gateway: cost per user over
// time, spend against the seat price (monitoring.grafanaDashboard.seatPriceUSD
// for each user on the allowlist), model use per user, latency and time to
// first token percentiles per model and provider, failovers and quota use.
func GrafanaDashboardJSON(in Inputs) ([]byte, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	gw := in.Gateway
	seat := usdOr(gw.Spec.Monitoring.GrafanaDashboard.SeatPriceUSD, defaultSeatPriceUSD)
	seatMicro, err := gc.ParseUSD(seat)
	if err != nil {
		return nil, fmt.Errorf("monitoring.grafanaDashboard.seatPriceUSD: %w", err)
	}
	seats := 0
	if in.Allowlist != nil {
		seats = len(in.Allowlist.Spec.Users)
	}
	seatTotal := formatUSD(seatMicro * gc.MicroUSD(seats))
	seatFloat := float64(seatMicro) / 1e6

	sel := seriesSelector(gw)
	userSel := sel + `,end_user=~"$end_user"`
	q := func(format string, args ...any) string { return fmt.Sprintf(format, args...) }
	quantiles := func(metric string) []target {
		var ts []target
		for i, p := range []struct{ q, name string }{{"0.5", "p50"}, {"0.95", "p95"}, {"0.99", "p99"}} {
			ts = append(ts, rangeTarget(string(rune('A'+i)),
				q("histogram_quantile(%s, sum by (le, model, provider) (rate(%s_bucket{%s}[$__rate_interval])))", p.q, metric, sel),
				p.name+" {{model}} via {{provider}}"))
		}
		return ts
	}

	panels := []panel{
		{
			Type:        "bargauge",
			Title:       fmt.Sprintf("Spend per user, last 30 days, against $%s a seat", seat),
			Description: "What each person's use cost over the last 30 days. The bar turns red past the price of one subscription seat.",
			GridPos:     gridPos{H: 8, W: 12, X: 0, Y: 0},
			FieldConfig: fieldConfig{Defaults: fieldDefaults{
				Unit: "currencyUSD", Min: ptrTo(0.0), Decimals: ptrTo(2),
				Thresholds: steps("green", stepAt("red", seatFloat)),
			}},
			Options: map[string]any{
				"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": true,
				"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			},
			Targets: []target{instantTarget("A", q("sum by (end_user) (increase(%s{%s}[30d]))", metricnames.Spend, userSel), "{{end_user}}")},
		},
		{
			Type:        "stat",
			Title:       fmt.Sprintf("Spend, last 30 days, against %d seats at $%s", seats, seat),
			Description: "Everyone's spend over the last 30 days next to what a subscription for each user on the allowlist would cost.",
			GridPos:     gridPos{H: 8, W: 12, X: 12, Y: 0},
			FieldConfig: fieldConfig{Defaults: fieldDefaults{
				Unit: "currencyUSD", Decimals: ptrTo(2), Thresholds: steps("blue"),
			}},
			Options: map[string]any{
				"colorMode": "value", "graphMode": "none", "justifyMode": "auto", "textMode": "value_and_name",
				"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			},
			Targets: []target{
				instantTarget("A", q("sum(increase(%s{%s}[30d]))", metricnames.Spend, sel), "Spend"),
				instantTarget("B", q("vector(%s)", seatTotal), fmt.Sprintf("%d seats at $%s", seats, seat)),
			},
		},
		{
			Type:        "timeseries",
			Title:       "Cost per user (USD an hour)",
			Description: "Spend rate per person.",
			GridPos:     gridPos{H: 8, W: 12, X: 0, Y: 8},
			FieldConfig: fieldConfig{Defaults: fieldDefaults{Unit: "currencyUSD", Min: ptrTo(0.0), Thresholds: steps("green"), Custom: stacked()}},
			Options:     timeseriesOptions(),
			Targets:     []target{rangeTarget("A", q("sum by (end_user) (rate(%s{%s}[$__rate_interval])) * 3600", metricnames.Spend, userSel), "{{end_user}}")},
		},
		{
			Type:        "timeseries",
			Title:       "Model use per user",
			Description: "Requests a second per person and model.",
			GridPos:     gridPos{H: 8, W: 12, X: 12, Y: 8},
			FieldConfig: fieldConfig{Defaults: fieldDefaults{Unit: "reqps", Min: ptrTo(0.0), Thresholds: steps("green"), Custom: stacked()}},
			Options:     timeseriesOptions(),
			Targets:     []target{rangeTarget("A", q("sum by (end_user, model) (rate(%s{%s}[$__rate_interval]))", metricnames.Requests, userSel), "{{end_user}} {{model}}")},
		},
		{
			Type:        "timeseries",
			Title:       "Request latency by model and provider",
			Description: "Whole-request duration: p50, p95 and p99.",
			GridPos:     gridPos{H: 8, W: 12, X: 0, Y: 16},
			FieldConfig: fieldConfig{Defaults: fieldDefaults{Unit: "s", Min: ptrTo(0.0), Thresholds: steps("green")}},
			Options:     timeseriesOptions(),
			Targets:     quantiles(metricnames.RequestDuration),
		},
		{
			Type:        "timeseries",
			Title:       "Time to first token by model and provider",
			Description: "How long people wait for the first token of a streamed reply: p50, p95 and p99.",
			GridPos:     gridPos{H: 8, W: 12, X: 12, Y: 16},
			FieldConfig: fieldConfig{Defaults: fieldDefaults{Unit: "s", Min: ptrTo(0.0), Thresholds: steps("green")}},
			Options:     timeseriesOptions(),
			Targets:     quantiles(metricnames.TimeToFirstToken),
		},
		{
			Type:        "timeseries",
			Title:       "Failovers",
			Description: "Requests moved from one provider to the next, by reason.",
			GridPos:     gridPos{H: 8, W: 12, X: 0, Y: 24},
			FieldConfig: fieldConfig{Defaults: fieldDefaults{Unit: "reqps", Min: ptrTo(0.0), Thresholds: steps("green")}},
			Options:     timeseriesOptions(),
			Targets:     []target{rangeTarget("A", q("sum by (from, to, reason) (rate(%s{%s}[$__rate_interval]))", metricnames.Failovers, sel), "{{from}} to {{to}} ({{reason}})")},
		},
		{
			Type:        "bargauge",
			Title:       "Quota use today",
			Description: "Each person's spend today as a share of their daily soft and hard quota.",
			GridPos:     gridPos{H: 8, W: 12, X: 12, Y: 24},
			FieldConfig: fieldConfig{Defaults: fieldDefaults{
				Unit: "percentunit", Min: ptrTo(0.0), Decimals: ptrTo(0),
				Thresholds: steps("green", stepAt("orange", 0.8), stepAt("red", 1)),
			}},
			Options: map[string]any{
				"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": true,
				"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			},
			Targets: []target{instantTarget("A", q("max by (end_user, limit) (%s{%s})", metricnames.QuotaUsedRatio, userSel), "{{end_user}} ({{limit}})")},
		},
	}
	for i := range panels {
		panels[i].ID = i + 1
		panels[i].Datasource = datasource
		if panels[i].FieldConfig.Overrides == nil {
			panels[i].FieldConfig.Overrides = []any{}
		}
	}

	userQuery := fmt.Sprintf("label_values(%s{%s}, end_user)", metricnames.Spend, sel)
	d := dashboard{
		Annotations:   dashboardList[any]{List: []any{}},
		Description:   fmt.Sprintf("Cost, use and health of chat gateway %s/%s. Rendered by %s; edits are overwritten.", gw.Namespace, gw.Name, ManagedBy),
		GraphTooltip:  1,
		Links:         []any{},
		Panels:        panels,
		Refresh:       "1m",
		SchemaVersion: 39,
		Tags:          []string{AppName},
		Templating: dashboardList[variable]{List: []variable{
			{Name: "datasource", Label: "Data source", Type: "datasource", Query: "prometheus", Refresh: 1, Options: []any{}},
			{
				Name: "end_user", Label: "User", Type: "query", Datasource: &datasource,
				Definition: userQuery, Query: variableQuery{Query: userQuery, RefID: "PrometheusVariableQueryEditor-VariableQuery"},
				Refresh: 2, Sort: 1, Multi: true, IncludeAll: true, AllValue: ".*", Options: []any{},
			},
		}},
		Time:     timeRange{From: "now-7d", To: "now"},
		Timezone: "browser",
		Title:    fmt.Sprintf("Chat gateway %s/%s", gw.Namespace, gw.Name),
		UID:      dashboardUID(gw),
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("marshalling dashboard: %w", err)
	}
	return b.Bytes(), nil
}

// GrafanaDashboard is the ConfigMap Grafana's dashboard sidecar loads
// (label grafana_dashboard: "1").
func GrafanaDashboard(in Inputs) (*corev1.ConfigMap, error) {
	b, err := GrafanaDashboardJSON(in)
	if err != nil {
		return nil, err
	}
	meta := objectMeta(in.Gateway, DashboardConfigMapName(in.Gateway), ComponentDashboard)
	meta.Labels[LabelGrafanaDashboard] = "1"
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta,
		Data:       map[string]string{DashboardKey(in.Gateway): string(b)},
	}, nil
}

// dashboardUID is stable per gateway and within Grafana's 40 characters.
func dashboardUID(gw *v1alpha1.ChatGateway) string {
	sum := sha256.Sum256([]byte(gw.Namespace + "/" + gw.Name))
	return "chatgateway-" + hex.EncodeToString(sum[:])[:16]
}

func rangeTarget(ref, expr, legend string) target {
	return target{RefID: ref, Datasource: datasource, Expr: expr, LegendFormat: legend, Range: true}
}

func instantTarget(ref, expr, legend string) target {
	return target{RefID: ref, Datasource: datasource, Expr: expr, LegendFormat: legend, Instant: true}
}

func steps(base string, more ...thresholdStep) thresholds {
	return thresholds{Mode: "absolute", Steps: append([]thresholdStep{{Color: base}}, more...)}
}

func stepAt(color string, v float64) thresholdStep { return thresholdStep{Color: color, Value: &v} }

func stacked() map[string]any {
	return map[string]any{"drawStyle": "line", "fillOpacity": 20, "lineWidth": 1, "stacking": map[string]any{"group": "A", "mode": "normal"}}
}

func timeseriesOptions() map[string]any {
	return map[string]any{
		"legend":  map[string]any{"calcs": []string{"mean", "max"}, "displayMode": "table", "placement": "bottom", "showLegend": true},
		"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
	}
}

func ptrTo[T any](v T) *T { return &v }

// formatUSD writes an amount without trailing zeros: "60", "0.5".
func formatUSD(m gc.MicroUSD) string {
	s := strings.TrimRight(m.String(), "0")
	return strings.TrimSuffix(s, ".")
}
