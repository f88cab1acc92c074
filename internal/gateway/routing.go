package gateway

import (
	"regexp"
	"slices"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// autoModel is the model name that asks the gateway to choose, by the
// ordered rules of routing.rules.
const autoModel = "auto"

// router holds one snapshot's routing rules, regexps compiled once.
type router struct {
	rules        []routingRule
	defaultModel string
}

type routingRule struct {
	min, max int64 // estimated input tokens; 0 means no bound
	match    *regexp.Regexp
	roles    []string
	model    string
}

func newRouter(c *gatewayconfig.Config) *router {
	r := &router{defaultModel: c.DefaultModel}
	for _, cr := range c.Routing.Rules {
		rule := routingRule{min: int64(cr.MinInputTokens), max: int64(cr.MaxInputTokens), roles: cr.Roles, model: cr.Model}
		if cr.MessageMatches != "" {
			// Validated when the config loaded.
			rule.match, _ = regexp.Compile(cr.MessageMatches)
		}
		r.rules = append(r.rules, rule)
	}
	return r
}

// routingInput is what the rules look at.
type routingInput struct {
	tokens   int64  // estimated input tokens
	lastUser string // text of the last user message
	role     string // the caller's role (Admin, User)
}

// choose returns the model of the first rule whose every set condition
// holds, else the default model.
func (r *router) choose(in routingInput) string {
	for _, rule := range r.rules {
		if rule.min > 0 && in.tokens < rule.min {
			continue
		}
		if rule.max > 0 && in.tokens > rule.max {
			continue
		}
		if len(rule.roles) > 0 && !slices.Contains(rule.roles, in.role) {
			continue
		}
		if rule.match != nil && !rule.match.MatchString(in.lastUser) {
			continue
		}
		return rule.model
	}
	return r.defaultModel
}

// resolveModel maps the model a caller asked for to the alias to serve and
// the requested_model label: "auto" is routed; an alias or provider model
// id names its alias (also the label); an unknown name is not served and
// labels as "" (callers choose it freely).
func (g *Gateway) resolveModel(c *call, in *translate.Request) (alias, requested string, ok bool) {
	if alias, ok := c.snap.resolve(in.Model()); ok {
		return alias, alias, true
	}
	if in.Model() != autoModel {
		return "", "", false
	}
	return c.snap.router.choose(routingInputOf(c, in)), autoModel, true
}

func routingInputOf(c *call, in *translate.Request) routingInput {
	ri := routingInput{}
	if c.who.user != nil {
		ri.role = c.who.user.Role
	}
	text, lastUser := in.Text()
	ri.tokens, ri.lastUser = estimateInputTokens(text), lastUser
	return ri
}

// estimateInputTokens is the routing estimate: four bytes of text a token,
// close for English prose under the common BPE tokenizers. (The quota
// reservation uses an upper bound instead; see quota.go.)
func estimateInputTokens(textBytes int) int64 { return int64(textBytes+3) / 4 }

// modelList is GET /v1/models: the aliases, and "auto" when rules exist.
func (g *Gateway) modelList(s *snapshot) []string {
	if len(s.cfg.Routing.Rules) == 0 || slices.Contains(s.aliases, autoModel) {
		return s.aliases
	}
	out := append(slices.Clone(s.aliases), autoModel)
	slices.Sort(out)
	return out
}
