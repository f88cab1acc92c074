// Package providersim is a stand-in for the two upstream model providers the
// gateway talks to: Anthropic's Messages API and an OpenAI-compatible chat
// completions endpoint. Real providers are not reachable from tests, so the
// simulator follows both documented wire formats closely (it is exercised with
// the official Go SDKs) and adds deterministic replies, token counts and
// injectable faults.
//
// # Routes
//
//	POST /v1/messages          Anthropic Messages API (JSON or SSE when "stream": true)
//	POST /v1/messages/count_tokens  Anthropic's token count: {"input_tokens": N}
//	POST /v1/chat/completions  OpenAI chat completions (JSON or SSE when "stream": true)
//	POST /v1/images/generations OpenAI image generation (see images.go): n pictures
//	                           of the requested size as b64_json or as a URL
//	GET  /_sim/images/{id}     a picture a url-format answer pointed to (no auth)
//	GET  /v1/models            Anthropic list shape when an anthropic-version or
//	GET  /v1/models/{id}       x-api-key header is sent, OpenAI's otherwise
//	POST /_sim/faults          enqueue faults (JSON Fault, JSON array, or a spec string)
//	GET  /_sim/requests        recorded requests as a JSON array of Recorded
//	GET  /_sim/stats           {"served": n, "queued": n}
//	POST /_sim/reset           same as Server.Reset
//
// /v1/messages requires an anthropic-version header (any value), as the real
// API does. With Options.APIKey set, the Anthropic routes take it in x-api-key
// or as "Authorization: Bearer" (both are documented, and the official Go SDK
// v2 sends the Bearer form), the OpenAI routes as "Authorization: Bearer"; a
// missing or wrong key is a 401 in that route's error dialect. The /_sim/
// endpoints have no auth: bind the simulator to loopback.
//
// # Use
//
// In a test, Start runs the simulator on loopback until the test ends:
//
//	sim, url := providersim.Start(t, providersim.Options{APIKey: "k"})
//	sim.Enqueue(providersim.Fault{Status: 429, RetryAfter: "1"})
//	// point the gateway at url (Anthropic) or url+"/v1" (OpenAI), then:
//	rec, _ := sim.LastRequest() // what the gateway sent upstream
//
// As a process: go run ./test/providersim/cmd/providersim --listen
// 127.0.0.1:0 --api-key k prints "listening on http://ADDR" when ready.
//
// Every request to /v1/... is recorded (Requests, LastRequest) and counted
// (Served), whatever its outcome; Reset clears both along with queued faults
// and cache state.
//
// # Replies and token counting
//
// A word is a run of non-whitespace characters (strings.Fields).
//
//   - Input tokens: the words of every text the model reads: the system prompt,
//     every message's text (string content, text blocks / text parts, tool
//     results, and tool-call arguments), at least 1. Tool definitions are not
//     counted.
//   - Reply text: "Simulated reply from <model> to <N> input tokens." (8 words;
//     N includes cached tokens), padded with filler words up to
//     Options.ReplyWords. When the last user message contains [[echo]], the
//     reply is instead the text after the marker (less one line break or
//     space right after it), byte for byte: a test that drives a client
//     asks for exactly the reply it needs, Markdown included.
//   - Pictures (Anthropic image blocks, OpenAI image_url parts) are checked
//     and add input tokens by each API's documented sizing; [[pictures]]
//     makes the reply list the last user message's pictures; models in
//     Options.TextOnlyModels refuse them (see pictures.go).
//   - Output tokens: the words of the reply text, plus the words of the tool
//     arguments when a tool is called. Arguments are rendered with ": " and ", "
//     separators, e.g. {"city": "simulated"} is 2 words.
//   - max_tokens (Anthropic) / max_completion_tokens or max_tokens (OpenAI)
//     truncate the reply after that many words: stop_reason "max_tokens" /
//     finish_reason "length". A tool call that does not fit is dropped.
//   - stop_sequences / stop cut the reply before the first occurrence:
//     stop_reason "stop_sequence" with stop_sequence set / finish_reason "stop".
//
// Tool use: when the request defines tools and the conversation ends with a
// user message whose text contains [[tool]] (or [[tool:NAME]]), or tool_choice forces a call ("any"/"tool" on
// Anthropic, "required"/a named function on OpenAI; "none" prevents one), the
// reply calls a tool: the one tool_choice names, else the marker's NAME, else
// the first. Arguments hold every property of the
// tool's JSON schema with a placeholder per type ("simulated", 1, true, [],
// {}). Anthropic replies with a short text block ("Calling tool NAME.") and a
// tool_use block, stop_reason "tool_use"; OpenAI replies with content null and
// one tool call, finish_reason "tool_calls". Both stream the arguments in
// pieces (input_json_delta / function.arguments deltas).
//
// Prompt caching, Anthropic: when cache_control appears on a system or message
// block, the prefix ends at the last such block (a top-level cache_control
// covers the whole prompt; one only on tools covers the system prompt). The
// first request with a given prefix reports its words as
// cache_creation_input_tokens, later ones as cache_read_input_tokens; the
// words after the prefix are input_tokens. There is no minimum length.
// OpenAI: caching is automatic as on the real API: the longest message-prefix
// already seen, of at least Options.OpenAICacheMinTokens words (default 1024,
// OpenAI's documented minimum), is reported as
// usage.prompt_tokens_details.cached_tokens (included in prompt_tokens).
//
// Streams split the reply text into Options.Chunks deltas, cut before a
// word, so that joined they give back the text with its spacing. Anthropic sends
// message_start, content_block_start, ping, content_block_delta...,
// content_block_stop, message_delta (stop_reason and cumulative usage),
// message_stop. OpenAI sends a role chunk, content chunks, a chunk with the
// finish_reason, then, only with stream_options.include_usage, a chunk with
// "choices": [] and the usage (every other chunk then carries "usage": null),
// and finally "data: [DONE]".
//
// # Faults
//
// Faults make the next completion request (POST /v1/messages,
// /v1/chat/completions or /v1/images/generations, which takes markers from
// its prompt; not /v1/models) misbehave. They come from three
// places, checked in this order after auth:
//
//  1. Server.Enqueue, FIFO; a fault with Provider set is taken only by a
//     request on that provider's route, others pass it by.
//  2. POST /_sim/faults, the same queue across processes.
//  3. An in-band marker in the last user message's text, for tests that drive
//     the gateway and so control only the conversation: [[fault:SPEC]].
//
// SPEC is a comma-separated list of items:
//
//	NNN or status=NNN   answer with HTTP status NNN (400-599) and an error body
//	                    in the route's dialect (Anthropic: 400
//	                    invalid_request_error, 401 authentication_error, 402
//	                    billing_error, 403 permission_error, 404
//	                    not_found_error, 413 request_too_large, 429
//	                    rate_limit_error, 504 timeout_error, 529
//	                    overloaded_error, other 5xx api_error; OpenAI: an error
//	                    object with type and code)
//	overloaded          Anthropic 529 overloaded_error; OpenAI 503 server_error
//	retry-after=V       send "Retry-After: V" (status defaults to 429)
//	delay=DUR           wait DUR (Go duration, e.g. 200ms) before the first byte
//	hang                never answer; return when the client goes away
//	reset=N             streams: send N SSE events (a ping counts), then reset
//	                    the TCP connection; non-streaming: send the headers and
//	                    half the body, then reset
//	stall=N             streams: send N SSE events, then wait until the client
//	                    goes away
//	error-after=N       streams: send N SSE events, then an error event (typed
//	                    by status, default overloaded) and end the stream;
//	                    non-streaming: the error status (default 529 / 503)
//	disconnect          reset the TCP connection before any response byte
//	malformed           200 with a truncated JSON body; streams: one good event,
//	                    then an event whose data is truncated JSON
//	provider=P          only on the anthropic or openai route
//	times=N             the marker fires on its first N requests only (default:
//	                    every request carrying it, so gateway retries see it too)
//	id=X                ignored; makes otherwise equal markers count separately
//
// Examples: [[fault:529]], [[fault:status=429,retry-after=2]],
// [[fault:delay=200ms]], [[fault:reset=3]], [[fault:malformed]],
// [[fault:provider=anthropic,overloaded,times=1]].
//
// A malformed marker is answered with 400 invalid_request_error naming the
// problem. Delays, hangs and stalls end when the request context is done or
// Server.Close is called, so nothing leaks.
package providersim
