// Package quota owns per-user daily spending limits: the policy of each
// config snapshot (limits, time zone, cost-aware fallback), admission that
// reserves a request's worst-case cost, settlement to the real cost,
// threshold notifications to Slack, and the quota metrics.
//
// Everything it talks to is injected: the store of charges (store.Quotas),
// the metrics registry, the logger and the clock. It imports metering
// (amounts), the config schema, the store's interface and metricnames,
// and must not import translate, upstream, routing, the completion core,
// the chat API or the gateway's root.
//
// Admission reserves a request's worst-case cost against the caller's hard
// limit in the charges store the replicas share, and the end of the
// request settles the charge to the real cost, so concurrent requests, on
// one replica or several, cannot together overrun the limit.
//
// The worst case of a route is
//
//	(input bound + images × the provider's image bound) × the route's
//	highest input-side price (input, cache write, cache read)
//	+ output cap × output price × n
//
// where the input bound is the request's size in bytes plus
// ReserveOverheadTokens: byte-level BPE tokenizers never produce more tokens
// than bytes, and the body holds every message, the system prompt and the
// tool definitions. That over-reserves input about fourfold for prose, on
// purpose: it is an upper bound, not an estimate, so the settled cost cannot
// exceed the reservation. An image's tokens do not follow from its bytes
// (a URL, or a large flat PNG), so each image adds the most its provider's
// models charge for one (AnthropicImageTokens, OpenAIImageTokens). The
// output cap is the caller's max_tokens (max_completion_tokens) or else
// the model's maxOutputTokens, which the gateway then sends upstream so
// the cap holds; the request was decoded strictly (translate), so the cap
// read here is the only one the provider sees.
// The reservation covers the most expensive route of the attempt plan, so
// every failover retry fits; with quotas.costAwareFallback it covers the
// first route only and grows before a pricier retry, which is skipped when
// the remaining quota cannot cover it.
package quota
