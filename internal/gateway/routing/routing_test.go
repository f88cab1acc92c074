package routing

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

func TestRouterChoose(t *testing.T) {
	r := newRules(&gatewayconfig.Config{DefaultModel: "d", Routing: gatewayconfig.Routing{Rules: []gatewayconfig.RoutingRule{
		{MaxInputTokens: 10, Model: "small"},
		{MinInputTokens: 5, MessageMatches: "^sql", Model: "sql"},
		{Roles: []string{"Admin"}, Model: "admin"},
		{MaxInputTokens: 100, Model: "eyes"},
	}}}, map[string]bool{"eyes": true, "admin": true})
	for _, tc := range []struct {
		in   Input
		want string
	}{
		{Input{Tokens: 10, LastUser: "sql please"}, "small"},
		{Input{Tokens: 11, LastUser: "sql please"}, "sql"},
		{Input{Tokens: 11, LastUser: "please sql", Role: "Admin"}, "admin"},
		{Input{Tokens: 11, LastUser: "please sql", Role: "User"}, "eyes"},
		{Input{Tokens: 101, LastUser: "please sql", Role: "User"}, "d"},
		// A rule whose model cannot read the pictures sent does not apply.
		{Input{Tokens: 10, LastUser: "sql please", Pictures: true}, "eyes"},
		{Input{Tokens: 11, LastUser: "please sql", Role: "Admin", Pictures: true}, "admin"},
		{Input{Tokens: 101, Pictures: true}, "d"},
	} {
		if got := r.choose(tc.in); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.in, got, tc.want)
		}
	}
}

func table(t *testing.T) *Table {
	t.Helper()
	price := gatewayconfig.Pricing{InputPerMTok: "1", OutputPerMTok: "2", CacheReadPerMTok: "0", CacheWritePerMTok: "0"}
	eyes := []string{gatewayconfig.InputText, gatewayconfig.InputImage}
	c := &gatewayconfig.Config{
		DefaultModel: "sonnet",
		Providers: []gatewayconfig.Provider{
			{Name: "anthropic", Models: []gatewayconfig.Model{
				{Name: "sonnet", ID: "claude-sonnet", Input: eyes, Pricing: price, MaxOutputTokens: 8192, ContextWindow: 200000},
				{Name: "both", ID: "claude-haiku", Input: eyes, Pricing: price},
			}},
			{Name: "openai", Models: []gatewayconfig.Model{
				{Name: "gpt", ID: "gpt-4o-mini", Input: eyes, Pricing: price, ContextWindow: 128000},
				{Name: "both", ID: "gpt-4o-mini", Pricing: price, ContextWindow: 64000},
				{Name: "sonnet", ID: "claude-sonnet-bedrock", Input: eyes, Pricing: price},
				{Name: "canvas", ID: "nova-canvas", Kind: gatewayconfig.KindImage,
					Pricing: gatewayconfig.Pricing{PerImage: []gatewayconfig.ImagePrice{{Size: "1024x1024", Quality: "standard", USD: "0.04"}}}},
			}},
		},
		Fallbacks: []gatewayconfig.Fallback{{Model: "sonnet", To: []string{"both", "gpt"}}},
	}
	tb, err := NewTable(c, []upstream.Provider{named("anthropic"), named("openai")})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestResolve(t *testing.T) {
	tb := table(t)
	for asked, want := range map[string]struct {
		choice Choice
		ok     bool
	}{
		"":                      {Choice{Alias: "sonnet"}, true},
		"gpt":                   {Choice{Alias: "gpt"}, true},
		"claude-haiku":          {Choice{Alias: "both"}, true},
		"gpt-4o-mini":           {Choice{Alias: "gpt"}, true}, // the first alias to name the id
		"claude-sonnet-bedrock": {Choice{Alias: "sonnet"}, true},
		Auto:                    {Choice{Alias: "sonnet", Auto: true}, true},
		"Auto":                  {Choice{}, false},
		"gpt ":                  {Choice{}, false},
	} {
		got, ok := tb.Resolve(asked)
		if got != want.choice || ok != want.ok {
			t.Errorf("Resolve(%q) = %+v %v, want %+v %v", asked, got, ok, want.choice, want.ok)
		}
	}
	if (Choice{Alias: "sonnet", Auto: true}).Name() != Auto || (Choice{Alias: "gpt"}).Name() != "gpt" {
		t.Error("Name")
	}
}

// TestPlan: an alias's providers in order, then its fallbacks', each
// (provider, alias) pair once.
func TestPlan(t *testing.T) {
	var got []string
	for _, rt := range table(t).Plan("sonnet") {
		got = append(got, rt.Provider.Name()+"/"+rt.Alias)
	}
	if want := "anthropic/sonnet openai/sonnet anthropic/both openai/both openai/gpt"; strings.Join(got, " ") != want {
		t.Errorf("plan %s, want %s", strings.Join(got, " "), want)
	}
}

// TestKinds: what each alias makes and reads. An alias reads pictures only
// when every provider serving it does; a request with pictures fails over
// only to models that read them.
func TestKinds(t *testing.T) {
	tb := table(t)
	for alias, want := range map[string][2]bool{
		"sonnet": {false, true}, "gpt": {false, true}, "both": {false, false}, "canvas": {true, false}, "nope": {false, false},
	} {
		if tb.IsImage(alias) != want[0] || tb.TakesImages(alias) != want[1] {
			t.Errorf("%s: image model %v, reads pictures %v; want %v", alias, tb.IsImage(alias), tb.TakesImages(alias), want)
		}
	}
	var got []string
	for _, rt := range tb.PicturePlan("sonnet") {
		got = append(got, rt.Provider.Name()+"/"+rt.Alias)
	}
	if want := "anthropic/sonnet openai/sonnet openai/gpt"; strings.Join(got, " ") != want {
		t.Errorf("picture plan %s, want %s", strings.Join(got, " "), want)
	}
	if m := tb.Model("both"); m == nil || m.ID != "claude-haiku" {
		t.Errorf("the primary of both is %+v, want the first provider's", m)
	}
	if m := tb.Model("canvas"); m == nil || m.Pricing.PerImage[0].USD != "0.04" {
		t.Errorf("canvas: %+v", m)
	}
	if tb.Model("nope") != nil {
		t.Error("an unknown alias has a model")
	}
}

func TestWindow(t *testing.T) {
	tb := table(t)
	for alias, want := range map[string]Window{
		"sonnet": {Context: 200000, MaxOutput: 8192},
		"both":   {Context: 64000, MaxOutput: defaultMaxOutput},
		"gpt":    {Context: 128000, MaxOutput: defaultMaxOutput},
	} {
		if got := tb.Window(alias); got != want {
			t.Errorf("%s: %+v, want %+v", alias, got, want)
		}
	}
}

func TestEstimateTokens(t *testing.T) {
	for n, want := range map[int]int64{0: 0, 1: 1, 4: 1, 5: 2, 100: 25} {
		if got := EstimateTokens(n); got != want {
			t.Errorf("%d bytes: %d tokens, want %d", n, got, want)
		}
	}
}

type named string

func (n named) Name() string                                                     { return string(n) }
func (named) Dialect() translate.Dialect                                         { return translate.OpenAI }
func (named) Send(context.Context, *upstream.Body, bool) (*http.Response, error) { return nil, io.EOF }
