package metering

import "strconv"

// Usage counts the tokens of one request by how they are priced. Input
// excludes cached tokens: CacheRead and CacheWrite are billed at their own
// prices.
type Usage struct {
	Input      int64
	Output     int64
	CacheRead  int64
	CacheWrite int64
}

// IsZero reports whether no token was counted.
func (u Usage) IsZero() bool { return u == Usage{} }

// Picodollars is an amount in 1e-12 USD. A price in MicroUSD per million
// tokens is exactly that many picodollars per token, so cost is a sum of
// integer products: no rounding anywhere in the ledger.
type Picodollars int64

// USD converts at the Prometheus boundary, the one place floats are allowed.
func (p Picodollars) USD() float64 { return float64(p) / 1e12 }

// String formats the exact amount in dollars, e.g. "0.000123450000". It is
// on the request log line, so it appends digits rather than call fmt.
func (p Picodollars) String() string {
	var b [32]byte
	out := b[:0]
	u := uint64(p) // the magnitude, which for math.MinInt64 only a uint64 holds
	if p < 0 {
		out, u = append(out, '-'), -u
	}
	out = strconv.AppendUint(out, u/1e12, 10)
	out = append(out, '.')
	var f [12]byte
	frac := strconv.AppendUint(f[:0], u%1e12, 10)
	for range 12 - len(frac) {
		out = append(out, '0')
	}
	return string(append(out, frac...))
}
