package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	sdkvariants "github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/metricnames"
)

// datasource is the dashboard's Prometheus, picked with the datasource variable.
var datasource = dashboard.DataSourceRef{Type: ptrTo("prometheus"), Uid: ptrTo("${datasource}")}

// DashboardKey is the ConfigMap key, and so the file name Grafana's sidecar
// writes: unique per gateway, as the sidecar puts every dashboard in one folder.
func DashboardKey(gw *v1alpha1.ChatGateway) string {
	return fmt.Sprintf("chatgateway-%s-%s.json", gw.Namespace, gw.Name)
}

// GrafanaDashboardJSON is the dashboard for one gateway, built with
// Grafana's typed builders (grafana-foundation-sdk): cost per user over
// time, spend against the seat price (monitoring.grafanaDashboard.seatPriceUSD
// for each user on the allowlist), model use per user, latency and time to
// first token percentiles per model and provider, failovers, quota use and
// each person's spend over 24 hours against the daily-spend alert.
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
	dailySpend := usdOr(gw.Spec.Monitoring.Alerts.DailySpendUSD, defaultDailySpendUSD)
	dailySpendMicro, err := gc.ParseUSD(dailySpend)
	if err != nil {
		return nil, fmt.Errorf("monitoring.alerts.dailySpendUSD: %w", err)
	}
	dailySpendFloat := float64(dailySpendMicro) / 1e6

	sel := seriesSelector(gw)
	user, model, provider := metricnames.LabelEndUser, metricnames.LabelModel, metricnames.LabelProvider
	userSel := fmt.Sprintf(`%s,%s=~"$%s"`, sel, user, user)
	q := fmt.Sprintf
	quantiles := func(metric string) []cog.Builder[sdkvariants.Dataquery] {
		var ts []cog.Builder[sdkvariants.Dataquery]
		for i, p := range []struct{ q, name string }{{"0.5", "p50"}, {"0.95", "p95"}, {"0.99", "p99"}} {
			ts = append(ts, rangeTarget(string(rune('A'+i)),
				q("histogram_quantile(%s, sum by (le, %s, %s) (rate(%s_bucket{%s}[$__rate_interval])))", p.q, model, provider, metric, sel),
				q("%s %s via %s", p.name, legend(model), legend(provider))))
		}
		return ts
	}
	lastValue := common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Fields("").Values(false)

	panels := []cog.Builder[dashboard.Panel]{
		bargauge.NewPanelBuilder().
			Title(fmt.Sprintf("Spend per user, last 30 days, against $%s a seat", seat)).
			Description("What each person's use cost over the last 30 days. The bar turns red past the price of one subscription seat.").
			GridPos(gridPos(0, 0)).
			Unit("currencyUSD").Min(0).Decimals(2).
			Thresholds(steps("green", stepAt("red", seatFloat))).
			DisplayMode(common.BarGaugeDisplayModeGradient).Orientation(common.VizOrientationHorizontal).ShowUnfilled(true).
			ReduceOptions(lastValue).
			Targets([]cog.Builder[sdkvariants.Dataquery]{instantTarget("A", q("sum by (%s) (%s)", user, spendIncrease(userSel, "30d")), legend(user))}),
		stat.NewPanelBuilder().
			Title(fmt.Sprintf("Spend, last 30 days, against %d seats at $%s", seats, seat)).
			Description("Everyone's spend over the last 30 days next to what a subscription for each user on the allowlist would cost.").
			GridPos(gridPos(12, 0)).
			Unit("currencyUSD").Decimals(2).Thresholds(steps("blue")).
			ColorMode(common.BigValueColorModeValue).GraphMode(common.BigValueGraphModeNone).
			JustifyMode(common.BigValueJustifyModeAuto).TextMode(common.BigValueTextModeValueAndName).
			ReduceOptions(lastValue).
			Targets([]cog.Builder[sdkvariants.Dataquery]{
				instantTarget("A", q("sum(%s)", spendIncrease(sel, "30d")), "Spend"),
				instantTarget("B", q("vector(%s)", seatTotal), fmt.Sprintf("%d seats at $%s", seats, seat)),
			}),
		stacked(timeseriesPanel("Cost per user (USD an hour)", "Spend rate per person.", "currencyUSD", 0, 8)).
			Targets([]cog.Builder[sdkvariants.Dataquery]{rangeTarget("A", q("sum by (%s) (rate(%s{%s}[$__rate_interval])) * 3600", user, metricnames.Spend, userSel), legend(user))}),
		stacked(timeseriesPanel("Model use per user", "Requests a second per person and model.", "reqps", 12, 8)).
			Targets([]cog.Builder[sdkvariants.Dataquery]{rangeTarget("A", q("sum by (%s, %s) (rate(%s{%s}[$__rate_interval]))", user, model, metricnames.Requests, userSel), legend(user)+" "+legend(model))}),
		timeseriesPanel("Request latency by model and provider", "Whole-request duration: p50, p95 and p99.", "s", 0, 16).
			Targets(quantiles(metricnames.RequestDuration)),
		timeseriesPanel("Time to first token by model and provider", "How long people wait for the first token of a streamed reply: p50, p95 and p99.", "s", 12, 16).
			Targets(quantiles(metricnames.TimeToFirstToken)),
		timeseriesPanel("Failovers", "Requests moved from one provider to the next, by reason.", "reqps", 0, 24).
			Targets([]cog.Builder[sdkvariants.Dataquery]{rangeTarget("A", q("sum by (%s, %s, %s) (rate(%s{%s}[$__rate_interval]))", metricnames.LabelFrom, metricnames.LabelTo, metricnames.LabelReason, metricnames.Failovers, sel),
				q("%s to %s (%s)", legend(metricnames.LabelFrom), legend(metricnames.LabelTo), legend(metricnames.LabelReason)))}),
		bargauge.NewPanelBuilder().
			Title("Quota use today").
			Description("Each person's spend today as a share of their daily soft and hard quota.").
			GridPos(gridPos(12, 24)).
			Unit("percentunit").Min(0).Decimals(0).
			Thresholds(steps("green", stepAt("orange", 0.8), stepAt("red", 1))).
			DisplayMode(common.BarGaugeDisplayModeGradient).Orientation(common.VizOrientationHorizontal).ShowUnfilled(true).
			ReduceOptions(lastValue).
			Targets([]cog.Builder[sdkvariants.Dataquery]{instantTarget("A", q("max by (%s, %s) (%s{%s})", user, metricnames.LabelLimit, metricnames.QuotaUsedRatio, userSel), q("%s (%s)", legend(user), legend(metricnames.LabelLimit)))}),
		timeseriesPanel(fmt.Sprintf("Spend per user, last 24 hours, against the $%s alert", dailySpend),
			"Each person's spend over the 24 hours before each point, as the daily-spend alert sees it (the gateway's PrometheusRule records it: it needs monitoring.alerts). The red line is monitoring.alerts.dailySpendUSD.",
			"currencyUSD", 0, 32).
			Span(24).Decimals(4).
			Thresholds(steps("green", stepAt("red", dailySpendFloat))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLine)).
			Targets([]cog.Builder[sdkvariants.Dataquery]{rangeTarget("A", q("sum by (%s) (%s{%s})", user, RecordUserDailySpend, userSel), legend(user))}),
	}

	userQuery := fmt.Sprintf("label_values(%s{%s}, %s)", metricnames.Spend, sel, user)
	b := dashboard.NewDashboardBuilder(fmt.Sprintf("Chat gateway %s/%s", gw.Namespace, gw.Name)).
		Uid(dashboardUID(gw)).
		Description(fmt.Sprintf("Cost, use and health of chat gateway %s/%s. Rendered by %s; edits are overwritten.", gw.Namespace, gw.Name, ManagedBy)).
		Readonly().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("1m").
		Tags([]string{AppName}).
		Time("now-7d", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder(user).Label("User").
			Datasource(datasource).Definition(userQuery).
			Query(dashboard.StringOrMap{Map: map[string]any{"query": userQuery, "refId": "PrometheusVariableQueryEditor-VariableQuery"}}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).IncludeAll(true).AllValue(".*"))
	for i, p := range panels {
		// Every panel reads the datasource variable; ids are fixed so links to a panel survive a re-render.
		switch p := p.(type) {
		case *bargauge.PanelBuilder:
			p.Id(uint32(i + 1)).Datasource(datasource)
		case *stat.PanelBuilder:
			p.Id(uint32(i + 1)).Datasource(datasource)
		case *timeseries.PanelBuilder:
			p.Id(uint32(i + 1)).Datasource(datasource)
		default:
			return nil, fmt.Errorf("dashboard panel %d: unexpected builder %T", i, p)
		}
		b.WithPanel(p)
	}
	d, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("building the dashboard: %w", err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	// Compact: indenting makes it two thirds larger, and every gateway's copy
	// is stored, watched and sent in each server-side apply.
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("marshalling dashboard: %w", err)
	}
	return out.Bytes(), nil
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

// gridPos places a half-width panel, eight rows high.
func gridPos(x, y uint32) dashboard.GridPos { return dashboard.GridPos{H: 8, W: 12, X: x, Y: y} }

func rangeTarget(ref, expr, legend string) cog.Builder[sdkvariants.Dataquery] {
	return prometheus.NewDataqueryBuilder().RefId(ref).Datasource(datasource).Expr(expr).LegendFormat(legend).Range()
}

func instantTarget(ref, expr, legend string) cog.Builder[sdkvariants.Dataquery] {
	return prometheus.NewDataqueryBuilder().RefId(ref).Datasource(datasource).Expr(expr).LegendFormat(legend).Instant()
}

func steps(base string, more ...dashboard.Threshold) cog.Builder[dashboard.ThresholdsConfig] {
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).
		Steps(append([]dashboard.Threshold{{Color: base}}, more...))
}

func stepAt(color string, v float64) dashboard.Threshold {
	return dashboard.Threshold{Color: color, Value: &v}
}

// timeseriesPanel is a half-width graph from 0 with a table legend (mean,
// max) and a tooltip listing every series.
func timeseriesPanel(title, description, unit string, x, y uint32) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).Description(description).GridPos(gridPos(x, y)).
		Unit(unit).Min(0).Thresholds(steps("green")).
		Legend(common.NewVizLegendOptionsBuilder().Calcs([]string{"mean", "max"}).
			DisplayMode(common.LegendDisplayModeTable).Placement(common.LegendPlacementBottom).ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
}

// stacked draws a graph's series stacked, as shares of a whole.
func stacked(p *timeseries.PanelBuilder) *timeseries.PanelBuilder {
	return p.DrawStyle(common.GraphDrawStyleLine).FillOpacity(20).LineWidth(1).
		Stacking(common.NewStackingConfigBuilder().Group("A").Mode(common.StackingModeNormal))
}

// legend is a legend template showing a label's value.
func legend(label string) string { return "{{" + label + "}}" }

func ptrTo[T any](v T) *T { return &v }

// formatUSD writes an amount without trailing zeros: "60", "0.5".
func formatUSD(m gc.MicroUSD) string {
	s := strings.TrimRight(m.String(), "0")
	return strings.TrimSuffix(s, ".")
}
