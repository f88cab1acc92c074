package gatewayconfig

import (
	"fmt"
	"strconv"
	"strings"
)

// MicroUSD is an amount in millionths of a US dollar. Prices carry at most six
// decimals, so every configured price is an exact MicroUSD.
type MicroUSD int64

// ParseUSD parses a decimal dollar string such as "3", "0.30" or "0.000125"
// exactly. At most six decimals are allowed; no sign, exponent or spaces.
func ParseUSD(s string) (MicroUSD, error) {
	if s == "" {
		return 0, fmt.Errorf("empty amount")
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 6 || strings.Contains(s, ".") && frac == "" {
		return 0, fmt.Errorf("%q is not a dollar amount with up to six decimals, such as \"3.75\"", s)
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("%q is not a dollar amount with up to six decimals, such as \"3.75\"", s)
			}
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > 1_000_000_000 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	return MicroUSD(w*1_000_000 + f), nil
}

// String formats the amount with six decimals, e.g. "0.300000".
func (m MicroUSD) String() string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("%s%d.%06d", sign, int64(m)/1_000_000, int64(m)%1_000_000)
}
