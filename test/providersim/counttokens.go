package providersim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
)

// countTokensFields are the top-level fields Anthropic's count_tokens
// takes; like the real API, the simulator refuses any other (max_tokens,
// stream, metadata…) as an extra input.
var countTokensFields = []string{"cache_control", "context_management", "mcp_servers", "messages", "model",
	"output_config", "speed", "system", "thinking", "tool_choice", "tools"}

// handleCountTokens is POST /v1/messages/count_tokens: the request of the
// Messages API without what shapes the reply, answered with
// {"input_tokens": N}, N being what a Messages call with the same prompt
// reports as input (uncached plus cache reads and writes). It is free and
// records nothing in the prompt cache. Queued faults apply to it as to
// /v1/messages.
func (s *Server) handleCountTokens(w http.ResponseWriter, r *http.Request, body []byte) {
	d := anthropicDialect{}
	if !d.authorized(w, r, s) {
		return
	}
	if r.Header.Get("anthropic-version") == "" {
		d.writeError(w, s, apiError{status: http.StatusBadRequest, msg: "anthropic-version: header is required"})
		return
	}
	bad := func(msg string) { d.writeError(w, s, apiError{status: http.StatusBadRequest, msg: msg}) }
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		bad("There was an issue with the request body: the body must be a JSON object")
		return
	}
	var extra []string
	for k := range top {
		if !slices.Contains(countTokensFields, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		bad(fmt.Sprintf("%s: Extra inputs are not permitted", extra[0]))
		return
	}
	var req anthropicRequest
	if err := json.Unmarshal(body, &req); err != nil {
		bad("There was an issue with the request body: " + err.Error())
		return
	}
	// Queued faults and in-band markers apply here as on /v1/messages.
	f, err := s.nextFault(ProviderAnthropic, req.lastUserText())
	if err != nil {
		bad(err.Error())
		return
	}
	one := 1
	req.MaxTokens = &one // not part of count_tokens; toPrompt's checks want it
	p, e := req.toPrompt()
	if e == nil && !s.modelAllowed(p.model) {
		nf := d.modelNotFound(p.model)
		e = &nf
	}
	answer := func() []byte {
		n := 0
		if e == nil {
			n = p.inputTokens()
		}
		b, _ := json.Marshal(map[string]int{"input_tokens": n})
		return b
	}
	if s.applyFault(w, r, d, f, false, answer) {
		return
	}
	if e != nil {
		d.writeError(w, s, *e)
		return
	}
	d.setRequestID(w, s)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(answer())
}
