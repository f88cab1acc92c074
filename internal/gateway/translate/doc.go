// Package translate owns the wire: the two API dialects (Anthropic's
// Messages API and OpenAI's chat completions), their wire types, the
// server-sent-events reader and writer (the gateway's one SSE parser),
// the translators between a caller's dialect and a provider's, and the
// error bodies of each dialect.
//
// Translators are named <front>_<upstream>.go: anthropic_openai.go serves
// the Anthropic front from an OpenAI-compatible provider, openai_anthropic.go
// the reverse, and the same-dialect files rebuild the body the caller sent
// with the provider's model id and the caller's identity.
//
// It reads and writes bytes and nothing else: no network, no clock, no
// store. It imports metering (for Usage) and must not import any other
// package of the gateway.
package translate
