package chatapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/completion"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/routing"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// A stateful turn: the gateway assembles the history from the store, asks
// the completion core for a reply to it (the same path as the model API:
// quota, failover, metrics, ledger), and persists both sides as it observes
// the reply.
//
// Persistence order, so that a process killed at any point leaves an
// honest store:
//  1. the user message is appended before the model is called;
//  2. when the reply begins, the core writes the turn's ledger row
//     (provisional: the input tokens, the cost so far) and the assistant
//     message is begun (status streaming);
//  3. every checkpointInterval (or checkpointEvents deltas) the text so
//     far is saved; the core revises the ledger row on its own schedule;
//  4. at the end the message is finished (complete, incomplete or error)
//     and the ledger row replaced by the provider's exact usage (at least
//     the estimate of what was streamed, for a reply cut short).
//
// A restart marks a message left streaming incomplete (RecoverIncomplete);
// its ledger row already bills what was streamed up to the last revision:
// input tokens as the provider reported them at the start of the stream
// (or estimated from the prompt when its dialect reports them only at the
// end), output tokens estimated from the text at four bytes a token.
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
// X-Session-Id and X-Session-New, and once the user message is stored
// X-User-Message-Id: a failed turn keeps its message, and the page
// retries it by replacing it rather than sending a second copy.
const (
	checkpointInterval = time.Second
	checkpointEvents   = 64
	defaultIdle        = 120 * time.Minute
)

type sendRequest struct {
	Content string `json:"content"`
	// Model overrides the session's model for this turn.
	Model string `json:"model"`
	// Replace names a user message of the session that this turn runs
	// again (regenerate, edit and resend, retry): it and every later
	// message go, in the transaction that stores Content in its place.
	Replace string `json:"replace"`
	// Attachments are pictures sent with the message (see readAttachments).
	Attachments []sendAttachment `json:"attachments"`
	// Image asks an image model for pictures (see pictureTurn).
	Image *imageAsk `json:"image"`
}

// turnUsage is a turn's tokens and cost.
type turnUsage struct {
	InputTokens      int64 `json:"inputTokens"`
	OutputTokens     int64 `json:"outputTokens"`
	CacheReadTokens  int64 `json:"cacheReadTokens"`
	CacheWriteTokens int64 `json:"cacheWriteTokens"`
	// Images counts the pictures an image model made.
	Images int64 `json:"images,omitempty"`
}

// turnResult is the done event, and the body of a non-streamed turn.
type turnResult struct {
	SessionID       string       `json:"sessionId"`
	NewSession      bool         `json:"newSession"`
	UserMessageID   string       `json:"userMessageId"`
	MessageID       string       `json:"messageId,omitempty"`
	Status          store.Status `json:"status"`
	Model           string       `json:"model"`
	Provider        string       `json:"provider,omitempty"`
	DroppedMessages int          `json:"droppedMessages"`
	Usage           turnUsage    `json:"usage"`
	CostUSD         string       `json:"costUSD"`
	Content         *string      `json:"content,omitempty"`
	// Attachments are a picture turn's pictures (?stream=false).
	Attachments []store.Attachment `json:"attachments,omitempty"`
	Error       *apiErrorDetail    `json:"error,omitempty"`
}

type sessionEvent struct {
	SessionID       string `json:"sessionId"`
	NewSession      bool   `json:"newSession"`
	UserMessageID   string `json:"userMessageId"`
	MessageID       string `json:"messageId"`
	Model           string `json:"model"`
	DroppedMessages int    `json:"droppedMessages"`
}

func (a *API) readSend(w http.ResponseWriter, r *http.Request, c *Call) (sendRequest, bool) {
	var req sendRequest
	if !decodeBody(w, r, turnBodyLimit(c.Config.MaxRequestBodyBytes), &req) {
		return req, false
	}
	if strings.TrimSpace(req.Content) == "" {
		writeAPIError(w, http.StatusBadRequest, `send {"content": "..."} with the message text`)
		return req, false
	}
	return req, true
}

func (a *API) sendMessage(w http.ResponseWriter, r *http.Request, c *Call) {
	req, ok := a.readSend(w, r, c)
	if !ok {
		return
	}
	s, err := a.store.GetSession(r.Context(), c.Caller.Email, r.PathValue("id"))
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	a.runTurn(w, r, c, s, false, req)
}

// chat sends to the caller's active session, or starts one when the last
// has been idle for sessions.idleTimeout.
func (a *API) chat(w http.ResponseWriter, r *http.Request, c *Call) {
	req, ok := a.readSend(w, r, c)
	if !ok {
		return
	}
	idle := c.Config.Sessions.IdleTimeout.Duration
	if idle <= 0 {
		idle = defaultIdle
	}
	s, err := a.store.ActiveSession(r.Context(), c.Caller.Email, idle, a.now())
	isNew := false
	if errors.Is(err, store.ErrNotFound) {
		model, ok := a.sessionModel(c, req.Model)
		if !ok {
			writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("model %q is not served by this gateway", req.Model))
			return
		}
		s, err = a.store.CreateSession(r.Context(), c.Caller.Email, store.NewSession{Model: model})
		isNew = true
	}
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	a.runTurn(w, r, c, s, isNew, req)
}

func (a *API) runTurn(w http.ResponseWriter, r *http.Request, c *Call, s store.Session, isNew bool, req sendRequest) {
	ctx := r.Context()
	owner := c.Caller.Email
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
	choice, ok := c.Snapshot.Models.Resolve(asked)
	alias, upstreamModel := choice.Alias, choice.Name()
	if !ok || !c.Snapshot.Models.Serves(alias) {
		writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("model %q is not served by this gateway", asked))
		return
	}
	history, err := a.store.ListMessages(ctx, owner, s.ID)
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	// A replaced message's turn sees only what came before it.
	replaced, oldFirst := -1, ""
	if req.Replace != "" {
		replaced = slices.IndexFunc(history, func(m store.Message) bool { return m.ID == req.Replace })
		switch {
		case replaced < 0:
			writeAPIError(w, http.StatusNotFound, "no such message in this conversation")
			return
		case history[replaced].Role != store.RoleUser:
			writeAPIError(w, http.StatusBadRequest, "replace must name one of your messages in this conversation")
			return
		}
		if replaced == 0 {
			oldFirst = history[0].Content
		}
	}
	pictures, status, msg := readAttachments(req.Attachments)
	if status != 0 {
		writeAPIError(w, status, msg)
		return
	}
	if replaced >= 0 {
		if len(pictures) > 0 {
			writeAPIError(w, http.StatusBadRequest, "a message run again keeps its pictures; send attachments with a new message")
			return
		}
		// The message runs again with the pictures it had.
		for _, at := range history[replaced].Attachments {
			pictures = append(pictures, store.NewAttachment{MediaType: at.MediaType, Width: at.Width, Height: at.Height})
		}
		history = history[:replaced]
	}
	if len(pictures) > 0 && c.Snapshot.Models.IsImage(alias) {
		writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("model %s makes pictures; it does not read them", alias))
		return
	}
	// Auto's choice is the completion path's; it refuses a routed turn
	// with pictures that ends at a model that cannot read them.
	if len(pictures) > 0 && !choice.Auto && !c.Snapshot.Models.TakesImages(alias) {
		writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("model %s does not take pictures", alias))
		return
	}
	win := c.Snapshot.Models.Window(alias)
	turns, refs, dropped, fits := boundContext(history, req.Content, pictures, win)
	if !fits {
		writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("the message is too long for model %s's context window of %d tokens", alias, win.Context))
		return
	}
	var userMsg store.Message
	if replaced >= 0 {
		userMsg, err = a.store.ReplaceUserMessage(ctx, owner, s.ID, req.Replace, req.Content)
		// The last turn is this message: its pictures are the stored ones.
		for i, at := range userMsg.Attachments {
			refs = append(refs, pictureRef{turn: len(turns) - 1, index: len(turns[len(turns)-1].Pictures) - len(userMsg.Attachments) + i, id: at.ID})
		}
	} else {
		userMsg, err = a.store.AppendMessage(ctx, owner, s.ID, store.NewMessage{Role: store.RoleUser, Content: req.Content, Attachments: pictures})
	}
	if err == nil {
		err = a.loadPictures(r, owner, s.ID, turns, refs)
	}
	if err != nil {
		a.storeError(w, r, c, err)
		return
	}
	h.Set("X-User-Message-Id", userMsg.ID)
	if len(history) == 0 && (s.Title == "" || replaced == 0 && s.Title == titleFrom(oldFirst)) {
		// A first message names the session, as chat pages do; an edited
		// first message renames it unless the person chose the title.
		if err := a.store.RenameSession(ctx, owner, s.ID, titleFrom(req.Content)); err != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "Failed to title a session", slog.String("request_id", c.ID), slog.String("error", err.Error()))
		}
	}

	if c.Snapshot.Models.IsImage(alias) {
		a.pictureTurn(w, r, c, sessionEvent{SessionID: s.ID, NewSession: isNew, UserMessageID: userMsg.ID, Model: alias}, req, stream)
		return
	}
	// The turn is a request of its own on the completion path, with an id
	// the gateway chose: the ledger row it revises must not be one a
	// caller could name.
	t := &turn{
		a: a, client: w, stream: stream, ctx: ctx, owner: owner, id: newTurnID(),
		ev: sessionEvent{SessionID: s.ID, NewSession: isNew, UserMessageID: userMsg.ID, Model: alias, DroppedMessages: dropped},
	}
	a.completer.Complete(ctx, completion.Request{
		ID: t.id, Start: time.Now(), Caller: c.Caller, Snapshot: c.Snapshot,
		Conversation: &translate.Conversation{Messages: turns, MaxTokens: win.MaxOutput}, Model: upstreamModel,
		BillWhileStreaming: true,
	}, t)
}

// newTurnID makes a request id no caller chose.
func newTurnID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

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
// joined) and the new message with its pictures, dropping the oldest until
// the estimate fits the window less the reply's room. Stored pictures come
// without their bytes: refs says which to read for the turns kept. dropped
// counts stored messages left out. fits is false when the new message
// alone is too big.
func boundContext(history []store.Message, content string, pictures []store.NewAttachment, w routing.Window) (turns []translate.Message, refs []pictureRef, dropped int, fits bool) {
	type item struct {
		msg    translate.Message
		ids    []string // the stored pictures' ids, by msg.Pictures' index ("" for new ones)
		stored int      // stored messages folded into this one
		tokens int64
	}
	var items []item
	add := func(role, text string, pics []translate.Picture, ids []string, picTokens int64, stored int) {
		tokens := estimateTokens(text) + picTokens
		if n := len(items); n > 0 && items[n-1].msg.Role == role {
			it := &items[n-1]
			it.msg.Text += "\n\n" + text
			it.msg.Pictures = append(it.msg.Pictures, pics...)
			it.ids = append(it.ids, ids...)
			it.stored += stored
			it.tokens += tokens
			return
		}
		items = append(items, item{translate.Message{Role: role, Text: text, Pictures: pics}, ids, stored, tokens})
	}
	skipped := 0
	for _, m := range history {
		if m.Content == "" {
			skipped++
			continue
		}
		var (
			pics      []translate.Picture
			ids       []string
			picTokens int64
		)
		for _, at := range m.Attachments {
			pics = append(pics, translate.Picture{MediaType: at.MediaType})
			ids = append(ids, at.ID)
			picTokens += pictureTokens(at.Width, at.Height)
		}
		add(string(m.Role), m.Content, pics, ids, picTokens, 1)
	}
	var (
		pics      []translate.Picture
		ids       []string
		picTokens int64
	)
	for _, at := range pictures {
		pics = append(pics, translate.Picture{MediaType: at.MediaType, Data: at.Data})
		ids = append(ids, "")
		picTokens += pictureTokens(at.Width, at.Height)
	}
	add(string(store.RoleUser), content, pics, ids, picTokens, 0)

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
		return nil, nil, 0, false
	}
	for _, it := range items[start:] {
		for i, id := range it.ids {
			if id != "" {
				refs = append(refs, pictureRef{turn: len(turns), index: i, id: id})
			}
		}
		turns = append(turns, it.msg)
	}
	if dropped > 0 {
		dropped += skipped
	}
	return turns, refs, dropped, true
}

// turn observes a turn's reply: it persists the reply as it goes and
// relays the text to the client as the turn's own events.
type turn struct {
	a      *API
	client http.ResponseWriter
	stream bool
	ctx    context.Context
	owner  string
	id     string
	ev     sessionEvent

	// mu orders Left, which comes from another goroutine, with the rest.
	mu       sync.Mutex
	ended    bool  // End ran: Left must not touch the message
	left     bool  // Left ran: the conversation keeps what the person saw
	started  bool  // the assistant message exists and the client has the session event
	beginErr error // the store refused to begin the reply
	text     strings.Builder
	sinceCP  int
	lastCP   time.Time
	events   *translate.Writer
}

// Begin begins the assistant message, then opens the client's stream:
// nothing reaches the client before the store has it.
func (t *turn) Begin(*upstream.Route, metering.Usage) error {
	m, err := t.a.store.BeginAssistantMessage(t.ctx, t.owner, t.ev.SessionID)
	if err != nil {
		t.a.log.LogAttrs(t.ctx, slog.LevelError, "Failed to begin a reply", slog.String("request_id", t.id), slog.String("error", err.Error()))
		t.beginErr = err
		return err
	}
	t.mu.Lock()
	t.started, t.ev.MessageID, t.lastCP = true, m.ID, time.Now()
	t.mu.Unlock()
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

// Text relays a piece of the reply and saves the text so far every
// checkpoint.
func (t *turn) Text(delta string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.left {
		return
	}
	t.text.WriteString(delta)
	t.send("delta", struct {
		Text string `json:"text"`
	}{delta})
	t.sinceCP++
	if t.sinceCP >= checkpointEvents || time.Since(t.lastCP) >= checkpointInterval {
		t.checkpoint()
	}
}

// Usage is the core's to bill; the turn reports the final count at End.
func (t *turn) Usage(metering.Usage) {}

// checkpoint saves the text so far.
func (t *turn) checkpoint() {
	t.sinceCP, t.lastCP = 0, time.Now()
	if err := t.a.store.UpdateAssistantMessage(context.WithoutCancel(t.ctx), t.owner, t.ev.SessionID, t.ev.MessageID, t.text.String()); err != nil {
		t.a.log.LogAttrs(t.ctx, slog.LevelWarn, "Failed to save a reply in progress", slog.String("request_id", t.id), slog.String("error", err.Error()))
	}
}

// send writes one of the turn's events to the client and flushes it.
func (t *turn) send(name string, v any) {
	if !t.stream || !t.started {
		return
	}
	if t.events == nil {
		t.events = translate.NewWriter()
	}
	t.events.JSON(name, v)
	_, _ = t.client.Write(t.events.Bytes())
	t.events.Reset()
	_ = http.NewResponseController(t.client).Flush()
}

// Left runs when the page went away mid-reply (Stop, a closed tab): the
// message is finished as incomplete at once with what was streamed, so a
// reload shows it so, while the core reads on to bill what the provider
// charges; End then revises the message's counts.
func (t *turn) Left() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.started || t.ended {
		return
	}
	t.left = true
	ctx := context.WithoutCancel(t.ctx)
	if err := t.a.store.FinishAssistantMessage(ctx, t.owner, t.ev.SessionID, t.ev.MessageID, store.Finish{
		Content: t.text.String(), Status: store.StatusIncomplete,
	}); err != nil {
		t.a.log.LogAttrs(ctx, slog.LevelError, "Failed to finish a reply", slog.String("request_id", t.id), slog.String("error", err.Error()))
	}
}

// End runs once the reply was metered and its quota settled: it finishes
// the message and answers the client.
func (t *turn) End(o completion.Outcome, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ended = true
	ctx := context.WithoutCancel(t.ctx)
	res := turnResult{
		SessionID: t.ev.SessionID, NewSession: t.ev.NewSession, UserMessageID: t.ev.UserMessageID,
		MessageID: t.ev.MessageID, Model: t.ev.Model, DroppedMessages: t.ev.DroppedMessages, CostUSD: metering.Picodollars(0).String(),
	}
	var aerr *translate.Error
	isAPIErr := errors.As(err, &aerr)
	if !t.started {
		// Nothing was streamed: answer the error. A quota refusal says
		// when to come back.
		status, msg := http.StatusBadGateway, "the model provider failed"
		switch {
		case t.beginErr != nil:
			status, msg = http.StatusInternalServerError, "the session store failed; try again"
		case isAPIErr:
			status, msg = aerr.Status, aerr.Msg
			if aerr.RetryAfter != "" {
				t.client.Header().Set("Retry-After", aerr.RetryAfter)
			}
		}
		writeAPIError(t.client, status, msg)
		return
	}
	res.Model, res.Provider = o.Model, o.Provider
	var upErr *apiErrorDetail
	switch {
	case o.Status == http.StatusOK:
		res.Status = store.StatusComplete
	case t.text.Len() > 0:
		res.Status = store.StatusIncomplete
	default:
		res.Status = store.StatusError
	}
	if res.Status != store.StatusComplete {
		upErr = &apiErrorDetail{Type: apiUpstream, Message: "the reply was cut short"}
		if isAPIErr {
			upErr.Message = aerr.Msg
		}
	}
	u := o.Usage
	res.Usage = turnUsage{InputTokens: u.Input, OutputTokens: u.Output, CacheReadTokens: u.CacheRead, CacheWriteTokens: u.CacheWrite}
	res.CostUSD = o.Cost.String()
	ferr := t.a.store.FinishAssistantMessage(ctx, t.owner, t.ev.SessionID, t.ev.MessageID, store.Finish{
		Content: t.text.String(), InputTokens: u.Input + u.CacheRead + u.CacheWrite, OutputTokens: u.Output, Status: res.Status,
	})
	if ferr != nil {
		t.a.log.LogAttrs(ctx, slog.LevelError, "Failed to finish a reply", slog.String("request_id", t.id), slog.String("error", ferr.Error()))
		if upErr == nil {
			upErr = &apiErrorDetail{Type: apiInternal, Message: "the session store failed to save the reply"}
		}
	}
	res.Error = upErr
	if t.stream {
		if upErr != nil {
			t.send("error", apiErrorBody{Error: *upErr})
		}
		t.send("done", res)
		return
	}
	text := t.text.String()
	res.Content = &text
	writeJSON(t.client, http.StatusOK, res)
}
