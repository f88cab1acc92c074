package gateway

import (
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

func TestWorstCase(t *testing.T) {
	rt := &upstream.Route{MaxTokens: 8192, Prices: metering.Prices{Input: 3_000_000, Output: 15_000_000, CacheRead: 300_000, CacheWrite: 3_750_000}}
	for _, tc := range []struct {
		name  string
		body  string
		front translate.Dialect
		want  metering.Picodollars
	}{
		// (bytes + 1024) at the cache-write price, the caller's cap at the output price.
		{"caller cap", `{"max_tokens":100}`, translate.Anthropic, (18+1024)*3_750_000 + 100*15_000_000},
		{"model cap", `{}`, translate.OpenAI, (2+1024)*3_750_000 + 8192*15_000_000},
		{"n choices", `{"max_completion_tokens":10,"n":3}`, translate.OpenAI, (34+1024)*3_750_000 + 3*10*15_000_000},
		{"absurd n saturates", `{"max_tokens":9000000000000,"n":9000000000}`, translate.OpenAI, 1<<63 - 1},
	} {
		in, aerr := translate.Parse(tc.front, []byte(tc.body))
		if aerr != nil {
			t.Fatal(aerr)
		}
		r := &reservation{in: int64(in.Size()) + reserveOverheadTokens, out: in.OutputCap(), n: in.Choices()}
		if got := r.worstCase(rt); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestFormatUSD(t *testing.T) {
	for p, want := range map[metering.Picodollars]string{
		0: "$0.00", 5_000_000_000_000: "$5.00", 2_500_000: "$0.000003", 1_230_000_000: "$0.00123", 100_000_000_000: "$0.10",
	} {
		if got := formatUSD(p); got != want {
			t.Errorf("formatUSD(%d) = %q, want %q", p, got, want)
		}
	}
}

func TestQuotaWindowAcrossDST(t *testing.T) {
	p := newQuotaPolicy(&gatewayconfig.Config{Quotas: gatewayconfig.Quotas{TimeZone: "America/New_York"}})
	// 2026-03-08 is 23 hours long in New York.
	start, end, day := p.window(time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC))
	if day != "2026-03-08" || end.Sub(start) != 23*time.Hour {
		t.Errorf("window %s %s–%s", day, start, end)
	}
}
