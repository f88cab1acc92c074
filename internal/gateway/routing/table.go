package routing

import (
	"errors"
	"fmt"
	"slices"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// defaultMaxOutput is a turn's output budget when the model config sets
// no maxOutputTokens.
const defaultMaxOutput = 4096

// Table is one config snapshot's models: who serves each alias, in what
// order, and what Auto chooses.
type Table struct {
	defaultModel string
	// routes lists, per alias, the providers serving it in failover order.
	routes    map[string][]*upstream.Route
	byModelID map[string]string // provider model id → alias, for tools that send real ids
	aliases   []string          // sorted, for errors and GET /v1/models
	fallbacks map[string][]string
	contexts  map[string]int64 // alias → the smallest context window its providers declare
	// primary is each alias's model as its first provider declares it:
	// what the model picker shows (kind, input, prices).
	primary map[string]*gatewayconfig.Model
	// images marks the Image models; pictures the Chat models every
	// provider of which reads pictures.
	images, pictures map[string]bool
	rules            rules
}

// NewTable resolves the config's models. providers[i] serves
// c.Providers[i]. Errors name the field at fault.
func NewTable(c *gatewayconfig.Config, providers []upstream.Provider) (*Table, error) {
	t := &Table{
		defaultModel: c.DefaultModel,
		routes:       map[string][]*upstream.Route{},
		byModelID:    map[string]string{},
		fallbacks:    map[string][]string{},
		contexts:     map[string]int64{},
		primary:      map[string]*gatewayconfig.Model{},
		images:       map[string]bool{},
		pictures:     map[string]bool{},
	}
	var errs []error
	for _, f := range c.Fallbacks {
		t.fallbacks[f.Model] = append(t.fallbacks[f.Model], f.To...)
	}
	for i, p := range c.Providers {
		for j := range p.Models {
			m := &p.Models[j]
			var (
				pr  metering.Prices
				ipr metering.ImagePrices
			)
			if m.Kind == gatewayconfig.KindImage {
				t.images[m.Name] = true
				var err error
				if ipr, err = metering.ParseImagePrices(m.Pricing.PerImage); err != nil {
					errs = append(errs, fmt.Errorf("providers[%d].models[%d].%w", i, j, err))
				}
			} else {
				var err error
				if pr, err = metering.ParsePrices(m.Pricing); err != nil {
					errs = append(errs, fmt.Errorf("providers[%d].models[%d].%w", i, j, err))
				}
				// An alias reads pictures when every provider of it does:
				// a failover must not meet a picture it cannot read.
				_, seen := t.primary[m.Name]
				t.pictures[m.Name] = m.TakesImages() && (!seen || t.pictures[m.Name])
			}
			if _, ok := t.primary[m.Name]; !ok {
				t.primary[m.Name] = m
			}
			t.routes[m.Name] = append(t.routes[m.Name], &upstream.Route{
				Alias:       m.Name,
				Provider:    providers[i],
				ModelID:     m.ID,
				MaxTokens:   int64(m.MaxOutputTokens),
				FirstByte:   p.Timeouts.FirstByte.Duration,
				Prices:      pr,
				ImagePrices: ipr,
			})
			if _, taken := t.byModelID[m.ID]; !taken {
				t.byModelID[m.ID] = m.Name
			}
			if w := int64(m.ContextWindow); w > 0 && (t.contexts[m.Name] == 0 || w < t.contexts[m.Name]) {
				t.contexts[m.Name] = w
			}
		}
	}
	for alias := range t.routes {
		t.aliases = append(t.aliases, alias)
	}
	slices.Sort(t.aliases)
	t.rules = newRules(c, t.pictures)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// Choice is what a model name resolved to.
type Choice struct {
	// Alias serves the request. For Auto it is the default model until
	// Choose picks by the rules.
	Alias string
	// Auto: the rules choose per request.
	Auto bool
}

// Name is the choice as a caller names it: the alias, or Auto. It is what
// a session keeps, and the requested_model label (never free text).
func (c Choice) Name() string {
	if c.Auto {
		return Auto
	}
	return c.Alias
}

// Resolve is the gateway's one model resolver. It maps the model a caller
// asked for to the alias that serves it: the default when none is named, an
// alias, or a provider's model id (so tools that send real model ids work
// unchanged). Auto, unless an alias bears that name, is a Choice the rules
// make per request (see Choose). Any other name is not served.
func (t *Table) Resolve(asked string) (Choice, bool) {
	if asked == "" {
		return Choice{Alias: t.defaultModel}, true
	}
	if _, ok := t.routes[asked]; ok {
		return Choice{Alias: asked}, true
	}
	if alias, ok := t.byModelID[asked]; ok {
		return Choice{Alias: alias}, true
	}
	if asked == Auto {
		return Choice{Alias: t.defaultModel, Auto: true}, true
	}
	return Choice{}, false
}

// Choose is the model of the first rule whose every set condition holds,
// else the default model.
func (t *Table) Choose(in Input) string { return t.rules.choose(in) }

// Plan lists the attempts for an alias: its providers in order, then those
// of its fallbacks, each (provider, alias) pair once.
func (t *Table) Plan(alias string) []*upstream.Route {
	plan := slices.Clone(t.routes[alias])
	for _, fb := range t.fallbacks[alias] {
		for _, r := range t.routes[fb] {
			if !slices.ContainsFunc(plan, func(p *upstream.Route) bool { return p.Alias == r.Alias && p.Provider.Name() == r.Provider.Name() }) {
				plan = append(plan, r)
			}
		}
	}
	return plan
}

// PicturePlan is Plan for a request with pictures: the fallbacks that
// cannot read them are left out.
func (t *Table) PicturePlan(alias string) []*upstream.Route {
	return slices.DeleteFunc(t.Plan(alias), func(r *upstream.Route) bool { return !t.pictures[r.Alias] })
}

// IsImage reports whether alias makes pictures (an Image model).
func (t *Table) IsImage(alias string) bool { return t.images[alias] }

// TakesImages reports whether alias is a Chat model that reads pictures
// at every provider that serves it.
func (t *Table) TakesImages(alias string) bool { return t.pictures[alias] }

// Model is alias as its first provider declares it (the primary: its
// kind, input and prices), or nil when no provider serves it.
func (t *Table) Model(alias string) *gatewayconfig.Model { return t.primary[alias] }

// Default is the default model's alias.
func (t *Table) Default() string { return t.defaultModel }

// Serves reports whether some provider serves alias.
func (t *Table) Serves(alias string) bool { return len(t.routes[alias]) > 0 }

// Aliases are the served model aliases, sorted.
func (t *Table) Aliases() []string { return t.aliases }

// Models is what GET /v1/models lists: the aliases, and Auto when rules exist.
func (t *Table) Models() []string {
	if len(t.rules.list) == 0 || slices.Contains(t.aliases, Auto) {
		return t.aliases
	}
	out := append(slices.Clone(t.aliases), Auto)
	slices.Sort(out)
	return out
}

// Window is what bounds a conversation with a model.
type Window struct {
	Context   int64 // tokens; 0 is unbounded
	MaxOutput int64 // room kept for the reply
}

// Window is alias's context window (the smallest its providers declare)
// and the output budget of its first provider.
func (t *Table) Window(alias string) Window {
	w := Window{MaxOutput: defaultMaxOutput, Context: t.contexts[alias]}
	if rs := t.routes[alias]; len(rs) > 0 && rs[0].MaxTokens > 0 {
		w.MaxOutput = rs[0].MaxTokens
	}
	return w
}
