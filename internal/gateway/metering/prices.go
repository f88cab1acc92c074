package metering

import (
	"fmt"
	"strings"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// Prices are one model's prices in MicroUSD per million tokens, which is
// picodollars per token.
type Prices struct {
	Input, Output, CacheRead, CacheWrite gatewayconfig.MicroUSD
}

// ParsePrices reads a model's pricing from the config; the error names the
// fields at fault.
func ParsePrices(p gatewayconfig.Pricing) (Prices, error) {
	var out Prices
	var errs []string
	for _, f := range []struct {
		name string
		v    string
		dst  *gatewayconfig.MicroUSD
	}{
		{"inputPerMTok", p.InputPerMTok, &out.Input},
		{"outputPerMTok", p.OutputPerMTok, &out.Output},
		{"cacheReadPerMTok", p.CacheReadPerMTok, &out.CacheRead},
		{"cacheWritePerMTok", p.CacheWritePerMTok, &out.CacheWrite},
	} {
		v, err := gatewayconfig.ParseUSD(f.v)
		if err != nil {
			errs = append(errs, f.name+": "+err.Error())
		}
		*f.dst = v
	}
	if errs != nil {
		return Prices{}, fmt.Errorf("pricing: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// Cost is exact: tokens × picodollars per token.
func (p Prices) Cost(u Usage) Picodollars {
	return Picodollars(u.Input*int64(p.Input) +
		u.Output*int64(p.Output) +
		u.CacheRead*int64(p.CacheRead) +
		u.CacheWrite*int64(p.CacheWrite))
}
