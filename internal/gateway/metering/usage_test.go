package metering

import (
	"math"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

func TestCostIsExact(t *testing.T) {
	p, err := ParsePrices(gatewayconfig.Pricing{InputPerMTok: "3.00", OutputPerMTok: "15", CacheReadPerMTok: "0.30", CacheWritePerMTok: "3.75"})
	if err != nil {
		t.Fatal(err)
	}
	// 0.1 + 0.2 is the classic float trap; integers have none.
	u := Usage{Input: 1_000_001, Output: 333_333, CacheRead: 7, CacheWrite: 1}
	want := Picodollars(1_000_001*3_000_000 + 333_333*15_000_000 + 7*300_000 + 3_750_000)
	if got := p.Cost(u); got != want {
		t.Errorf("cost %d, want %d", got, want)
	}
	if got := want.String(); got != "8.000003850000" {
		t.Errorf("String() = %s", got)
	}
	var sum Picodollars
	for range 10 {
		sum += p.Cost(Usage{Input: 1}) // $0.000003 ten times
	}
	if sum.String() != "0.000030000000" {
		t.Errorf("sum %s", sum)
	}
	if (-Picodollars(1)).String() != "-0.000000000001" {
		t.Error("negative formatting")
	}
}

// String is the exact amount, as "%d.%012d" of its dollars and picodollars
// would write it, at the extremes too.
func TestPicodollarsString(t *testing.T) {
	for p, want := range map[Picodollars]string{
		0: "0.000000000000", 1: "0.000000000001", 999_999_999_999: "0.999999999999", 1e12: "1.000000000000",
		-1e12 - 5: "-1.000000000005", math.MaxInt64: "9223372.036854775807", math.MinInt64: "-9223372.036854775808",
	} {
		if got := p.String(); got != want {
			t.Errorf("%d: %s, want %s", int64(p), got, want)
		}
	}
}
