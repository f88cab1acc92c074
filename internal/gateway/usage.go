package gateway

import (
	"fmt"
	"strings"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// Usage counts the tokens of one request by how they are priced. Input
// excludes cached tokens: CacheRead and CacheWrite are billed at their own
// prices.
type Usage struct {
	Input      int64
	Output     int64
	CacheRead  int64
	CacheWrite int64
}

func (u Usage) isZero() bool { return u == Usage{} }

// Picodollars is an amount in 1e-12 USD. A price in MicroUSD per million
// tokens is exactly that many picodollars per token, so cost is a sum of
// integer products: no rounding anywhere in the ledger.
type Picodollars int64

// USD converts at the Prometheus boundary, the one place floats are allowed.
func (p Picodollars) USD() float64 { return float64(p) / 1e12 }

// String formats the exact amount in dollars, e.g. "0.000123450000".
func (p Picodollars) String() string {
	sign := ""
	if p < 0 {
		sign, p = "-", -p
	}
	return fmt.Sprintf("%s%d.%012d", sign, int64(p)/1e12, int64(p)%1e12)
}

// prices are one model's prices in MicroUSD per million tokens.
type prices struct {
	input, output, cacheRead, cacheWrite gatewayconfig.MicroUSD
}

func parsePrices(p gatewayconfig.Pricing) (prices, error) {
	var out prices
	var errs []string
	for _, f := range []struct {
		name string
		v    string
		dst  *gatewayconfig.MicroUSD
	}{
		{"inputPerMTok", p.InputPerMTok, &out.input},
		{"outputPerMTok", p.OutputPerMTok, &out.output},
		{"cacheReadPerMTok", p.CacheReadPerMTok, &out.cacheRead},
		{"cacheWritePerMTok", p.CacheWritePerMTok, &out.cacheWrite},
	} {
		v, err := gatewayconfig.ParseUSD(f.v)
		if err != nil {
			errs = append(errs, f.name+": "+err.Error())
		}
		*f.dst = v
	}
	if errs != nil {
		return prices{}, fmt.Errorf("pricing: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// cost is exact: tokens × picodollars per token.
func (p prices) cost(u Usage) Picodollars {
	return Picodollars(u.Input*int64(p.input) +
		u.Output*int64(p.output) +
		u.CacheRead*int64(p.cacheRead) +
		u.CacheWrite*int64(p.cacheWrite))
}
