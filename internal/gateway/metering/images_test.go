package metering

import (
	"strings"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

func TestImagePrices(t *testing.T) {
	p, err := ParseImagePrices([]gatewayconfig.ImagePrice{
		{Size: "1024x1024", Quality: "standard", USD: "0.04"},
		{Size: "1024x1024", Quality: "premium", USD: "0.06"},
		{Size: "1280x720", Quality: "standard", USD: "0.000001"},
		{Size: "2048x2048", Quality: "premium", USD: "1000"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s, q := p.Default(); s != "1024x1024" || q != "standard" {
		t.Fatalf("default %s %s", s, q)
	}
	for _, c := range []struct {
		size, quality string
		want          Picodollars
		ok            bool
	}{
		{"1024x1024", "standard", 40_000_000_000, true},
		{"1024x1024", "premium", 60_000_000_000, true},
		{"1280x720", "standard", 1_000_000, true}, // a millionth of a dollar, exactly
		{"2048x2048", "premium", 1_000 * 1_000_000_000_000, true},
		{"1280x720", "premium", 0, false},
		{"1024X1024", "standard", 0, false}, // sizes are matched as written
		{"1024x1024", "Standard", 0, false},
	} {
		got, ok := p.Price(c.size, c.quality)
		if got != c.want || ok != c.ok {
			t.Errorf("Price(%s, %s) = %d, %v; want %d, %v", c.size, c.quality, got, ok, c.want, c.ok)
		}
	}
	if got := p.Lowest(); got != 1_000_000 {
		t.Errorf("lowest %d", got)
	}
	if got := strings.Join(p.Sizes(), ","); got != "1024x1024,1280x720,2048x2048" {
		t.Errorf("sizes %s", got)
	}
	if got := strings.Join(p.Qualities(), ","); got != "standard,premium" {
		t.Errorf("qualities %s", got)
	}
	// Ten of the dearest pictures still fit the ledger's integers.
	if each, _ := p.Price("2048x2048", "premium"); 10*each <= 0 || (10*each).String() != "10000.000000000000" {
		t.Errorf("ten at $1000: %s", 10*each)
	}
}

func TestImagePricesRefused(t *testing.T) {
	for _, c := range []struct {
		in   []gatewayconfig.ImagePrice
		want string
	}{
		{nil, "at least one price"},
		{[]gatewayconfig.ImagePrice{{Size: "1x1", Quality: "q", USD: "0.1234567"}}, "perImage[0].usd"},
		{[]gatewayconfig.ImagePrice{{Size: "1x1", Quality: "q", USD: "1"}, {Size: "2x2", Quality: "q", USD: "1000.000001"}}, "perImage[1].usd: 1000.000001 is more than $1000"},
		{[]gatewayconfig.ImagePrice{{Size: "1x1", Quality: "q", USD: "-1"}}, "perImage[0].usd"},
	} {
		if _, err := ParseImagePrices(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.in, err, c.want)
		}
	}
}
