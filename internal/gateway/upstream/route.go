package upstream

import (
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
)

// Route is one provider serving one model alias: where an attempt goes and
// what it costs.
type Route struct {
	Alias     string
	Provider  Provider
	ModelID   string
	MaxTokens int64 // the model's output limit; 0 when the config sets none
	FirstByte time.Duration
	Prices    metering.Prices
	// ImagePrices price an Image model's pictures (Prices is then zero).
	ImagePrices metering.ImagePrices
}
