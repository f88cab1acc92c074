// Package routing owns which models serve a request: the one model
// resolver (an alias, a provider's model id, the default, or Auto), the
// attempt plan of an alias (its providers in order, then its fallbacks'),
// the rules that choose a model for Auto, each model's context window, and
// the one token estimate the rules and the stateful chat both use.
//
// A Table is built per config snapshot. It imports upstream (routes),
// metering (prices) and the config schema, and must not import quota, the
// completion core, the chat API or the gateway's root.
package routing
