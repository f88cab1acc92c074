package providersim

import (
	"context"
	"encoding/json"
	"net/http"
)

// sseWriter writes one event stream and applies the stream faults: it resets,
// stalls or injects an error after a given number of events.
type sseWriter struct {
	s     *Server
	w     http.ResponseWriter
	rc    *http.ResponseController
	ctx   context.Context
	named bool // Anthropic names events ("event: x"); OpenAI sends data lines only

	sent       int
	resetAfter int
	stallAfter int
	errAfter   int
	errEvent   func() // writes the dialect's in-stream error
	dead       bool
}

func (s *Server) newSSE(w http.ResponseWriter, r *http.Request, d dialect, f *Fault) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	d.setRequestID(w, s)
	w.WriteHeader(http.StatusOK)
	e := &sseWriter{s: s, w: w, rc: http.NewResponseController(w), ctx: r.Context(), named: d.provider() == ProviderAnthropic}
	if f != nil {
		e.resetAfter, e.stallAfter, e.errAfter = f.ResetAfterEvents, f.StallAfterEvents, f.ErrorAfterEvents
		status := f.Status
		if status == 0 {
			status = d.overloadedStatus()
		}
		e.errEvent = func() { d.writeStreamError(e, status) }
	}
	return e
}

// send writes one event; it reports false once the stream is over (client
// gone or a fault fired), after which callers stop.
func (e *sseWriter) send(event string, data any) bool {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err) // our own types always marshal
	}
	return e.sendRaw(event, b)
}

func (e *sseWriter) sendRaw(event string, data []byte) bool {
	if e.dead {
		return false
	}
	if e.sent > 0 && !e.s.wait(e.ctx, e.s.opts.EventDelay) {
		e.dead = true
		return false
	}
	e.write(event, data)
	if e.dead {
		return false
	}
	e.sent++
	switch {
	case e.resetAfter > 0 && e.sent >= e.resetAfter:
		resetConn(e.w, true)
		e.dead = true
	case e.stallAfter > 0 && e.sent >= e.stallAfter:
		_ = e.rc.Flush()
		e.s.hang(e.ctx)
		e.dead = true
	case e.errAfter > 0 && e.sent >= e.errAfter:
		e.errAfter = 0
		e.errEvent()
		e.dead = true
	}
	return !e.dead
}

// write puts one event on the wire and flushes it, so each event reaches the
// client on its own as it would from a real provider.
func (e *sseWriter) write(event string, data []byte) {
	buf := make([]byte, 0, len(data)+len(event)+16)
	if e.named && event != "" {
		buf = append(buf, "event: "...)
		buf = append(buf, event...)
		buf = append(buf, '\n')
	}
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	if _, err := e.w.Write(buf); err != nil {
		e.dead = true
		return
	}
	if err := e.rc.Flush(); err != nil {
		e.dead = true
	}
}
