package metering

import (
	"fmt"
	"strings"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// ImagePrices are an Image model's prices per picture, by size and
// quality, in the config's order: the first is the default size and
// quality, made when a request names neither.
type ImagePrices []ImagePrice

// ImagePrice is what one picture of Size at Quality costs.
type ImagePrice struct {
	Size, Quality string
	Each          Picodollars
}

// MaxImagePriceUSD bounds a price per picture: n pictures at it must fit
// the ledger's integer picodollars with room to spare.
const MaxImagePriceUSD = 1000

// ParseImagePrices reads an Image model's perImage list; the error names
// the entry at fault.
func ParseImagePrices(ps []gatewayconfig.ImagePrice) (ImagePrices, error) {
	out := make(ImagePrices, 0, len(ps))
	var errs []string
	for i, p := range ps {
		v, err := gatewayconfig.ParseUSD(p.USD)
		switch {
		case err != nil:
			errs = append(errs, fmt.Sprintf("perImage[%d].usd: %v", i, err))
		case v > MaxImagePriceUSD*1_000_000:
			errs = append(errs, fmt.Sprintf("perImage[%d].usd: %s is more than $%d a picture", i, p.USD, MaxImagePriceUSD))
		}
		// A price in MicroUSD is a million picodollars per µUSD.
		out = append(out, ImagePrice{Size: p.Size, Quality: p.Quality, Each: Picodollars(v) * 1_000_000})
	}
	if len(ps) == 0 {
		errs = append(errs, "perImage: an Image model needs at least one price")
	}
	if errs != nil {
		return nil, fmt.Errorf("pricing: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// Default is the size and quality made when a request names neither.
func (p ImagePrices) Default() (size, quality string) {
	if len(p) == 0 {
		return "", ""
	}
	return p[0].Size, p[0].Quality
}

// Price is one picture of size at quality, and whether it is priced.
func (p ImagePrices) Price(size, quality string) (Picodollars, bool) {
	for _, ip := range p {
		if ip.Size == size && ip.Quality == quality {
			return ip.Each, true
		}
	}
	return 0, false
}

// Lowest is the cheapest picture (what "from $0.04 a picture" says).
func (p ImagePrices) Lowest() Picodollars {
	var low Picodollars
	for i, ip := range p {
		if i == 0 || ip.Each < low {
			low = ip.Each
		}
	}
	return low
}

// Sizes and Qualities list what is priced, each once, in the config's order.
func (p ImagePrices) Sizes() []string {
	return p.distinct(func(ip ImagePrice) string { return ip.Size })
}
func (p ImagePrices) Qualities() []string {
	return p.distinct(func(ip ImagePrice) string { return ip.Quality })
}

func (p ImagePrices) distinct(f func(ImagePrice) string) []string {
	var out []string
	seen := map[string]bool{}
	for _, ip := range p {
		if v := f(ip); !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
