package chatapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/completion"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// A turn with an image model (ModelProvider kind: Image) asks for
// pictures: the message is the prompt, and the reply is the pictures,
// stored sealed with it as attachments of the assistant message. The
// answer streams as a chat turn does, with an image event per picture:
//
//	event: session {…}
//	event: image   {"id", "mediaType", "name", "bytes", "width", "height"}   one per picture
//	event: done    {…, "usage": {"images": n}, "costUSD"}
//
// The pictures are made before the first byte (a provider answers them
// whole), so a refusal or a failure is a plain JSON error, as for a chat
// turn that failed before its first byte; the user message is kept.

// imageAsk is a picture turn's optional size, quality and count; the
// model's first priced size and quality, and one picture, when absent.
type imageAsk struct {
	Size    string `json:"size"`
	Quality string `json:"quality"`
	N       *int64 `json:"n"`
}

func (a *API) pictureTurn(w http.ResponseWriter, r *http.Request, c *Call, ev sessionEvent, req sendRequest, stream bool) {
	ctx := r.Context()
	owner := c.Caller.Email
	ask := translate.ImageRequest{Prompt: &req.Content, Model: ev.Model}
	if req.Image != nil {
		ask.Size, ask.Quality, ask.N = req.Image.Size, req.Image.Quality, req.Image.N
	}
	pics, o, err := a.completer.Generate(ctx, completion.Request{ID: newTurnID(), Start: time.Now(), Caller: c.Caller, Snapshot: c.Snapshot}, ask)
	if len(pics) == 0 {
		status, msg := http.StatusBadGateway, "the model provider failed"
		if aerr := (*translate.Error)(nil); errors.As(err, &aerr) {
			status, msg = aerr.Status, aerr.Msg
			if aerr.RetryAfter != "" {
				w.Header().Set("Retry-After", aerr.RetryAfter)
			}
		}
		writeAPIError(w, status, msg)
		return
	}
	// The pictures are paid for: keep them even when the client left.
	sctx := context.WithoutCancel(ctx)
	m, serr := a.store.BeginAssistantMessage(sctx, owner, ev.SessionID)
	var stored []store.Attachment
	for i, p := range pics {
		if serr != nil {
			break
		}
		var at store.Attachment
		at, serr = a.store.AddAttachment(sctx, owner, ev.SessionID, m.ID, store.NewAttachment{
			MediaType: p.MediaType, Name: fmt.Sprintf("picture-%d.%s", i+1, strings.TrimPrefix(p.MediaType, "image/")),
			Width: p.Width, Height: p.Height, Data: p.Data,
		})
		stored = append(stored, at)
	}
	if serr == nil {
		serr = a.store.FinishAssistantMessage(sctx, owner, ev.SessionID, m.ID, store.Finish{Status: store.StatusComplete})
	}
	if serr != nil {
		a.log.LogAttrs(ctx, slog.LevelError, "Failed to store pictures", slog.String("request_id", c.ID), slog.String("error", serr.Error()))
		writeAPIError(w, http.StatusInternalServerError, "the session store failed to save the pictures; they were billed")
		return
	}
	ev.MessageID = m.ID
	res := turnResult{
		SessionID: ev.SessionID, NewSession: ev.NewSession, UserMessageID: ev.UserMessageID, MessageID: m.ID,
		Status: store.StatusComplete, Model: o.Model, Provider: o.Provider,
		Usage: turnUsage{Images: o.Images}, CostUSD: metering.Picodollars(o.Cost).String(),
	}
	if !stream {
		res.Attachments = stored
		empty := ""
		res.Content = &empty
		writeJSON(w, http.StatusOK, res)
		return
	}
	t := &turn{a: a, client: w, stream: true, ctx: ctx, owner: owner, id: c.ID, ev: ev, started: true}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	t.send("session", ev)
	for _, at := range stored {
		t.send("image", at)
	}
	t.send("done", res)
}
