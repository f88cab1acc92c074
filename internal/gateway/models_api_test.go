package gateway_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// withPictures makes sonnet read pictures (on its one provider), adds the
// picture model canvas on the OpenAI-compatible provider, and routes auto.
func withPictures(c *gatewayconfig.Config) {
	c.Providers[0].Models[0].Input = []string{gatewayconfig.InputText, gatewayconfig.InputImage}
	c.Providers[0].Models[0].ContextWindow = 200000
	c.Providers[1].Models = append(c.Providers[1].Models, gatewayconfig.Model{
		Name: "canvas", ID: "amazon.nova-canvas-v1:0", Kind: gatewayconfig.KindImage,
		Pricing: gatewayconfig.Pricing{PerImage: []gatewayconfig.ImagePrice{
			{Size: "1024x1024", Quality: "standard", USD: "0.06"},
			{Size: "1024x1024", Quality: "premium", USD: "0.08"},
			{Size: "1280x720", Quality: "standard", USD: "0.04"},
		}},
	})
	c.Routing.Rules = []gatewayconfig.RoutingRule{{Name: "short", MaxInputTokens: 50, Model: "gpt"}}
}

// TestModelsForThePage: GET /api/models lists what GET /v1/models lists,
// in its order, with the prices exactly as the ModelProvider writes them
// (the primary's, with the loader's defaults: a cache write at the input
// price, a 200k window), what each model reads, auto marked routed and without
// prices, and a picture model's prices by size and quality.
func TestModelsForThePage(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, withPictures)

	var v1 struct{ Data []struct{ ID string } }
	e.apiJSON("GET", "/v1/models", bob, nil, http.StatusOK, &v1)
	var got struct {
		Models []map[string]any `json:"models"`
	}
	e.apiJSON("GET", "/api/models", bob, nil, http.StatusOK, &got)
	var ids []string
	for _, m := range got.Models {
		ids = append(ids, m["id"].(string))
	}
	var v1ids []string
	for _, m := range v1.Data {
		v1ids = append(v1ids, m.ID)
	}
	if !reflect.DeepEqual(ids, v1ids) {
		t.Fatalf("ids %v, GET /v1/models has %v", ids, v1ids)
	}

	want := map[string]string{
		"auto":   `{"id":"auto","routed":true,"kind":"chat","input":["text","image"]}`,
		"both":   `{"id":"both","kind":"chat","input":["text"],"contextWindow":200000,"pricing":{"inputPerMTok":"1","outputPerMTok":"5","cacheReadPerMTok":"0.1","cacheWritePerMTok":"1.25"}}`,
		"canvas": `{"id":"canvas","kind":"image","pricing":{"perImageUSD":"0.04","perImage":[{"size":"1024x1024","quality":"standard","usd":"0.06"},{"size":"1024x1024","quality":"premium","usd":"0.08"},{"size":"1280x720","quality":"standard","usd":"0.04"}]},"sizes":["1024x1024","1280x720"],"qualities":["standard","premium"]}`,
		"gpt":    `{"id":"gpt","kind":"chat","input":["text"],"contextWindow":200000,"pricing":{"inputPerMTok":"0.15","outputPerMTok":"0.60","cacheReadPerMTok":"0.075","cacheWritePerMTok":"0.15"}}`,
		"sonnet": `{"id":"sonnet","default":true,"kind":"chat","input":["text","image"],"contextWindow":200000,"pricing":{"inputPerMTok":"3.00","outputPerMTok":"15.00","cacheReadPerMTok":"0.30","cacheWritePerMTok":"3.75"}}`,
	}
	for _, m := range got.Models {
		id := m["id"].(string)
		var w map[string]any
		if err := json.Unmarshal([]byte(want[id]), &w); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if !reflect.DeepEqual(m, w) {
			b, _ := json.Marshal(m)
			t.Errorf("%s:\n got %s\nwant %s", id, b, want[id])
		}
	}
	if len(got.Models) != len(want) {
		t.Errorf("%d models, want %d", len(got.Models), len(want))
	}

	if code, body := e.api("GET", "/api/models", "", nil); code != http.StatusUnauthorized {
		t.Errorf("no identity: %d %s", code, body)
	}
}

// TestAutoTakesPicturesOnlyWithItsDefault: auto reads pictures exactly
// when the default model does (a turn with pictures that no rule can take
// ends at the default).
func TestAutoTakesPicturesOnlyWithItsDefault(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, withPictures, func(c *gatewayconfig.Config) {
		c.DefaultModel = "gpt"
	})
	var got struct {
		Models []struct {
			ID      string
			Default bool
			Routed  bool
			Input   []string
		}
	}
	e.apiJSON("GET", "/api/models", bob, nil, http.StatusOK, &got)
	for _, m := range got.Models {
		switch m.ID {
		case "auto":
			if !m.Routed || !reflect.DeepEqual(m.Input, []string{"text"}) {
				t.Errorf("auto: %+v", m)
			}
		case "gpt":
			if !m.Default {
				t.Errorf("gpt is the default: %+v", m)
			}
		case "sonnet":
			if m.Default {
				t.Errorf("sonnet is not the default: %+v", m)
			}
		}
	}
}
