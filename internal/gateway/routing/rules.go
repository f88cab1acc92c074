package routing

import (
	"regexp"
	"slices"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// rules are one snapshot's routing rules, regexps compiled once.
type rules struct {
	list         []rule
	defaultModel string
	pictures     map[string]bool // the models that read pictures
}

type rule struct {
	min, max int64 // estimated input tokens; 0 means no bound
	match    *regexp.Regexp
	roles    []string
	model    string
}

func newRules(c *gatewayconfig.Config, pictures map[string]bool) rules {
	r := rules{defaultModel: c.DefaultModel, pictures: pictures}
	for _, cr := range c.Routing.Rules {
		rl := rule{min: int64(cr.MinInputTokens), max: int64(cr.MaxInputTokens), roles: cr.Roles, model: cr.Model}
		if cr.MessageMatches != "" {
			// Validated when the config loaded.
			rl.match, _ = regexp.Compile(cr.MessageMatches)
		}
		r.list = append(r.list, rl)
	}
	return r
}

// Input is what the rules look at.
type Input struct {
	Tokens   int64  // estimated input tokens
	LastUser string // text of the last user message
	Role     string // the caller's role (Admin, User)
	// Pictures: the request sends pictures, so a rule whose model cannot
	// read them does not apply.
	Pictures bool
}

// choose returns the model of the first rule whose every set condition
// holds, else the default model.
func (r rules) choose(in Input) string {
	for _, rl := range r.list {
		if rl.min > 0 && in.Tokens < rl.min {
			continue
		}
		if rl.max > 0 && in.Tokens > rl.max {
			continue
		}
		if len(rl.roles) > 0 && !slices.Contains(rl.roles, in.Role) {
			continue
		}
		if rl.match != nil && !rl.match.MatchString(in.LastUser) {
			continue
		}
		if in.Pictures && !r.pictures[rl.model] {
			continue
		}
		return rl.model
	}
	return r.defaultModel
}
