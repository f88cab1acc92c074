package gateway

import (
	"github.com/chatgateway/chatgateway-operator/internal/gateway/routing"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
)

// resolveModel maps the model a caller asked for to the alias to serve and
// the requested_model label: "auto" is routed; an alias or provider model
// id names its alias (also the label); an unknown name is not served and
// labels as "" (callers choose it freely).
func (g *Gateway) resolveModel(c *call, in *translate.Request) (alias, requested string, ok bool) {
	choice, ok := c.snap.models.Resolve(in.Model())
	if !ok {
		return "", "", false
	}
	if choice.Auto {
		choice.Alias = c.snap.models.Choose(routingInputOf(c, in))
	}
	return choice.Alias, choice.Name(), true
}

func routingInputOf(c *call, in *translate.Request) routing.Input {
	ri := routing.Input{}
	if c.who.user != nil {
		ri.Role = c.who.user.Role
	}
	text, lastUser := in.Text()
	ri.Tokens, ri.LastUser = routing.EstimateTokens(text), lastUser
	return ri
}
