package chatapi

import (
	"net/http"
	"slices"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/routing"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// GET /api/models is the page's model picker: the aliases of GET
// /v1/models, in its order, with what GET /v1/models (OpenAI's shape)
// cannot say: the default, the kind, what a chat model reads, and its
// prices as the ModelProvider writes them (exact decimal strings, USD)
// from the alias's first provider. A fallback that serves a request is
// billed at its own prices, which the ledger records.

type modelsList struct {
	Models []modelInfo `json:"models"`
}

type modelInfo struct {
	ID      string `json:"id"`
	Default bool   `json:"default,omitempty"`
	// Routed: auto, which the routing rules resolve per message.
	Routed        bool          `json:"routed,omitempty"`
	Kind          string        `json:"kind"`
	Input         []string      `json:"input,omitempty"`
	ContextWindow int64         `json:"contextWindow,omitempty"`
	Pricing       *modelPricing `json:"pricing,omitempty"`
	Sizes         []string      `json:"sizes,omitempty"`
	Qualities     []string      `json:"qualities,omitempty"`
}

type modelPricing struct {
	InputPerMTok      string `json:"inputPerMTok,omitempty"`
	OutputPerMTok     string `json:"outputPerMTok,omitempty"`
	CacheReadPerMTok  string `json:"cacheReadPerMTok,omitempty"`
	CacheWritePerMTok string `json:"cacheWritePerMTok,omitempty"`
	// PerImageUSD is the lowest price of a picture ("from $0.04 each").
	PerImageUSD string       `json:"perImageUSD,omitempty"`
	PerImage    []imagePrice `json:"perImage,omitempty"`
}

type imagePrice struct {
	Size    string `json:"size"`
	Quality string `json:"quality"`
	USD     string `json:"usd"`
}

// The API's names for kinds and inputs: lower case, as OpenAI's and the
// page's vocabulary has them.
const (
	kindChat   = "chat"
	kindImage  = "image"
	inputText  = "text"
	inputImage = "image"
)

func (a *API) listModels(w http.ResponseWriter, _ *http.Request, c *Call) {
	t := c.Snapshot.Models
	ids := t.Models()
	out := modelsList{Models: make([]modelInfo, 0, len(ids))}
	for _, id := range ids {
		out.Models = append(out.Models, describeModel(t, id))
	}
	writeJSON(w, http.StatusOK, out)
}

// describeModel is alias id as the picker shows it.
func describeModel(t *routing.Table, id string) modelInfo {
	info := modelInfo{ID: id, Default: id == t.Default(), Kind: kindChat}
	m := t.Model(id)
	if m == nil {
		// auto: no prices, they depend on the rule that matches. It reads
		// pictures when the default does: a turn with pictures skips the
		// rules whose model cannot read them and ends at the default.
		info.Routed = id == routing.Auto
		info.Input = inputs(t.TakesImages(t.Default()))
		return info
	}
	if m.Kind == gatewayconfig.KindImage {
		info.Kind = kindImage
		p := &modelPricing{}
		var lowest gatewayconfig.MicroUSD
		for i, ip := range m.Pricing.PerImage {
			p.PerImage = append(p.PerImage, imagePrice(ip))
			// Validated when the config loaded.
			if usd, err := gatewayconfig.ParseUSD(ip.USD); err == nil && (i == 0 || usd < lowest) {
				lowest, p.PerImageUSD = usd, ip.USD
			}
			if !slices.Contains(info.Sizes, ip.Size) {
				info.Sizes = append(info.Sizes, ip.Size)
			}
			if !slices.Contains(info.Qualities, ip.Quality) {
				info.Qualities = append(info.Qualities, ip.Quality)
			}
		}
		info.Pricing = p
		return info
	}
	info.Input = inputs(t.TakesImages(id))
	info.ContextWindow = t.Window(id).Context
	info.Pricing = &modelPricing{
		InputPerMTok: m.Pricing.InputPerMTok, OutputPerMTok: m.Pricing.OutputPerMTok,
		CacheReadPerMTok: m.Pricing.CacheReadPerMTok, CacheWritePerMTok: m.Pricing.CacheWritePerMTok,
	}
	return info
}

func inputs(pictures bool) []string {
	if pictures {
		return []string{inputText, inputImage}
	}
	return []string{inputText}
}
