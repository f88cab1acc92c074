// Package gateway serves the chat traffic: it authenticates every caller,
// resolves the model alias, sends the request to the configured providers in
// failover order, translates between the Anthropic Messages and OpenAI chat
// completions dialects where the caller's and the provider's differ, and
// meters tokens and cost per user.
//
// The only input is the config the operator renders (package gatewayconfig)
// and the files it names; both are re-read while the gateway runs.
//
// Files are split by concern. Translators are named <front>_<upstream>.go:
// anthropic_openai.go serves the Anthropic front from an OpenAI-compatible
// provider, openai_anthropic.go the reverse, and the same-dialect files
// rebuild the body the client sent with the upstream model and identity.
package gateway
