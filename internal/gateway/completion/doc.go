// Package completion is the gateway's one completion core: Complete serves
// a completion for an identified caller and reports what happens to an
// Observer, in order — Begin when a provider's answer is good and about to
// reach the caller, Text for each piece of a Conversation's reply, Usage as
// the provider's counts change, and exactly one End, after metering (the
// metrics and the ledger) and the quota settlement.
//
// Both HTTP fronts (/v1/chat/completions, /v1/messages) and the stateful
// chat run it. An HTTP front hands it the caller's body and its
// ResponseWriter, and the core relays the provider's answer, translated,
// byte for byte; the chat builds a translate.Conversation and reads typed
// events, so nothing the gateway writes is parsed again.
//
// A request goes down the parts in order: resolve the model (routing),
// admit it against the caller's daily quota (quota), try the routes of its
// plan with failover (upstream), translate and relay (translate), meter
// and settle (metering, quota). It imports those parts and the config
// schema, and must not import the chat API or the gateway's root.
package completion
