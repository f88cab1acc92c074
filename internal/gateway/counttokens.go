package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/routing"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
)

// TokenCountHeader says where the answer of POST /v1/messages/count_tokens
// came from: TokenCountProvider when an Anthropic provider of the model
// counted (exact), TokenCountEstimate when the model's provider is
// OpenAI-compatible and has nothing to count with, so the gateway
// estimated (routing.EstimateTokens). The body is Anthropic's
// {"input_tokens": N} either way: the SDKs see only the number, and the
// header through their raw response (anthropic-sdk-go:
// option.WithResponseInto).
const (
	TokenCountHeader   = "Chatgateway-Token-Count"
	TokenCountProvider = "provider"
	TokenCountEstimate = "estimate"
)

// maxCountAnswer bounds what is read of a provider's count_tokens answer.
const maxCountAnswer = 64 << 10

// countRequest is what the gateway reads of a count_tokens body; the rest
// goes to the provider as the caller sent it.
type countRequest struct {
	Messages []struct {
		Role string `json:"role"`
	} `json:"messages"`
	Tools json.RawMessage `json:"tools"`
}

// serveCountTokens is POST /v1/messages/count_tokens. Counting is not a
// completion: nothing is metered, no quota is consulted or charged (a
// person over their limit may still count), and the providers count for
// free. The model resolves as for /v1/messages; its routes are tried in
// order: an Anthropic provider is asked (a transport error, 429 or 5xx
// moves on to the next route, a 4xx about the request is the caller's),
// and the first OpenAI-compatible route ends the walk with an estimate.
func (g *Gateway) serveCountTokens(w http.ResponseWriter, r *http.Request, c *call) {
	fail := func(e *translate.Error) { translate.WriteError(w, translate.Anthropic, e) }
	snap := c.snap.core
	buf := upstream.GetBuffer()
	defer upstream.PutBuffer(buf)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, snap.MaxRequestBodyBytes)); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			fail(translate.Errorf(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than this gateway's limit of %d bytes", mbe.Limit)))
			return
		}
		fail(translate.Errorf(http.StatusBadRequest, "reading the request body: "+err.Error()))
		return
	}
	body := buf.Bytes()
	in, aerr := translate.Parse(translate.Anthropic, body)
	if aerr != nil {
		fail(aerr)
		return
	}
	var cr countRequest
	if err := json.Unmarshal(body, &cr); err != nil {
		fail(translate.Errorf(http.StatusBadRequest, "the request does not follow the Messages API: "+err.Error()))
		return
	}
	if len(cr.Messages) == 0 {
		fail(translate.Errorf(http.StatusBadRequest, "messages: at least one message is required"))
		return
	}
	text, lastUser := in.Text()
	estimate := max(routing.EstimateTokens(text+len(cr.Tools))+routing.MessageOverheadTokens*int64(len(cr.Messages)), 1)

	choice, ok := snap.Models.Resolve(in.Model())
	if !ok {
		e := translate.Errorf(http.StatusNotFound, fmt.Sprintf("model %q is not served by this gateway; use one of %s (GET /v1/models lists them), or omit model for the default, %s",
			in.Model(), strings.Join(snap.Models.Aliases(), ", "), snap.Models.Default()))
		e.Code = "model_not_found"
		fail(e)
		return
	}
	if choice.Auto {
		choice.Alias = snap.Models.Choose(routing.Input{Tokens: routing.EstimateTokens(text), LastUser: lastUser, Role: c.who.Role})
	}
	ctx, cancel := context.WithTimeout(r.Context(), snap.Failover.RequestTimeout)
	defer cancel()
	last := "no route"
	for _, rt := range snap.Models.Plan(choice.Alias) {
		counter, ok := rt.Provider.(upstream.TokenCounter)
		if !ok {
			writeTokenCount(w, TokenCountEstimate, estimate)
			return
		}
		n, status, msg := countAt(ctx, counter, rt, body)
		switch {
		case status == http.StatusOK:
			writeTokenCount(w, TokenCountProvider, n)
			return
		case status == http.StatusBadRequest || status == http.StatusNotFound || status == http.StatusRequestEntityTooLarge || status == http.StatusUnprocessableEntity:
			fail(translate.Errorf(status, msg)) // about the request: another route would say the same
			return
		}
		last = fmt.Sprintf("%s: %s", rt.Provider.Name(), msg)
	}
	fail(translate.Errorf(http.StatusBadGateway, "no provider of "+choice.Alias+" could count the tokens; last: "+last))
}

// countAt asks one Anthropic route to count body, with the caller's model
// replaced by the route's model id, within the route's firstByte timeout.
// It returns the count on 200, else the status (0 for a transport error)
// and a message fit for the caller.
func countAt(ctx context.Context, counter upstream.TokenCounter, rt *upstream.Route, body []byte) (int64, int, string) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return 0, http.StatusBadRequest, "the request body must be a JSON object"
	}
	top["model"], _ = json.Marshal(rt.ModelID)
	out, err := json.Marshal(top)
	if err != nil {
		return 0, http.StatusBadRequest, err.Error()
	}
	if rt.FirstByte > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt.FirstByte)
		defer cancel()
	}
	resp, err := counter.CountTokens(ctx, out)
	if err != nil {
		return 0, 0, "the provider did not answer"
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxCountAnswer))
	if err != nil {
		return 0, 0, "the provider's answer was cut off"
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := fmt.Sprintf("the provider answered %d", resp.StatusCode)
		if json.Unmarshal(answer, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		return 0, resp.StatusCode, msg
	}
	var n struct {
		InputTokens *int64 `json:"input_tokens"`
	}
	if err := json.Unmarshal(answer, &n); err != nil || n.InputTokens == nil || *n.InputTokens < 0 {
		return 0, http.StatusBadGateway, "the provider's count was not {\"input_tokens\": N}"
	}
	return *n.InputTokens, http.StatusOK, ""
}

func writeTokenCount(w http.ResponseWriter, source string, n int64) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(TokenCountHeader, source)
	_, _ = fmt.Fprintf(w, "{\"input_tokens\":%d}\n", n)
}
