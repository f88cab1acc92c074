package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/routing"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// A stateful turn: the gateway assembles the history from the store, sends
// it through the same completion path as the model API (failover, metrics,
// ledger), and persists both sides.
//
// Persistence order, so that a process killed at any point leaves an
// honest store:
//  1. the user message is appended before the model is called;
//  2. when the stream starts, the assistant message is begun (status
//     streaming) and the turn's ledger row written (status "incomplete",
//     the input tokens, the cost so far);
//  3. every checkpointInterval (or checkpointEvents deltas) the text so
//     far is saved and the ledger row revised with the output so far;
//  4. at the end the message is finished (complete, incomplete or error)
//     and the ledger row replaced by the provider's exact usage.
//
// A restart marks a message left streaming incomplete (RecoverIncomplete);
// its ledger row already says "incomplete" and bills what was streamed up to
// the last checkpoint: input tokens as the provider reported them at the
// start of the stream (or estimated from the prompt when its translate.Dialect
// reports them only at the end), output tokens estimated from the saved
// text at four bytes a token.
//
// The response, unless ?stream=false, is text/event-stream:
//
//	event: session  {"sessionId", "newSession", "userMessageId", "messageId", "model", "droppedMessages"}
//	event: delta    {"text"}                                  zero or more
//	event: error    {"error": {"type", "message"}}            when the turn failed mid-way
//	event: done     turnResult: status, usage, cost …         always last
//
// A failure before the first byte (unknown model, every provider down) is
// an ordinary JSON error with its HTTP status. Every response carries
// X-Session-Id and X-Session-New.
const (
	checkpointInterval = time.Second
	checkpointEvents   = 64
	defaultIdle        = 120 * time.Minute
)

type sendRequest struct {
	Content string `json:"content"`
	// Model overrides the session's model for this turn.
	Model string `json:"model"`
}

// turnUsage is a turn's tokens and cost.
type turnUsage struct {
	InputTokens      int64 `json:"inputTokens"`
	OutputTokens     int64 `json:"outputTokens"`
	CacheReadTokens  int64 `json:"cacheReadTokens"`
	CacheWriteTokens int64 `json:"cacheWriteTokens"`
}

// turnResult is the done event, and the body of a non-streamed turn.
type turnResult struct {
	SessionID       string          `json:"sessionId"`
	NewSession      bool            `json:"newSession"`
	UserMessageID   string          `json:"userMessageId"`
	MessageID       string          `json:"messageId,omitempty"`
	Status          store.Status    `json:"status"`
	Model           string          `json:"model"`
	Provider        string          `json:"provider,omitempty"`
	DroppedMessages int             `json:"droppedMessages"`
	Usage           turnUsage       `json:"usage"`
	CostUSD         string          `json:"costUSD"`
	Content         *string         `json:"content,omitempty"`
	Error           *apiErrorDetail `json:"error,omitempty"`
}

type sessionEvent struct {
	SessionID       string `json:"sessionId"`
	NewSession      bool   `json:"newSession"`
	UserMessageID   string `json:"userMessageId"`
	MessageID       string `json:"messageId"`
	Model           string `json:"model"`
	DroppedMessages int    `json:"droppedMessages"`
}

func (g *Gateway) readSend(w http.ResponseWriter, r *http.Request, c *call) (sendRequest, bool) {
	var req sendRequest
	if !decodeBody(w, r, c.snap.cfg.MaxRequestBodyBytes, &req) {
		return req, false
	}
	if strings.TrimSpace(req.Content) == "" {
		writeAPIError(w, http.StatusBadRequest, `send {"content": "..."} with the message text`)
		return req, false
	}
	return req, true
}

func (g *Gateway) sendMessage(w http.ResponseWriter, r *http.Request, c *call) {
	req, ok := g.readSend(w, r, c)
	if !ok {
		return
	}
	s, err := g.store.GetSession(r.Context(), c.who.email, r.PathValue("id"))
	if err != nil {
		g.storeError(w, r, c, err)
		return
	}
	g.runTurn(w, r, c, s, false, req)
}

// chat sends to the caller's active session, or starts one when the last
// has been idle for sessions.idleTimeout.
func (g *Gateway) chat(w http.ResponseWriter, r *http.Request, c *call) {
	req, ok := g.readSend(w, r, c)
	if !ok {
		return
	}
	idle := c.snap.cfg.Sessions.IdleTimeout.Duration
	if idle <= 0 {
		idle = defaultIdle
	}
	s, err := g.store.ActiveSession(r.Context(), c.who.email, idle, g.now())
	isNew := false
	if errors.Is(err, store.ErrNotFound) {
		model, ok := g.sessionModel(c, req.Model)
		if !ok {
			writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("model %q is not served by this gateway", req.Model))
			return
		}
		s, err = g.store.CreateSession(r.Context(), c.who.email, store.NewSession{Model: model})
		isNew = true
	}
	if err != nil {
		g.storeError(w, r, c, err)
		return
	}
	g.runTurn(w, r, c, s, isNew, req)
}

func (g *Gateway) runTurn(w http.ResponseWriter, r *http.Request, c *call, s store.Session, isNew bool, req sendRequest) {
	ctx := r.Context()
	owner := c.who.email
	h := w.Header()
	h.Set("X-Session-Id", s.ID)
	h.Set("X-Session-New", strconv.FormatBool(isNew))
	stream := r.URL.Query().Get("stream") != "false"

	asked := req.Model
	if asked == "" {
		asked = s.Model
	}
	// For Auto the completion path picks the model; the default bounds
	// the context and prices the provisional bill until it has.
	choice, ok := c.snap.models.Resolve(asked)
	alias, upstreamModel := choice.Alias, choice.Name()
	if !ok || !c.snap.models.Serves(alias) {
		writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("model %q is not served by this gateway", asked))
		return
	}
	history, err := g.store.ListMessages(ctx, owner, s.ID)
	if err != nil {
		g.storeError(w, r, c, err)
		return
	}
	win := c.snap.models.Window(alias)
	turns, dropped, fits := boundContext(history, req.Content, win)
	if !fits {
		writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("the message is too long for model %s's context window of %d tokens", alias, win.Context))
		return
	}
	userMsg, err := g.store.AppendMessage(ctx, owner, s.ID, store.NewMessage{Role: store.RoleUser, Content: req.Content})
	if err != nil {
		g.storeError(w, r, c, err)
		return
	}
	if s.Title == "" && len(history) == 0 {
		// A first message names the session, as chat pages do.
		if err := g.store.RenameSession(ctx, owner, s.ID, titleFrom(req.Content)); err != nil {
			g.log.LogAttrs(ctx, slog.LevelWarn, "Failed to title a session", slog.String("request_id", c.id), slog.String("error", err.Error()))
		}
	}

	body, err := json.Marshal(anthropicTurnRequest{Model: upstreamModel, MaxTokens: win.MaxOutput, Stream: true, Messages: turns})
	if err != nil {
		writeAPIError(w, http.StatusInternalServerError, "building the model request failed")
		return
	}
	// The turn is a request of its own on the completion path, with an id
	// the gateway chose: the ledger row it revises must not be one a
	// caller could name.
	tc := &call{id: newTurnID(), start: time.Now(), front: translate.Anthropic, snap: c.snap, who: c.who}
	inner := r.Clone(ctx)
	inner.Body = io.NopCloser(bytes.NewReader(body))
	inner.ContentLength = int64(len(body))

	tw := &turnWriter{
		g: g, client: w, stream: stream, ctx: ctx, c: tc, owner: owner,
		ev:    sessionEvent{SessionID: s.ID, NewSession: isNew, UserMessageID: userMsg.ID, Model: alias, DroppedMessages: dropped},
		alias: alias, promptBytes: len(body), header: http.Header{},
	}
	g.serveCompletion(tw, inner, tc)
	tw.finish()
}

// anthropicTurnRequest is the Messages API request a turn sends through
// the completion path (the Anthropic front; translation reaches either
// provider type).
type anthropicTurnRequest struct {
	Model     string        `json:"model"`
	MaxTokens int64         `json:"max_tokens"`
	Stream    bool          `json:"stream"`
	Messages  []turnMessage `json:"messages"`
}

type turnMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// newTurnID makes a request id no caller chose.
func newTurnID() string { return requestID(&http.Request{Header: http.Header{}}) }

func titleFrom(content string) string {
	t := strings.Join(strings.Fields(content), " ")
	if utf8.RuneCountInString(t) <= 60 {
		return t
	}
	return string([]rune(t)[:60]) + "…"
}

// estimateTokens is a message's estimate: its text and its framing. It
// errs high, which drops a turn early rather than have the provider
// refuse the request.
func estimateTokens(text string) int64 {
	return routing.EstimateTokens(len(text)) + routing.MessageOverheadTokens
}

// boundContext builds the turn's messages: the stored history (replies
// that produced no text are skipped, consecutive messages of one role
// joined) and the new message, dropping the oldest until the estimate fits
// the window less the reply's room. dropped counts stored messages left
// out. fits is false when the new message alone is too big.
func boundContext(history []store.Message, content string, w routing.Window) (turns []turnMessage, dropped int, fits bool) {
	type item struct {
		msg    turnMessage
		stored int // stored messages folded into this one
		tokens int64
	}
	var items []item
	add := func(role, text string, stored int) {
		if n := len(items); n > 0 && items[n-1].msg.Role == role {
			items[n-1].msg.Content += "\n\n" + text
			items[n-1].stored += stored
			items[n-1].tokens += estimateTokens(text)
			return
		}
		items = append(items, item{turnMessage{role, text}, stored, estimateTokens(text)})
	}
	skipped := 0
	for _, m := range history {
		if m.Content == "" {
			skipped++
			continue
		}
		add(string(m.Role), m.Content, 1)
	}
	add(string(store.RoleUser), content, 0)

	var total int64
	for _, it := range items {
		total += it.tokens
	}
	budget := w.Context - w.MaxOutput
	if w.Context > 0 && budget <= 0 {
		budget = w.Context
	}
	start := 0
	for w.Context > 0 && total > budget && start < len(items)-1 {
		total -= items[start].tokens
		dropped += items[start].stored
		start++
	}
	// The Messages API wants the first message from the user.
	for start < len(items)-1 && items[start].msg.Role != string(store.RoleUser) {
		dropped += items[start].stored
		start++
	}
	if w.Context > 0 && total > budget {
		return nil, 0, false
	}
	for _, it := range items[start:] {
		turns = append(turns, it.msg)
	}
	if dropped > 0 {
		dropped += skipped
	}
	return turns, dropped, true
}

// turnWriter is the ResponseWriter the completion path writes a turn's
// Anthropic event stream into. It persists the reply as it goes and
// relays the text to the client as the turn's own events.
type turnWriter struct {
	g           *Gateway
	client      http.ResponseWriter
	stream      bool
	ctx         context.Context
	c           *call
	owner       string
	ev          sessionEvent
	alias       string
	promptBytes int
	header      http.Header

	status   int
	pending  []byte
	errBody  bytes.Buffer
	started  bool
	failed   bool // the store refused the reply; the stream is abandoned
	finished bool
	upErr    *apiErrorDetail
	usage    metering.Usage
	text     strings.Builder
	sinceCP  int
	lastCP   time.Time
}

func (t *turnWriter) Header() http.Header { return t.header }

func (t *turnWriter) WriteHeader(status int) {
	if t.status == 0 {
		t.status = status
	}
}

func (t *turnWriter) Write(p []byte) (int, error) {
	if t.status == 0 {
		t.status = http.StatusOK
	}
	if t.status != http.StatusOK {
		if t.errBody.Len() < 64<<10 {
			t.errBody.Write(p)
		}
		return len(p), nil
	}
	if t.failed {
		return 0, errTurnAbandoned
	}
	t.pending = append(t.pending, p...)
	for {
		i := bytes.Index(t.pending, []byte("\n\n"))
		if i < 0 {
			break
		}
		name, data := parseEvent(t.pending[:i])
		t.pending = t.pending[i+2:]
		if err := t.event(name, data); err != nil {
			t.failed = true
			return 0, err
		}
	}
	return len(p), nil
}

var errTurnAbandoned = errors.New("the session store refused the reply")

// Flush is the client's: the turn's own events were written to it.
func (t *turnWriter) Flush() {
	if t.stream && t.started {
		_ = http.NewResponseController(t.client).Flush()
	}
}

func parseEvent(b []byte) (name string, data []byte) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		switch {
		case bytes.HasPrefix(line, []byte("event: ")):
			name = string(line[len("event: "):])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data, line[len("data: "):]...)
		}
	}
	return name, data
}

// turnEvent is what a turn reads of an Anthropic stream event.
type turnEvent struct {
	Message *struct {
		Usage turnWireUsage `json:"usage"`
	} `json:"message"`
	Usage *turnWireUsage `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

type turnWireUsage struct {
	InputTokens              *int64 `json:"input_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
}

// applyTo sets the counts the event carries; absent ones keep theirs.
func (w *turnWireUsage) applyTo(u *metering.Usage) {
	for _, f := range []struct {
		dst *int64
		v   *int64
	}{{&u.Input, w.InputTokens}, {&u.CacheWrite, w.CacheCreationInputTokens}, {&u.CacheRead, w.CacheReadInputTokens}, {&u.Output, w.OutputTokens}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
}

func (t *turnWriter) event(name string, data []byte) error {
	var e turnEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return nil // the completion path already vetted the stream
	}
	switch name {
	case "message_start":
		if e.Message != nil {
			t.usage = metering.Usage{}
			e.Message.Usage.applyTo(&t.usage)
		}
		return t.start()
	case "content_block_delta":
		var d struct {
			Delta struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"delta"`
		}
		if json.Unmarshal(data, &d) != nil || d.Delta.Type != "text_delta" || d.Delta.Text == "" {
			return nil
		}
		if err := t.start(); err != nil {
			return err
		}
		t.text.WriteString(d.Delta.Text)
		t.send("delta", struct {
			Text string `json:"text"`
		}{d.Delta.Text})
		t.sinceCP++
		if t.sinceCP >= checkpointEvents || time.Since(t.lastCP) >= checkpointInterval {
			t.checkpoint()
		}
	case "message_delta":
		if e.Usage != nil {
			e.Usage.applyTo(&t.usage)
		}
	case "message_stop":
		t.finished = true
	case "error":
		t.upErr = &apiErrorDetail{Type: apiUpstream, Message: "the model provider failed"}
		if e.Error != nil && e.Error.Message != "" {
			t.upErr.Message = e.Error.Message
		}
	}
	return nil
}

// start begins the assistant message and the ledger row, then opens the
// client's stream: nothing reaches the client before the store has it.
func (t *turnWriter) start() error {
	if t.started {
		return nil
	}
	m, err := t.g.store.BeginAssistantMessage(t.ctx, t.owner, t.ev.SessionID)
	if err != nil {
		t.g.log.LogAttrs(t.ctx, slog.LevelError, "Failed to begin a reply", slog.String("request_id", t.c.id), slog.String("error", err.Error()))
		return err
	}
	t.started, t.ev.MessageID, t.lastCP = true, m.ID, time.Now()
	t.bill(context.WithoutCancel(t.ctx), "incomplete")
	if t.stream {
		h := t.client.Header()
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		t.client.WriteHeader(http.StatusOK)
		t.send("session", t.ev)
	}
	return nil
}

// checkpoint saves the text so far and bills it.
func (t *turnWriter) checkpoint() {
	t.sinceCP, t.lastCP = 0, time.Now()
	ctx := context.WithoutCancel(t.ctx)
	if err := t.g.store.UpdateAssistantMessage(ctx, t.owner, t.ev.SessionID, t.ev.MessageID, t.text.String()); err != nil {
		t.g.log.LogAttrs(t.ctx, slog.LevelWarn, "Failed to save a reply in progress", slog.String("request_id", t.c.id), slog.String("error", err.Error()))
	}
	t.bill(ctx, "incomplete")
}

// streamedUsage is what the stream has cost so far: the provider's counts,
// or estimates where it has not reported yet.
func (t *turnWriter) streamedUsage() metering.Usage {
	u := t.usage
	if u.Input+u.CacheRead+u.CacheWrite == 0 {
		u.Input = routing.EstimateTokens(t.promptBytes) + routing.MessageOverheadTokens
	}
	if est := routing.EstimateTokens(t.text.Len()); est > u.Output {
		u.Output = est
	}
	return u
}

// bill writes the turn's provisional ledger row.
func (t *turnWriter) bill(ctx context.Context, status string) {
	t.billUsage(ctx, t.streamedUsage(), status)
}

func (t *turnWriter) billUsage(ctx context.Context, u metering.Usage, status string) {
	sl, ok := t.g.ledger.(*metering.StoreLedger)
	if !ok {
		return
	}
	rt := t.route()
	e := metering.Entry{Time: t.c.start, RequestID: t.c.id, User: t.owner, Model: rt.Alias, Provider: rt.Provider.Name(), Usage: u, Cost: rt.Prices.Cost(u)}
	if err := sl.Revise(ctx, e, status); err != nil {
		t.g.log.LogAttrs(ctx, slog.LevelError, "Failed to record spend", slog.String("request_id", t.c.id), slog.String("error", err.Error()))
	}
}

// route is the one that served, once known, else the first planned.
func (t *turnWriter) route() *upstream.Route {
	if o := t.c.metered; o != nil && o.provider != "" {
		for _, rt := range t.c.snap.models.Plan(o.model) {
			if rt.Alias == o.model && rt.Provider.Name() == o.provider {
				return rt
			}
		}
	}
	return t.c.snap.models.Plan(t.alias)[0]
}

func (t *turnWriter) send(name string, v any) {
	if !t.stream || !t.started {
		return
	}
	b, _ := json.Marshal(v)
	var buf bytes.Buffer
	buf.WriteString("event: ")
	buf.WriteString(name)
	buf.WriteString("\ndata: ")
	buf.Write(b)
	buf.WriteString("\n\n")
	_, _ = t.client.Write(buf.Bytes())
}

// finish runs after the completion path returned: it settles the message,
// the ledger and the client's answer.
func (t *turnWriter) finish() {
	ctx := context.WithoutCancel(t.ctx)
	o := t.c.metered
	res := turnResult{
		SessionID: t.ev.SessionID, NewSession: t.ev.NewSession, UserMessageID: t.ev.UserMessageID,
		MessageID: t.ev.MessageID, Model: t.alias, DroppedMessages: t.ev.DroppedMessages, CostUSD: metering.Picodollars(0).String(),
	}
	if !t.started {
		// Nothing was streamed: answer the completion path's error.
		status := t.status
		if status == 0 || status == http.StatusOK {
			status = http.StatusBadGateway
		}
		msg := "the model provider failed"
		if t.failed {
			status, msg = http.StatusInternalServerError, "the session store failed; try again"
		} else if m, _ := translate.UpstreamErrorMessage(t.errBody.Bytes(), 0); m != "" && t.errBody.Len() > 0 {
			msg = m
		}
		// A quota refusal says when to come back.
		if ra := t.header.Get("Retry-After"); ra != "" {
			t.client.Header().Set("Retry-After", ra)
		}
		writeAPIError(t.client, status, msg)
		return
	}
	if o != nil {
		res.Model, res.Provider = o.model, o.provider
	}
	switch {
	case t.finished && t.upErr == nil:
		res.Status = store.StatusComplete
	case t.text.Len() > 0:
		res.Status = store.StatusIncomplete
	default:
		res.Status = store.StatusError
	}
	if res.Status != store.StatusComplete && t.upErr == nil {
		t.upErr = &apiErrorDetail{Type: apiUpstream, Message: "the reply was cut short"}
		if t.failed {
			t.upErr = &apiErrorDetail{Type: apiInternal, Message: "the session store failed mid-reply"}
		}
	}
	u := t.usage
	if o != nil && !o.usage.IsZero() {
		u = o.usage
	}
	if res.Status != store.StatusComplete {
		// A cut stream bills at least what reached the client.
		su := t.streamedUsage()
		u.Output = max(u.Output, su.Output)
		if u.Input+u.CacheRead+u.CacheWrite == 0 {
			u.Input = su.Input
		}
		status := "incomplete"
		if o != nil && o.status != 0 && o.status != http.StatusOK {
			status = strconv.Itoa(o.status)
		}
		t.billUsage(ctx, u, status)
	}
	if sl, ok := t.g.ledger.(*metering.StoreLedger); ok {
		sl.Forget(t.c.id)
	}
	res.Usage = turnUsage{InputTokens: u.Input, OutputTokens: u.Output, CacheReadTokens: u.CacheRead, CacheWriteTokens: u.CacheWrite}
	cost := t.route().Prices.Cost(u)
	if o != nil && res.Status == store.StatusComplete {
		cost = o.cost
	}
	res.CostUSD = cost.String()
	err := t.g.store.FinishAssistantMessage(ctx, t.owner, t.ev.SessionID, t.ev.MessageID, store.Finish{
		Content: t.text.String(), InputTokens: u.Input + u.CacheRead + u.CacheWrite, OutputTokens: u.Output, Status: res.Status,
	})
	if err != nil {
		t.g.log.LogAttrs(ctx, slog.LevelError, "Failed to finish a reply", slog.String("request_id", t.c.id), slog.String("error", err.Error()))
		if t.upErr == nil {
			t.upErr = &apiErrorDetail{Type: apiInternal, Message: "the session store failed to save the reply"}
		}
	}
	res.Error = t.upErr
	if t.stream {
		if t.upErr != nil {
			t.send("error", apiErrorBody{Error: *t.upErr})
		}
		t.send("done", res)
		t.Flush()
		return
	}
	text := t.text.String()
	res.Content = &text
	writeJSON(t.client, http.StatusOK, res)
}
