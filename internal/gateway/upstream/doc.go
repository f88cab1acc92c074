// Package upstream owns the providers: the Provider interface and its two
// implementations (Anthropic's Messages API and OpenAI-compatible chat
// completions), their endpoints and tuned transports kept across config
// reloads, the failure classes of failover.retryOn, passive health
// (cooldowns), and the one attempt-and-failover loop every request runs.
//
// What the rest of the gateway needs to hear from the loop — whether the
// caller's quota covers a pricier route, a failover to count — comes in
// as hooks on the Plan. It imports translate (dialects, caller errors)
// and metering (prices on a Route), and must not import quota, routing,
// the completion core, the chat API or the gateway's root.
package upstream
