package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
)

var sseWriterPool = sync.Pool{New: func() any { return translate.NewWriter() }}

// relayStream reads the provider's events, translates and forwards each one
// with a flush. The first event decides: an error or garbage before it is a
// failure the caller may fail over from; after it the client owns a 200
// stream, and a failure ends that stream with an error event in the
// client's translate.Dialect, billing the usage seen so far.
func (g *Gateway) relayStream(actx, clientCtx context.Context, firstByte *time.Timer, w http.ResponseWriter, c *call, st translate.Stream, body io.Reader) attemptResult {
	rd := translate.NewReader(body)
	out := sseWriterPool.Get().(*translate.Writer)
	out.Reset()
	defer sseWriterPool.Put(out)
	rc := http.NewResponseController(w)
	var (
		ev        translate.Event
		committed bool
		res       attemptResult
	)
	for {
		err := rd.Next(&ev)
		ended := false
		switch {
		case err == nil:
			firstByte.Stop()
			err = st.Event(&ev, out)
		case errors.Is(err, io.EOF):
			ended = true
			err = st.EOF(out)
		case committed && st.EOF(out) == nil:
			// The stream was complete; the read after its last event (kept
			// to reuse the connection) failed, e.g. because the client hung
			// up as soon as it had everything.
			ended, err = true, nil
		}
		if err != nil {
			f := streamFailure(actx, err)
			if !committed {
				return attemptResult{failure: f}
			}
			res.usage = st.Usage()
			if clientCtx.Err() != nil {
				// The client went away: nobody is left to tell.
				res.status = statusClientClosed
				return res
			}
			e := &translate.Error{Status: http.StatusBadGateway, Msg: "the provider failed mid-stream: " + f.msg}
			res.status, res.broken = http.StatusBadGateway, f
			if errors.Is(actx.Err(), context.DeadlineExceeded) {
				e = &translate.Error{Status: http.StatusGatewayTimeout, Msg: "the request took longer than this gateway's limit"}
				res.status, res.broken = http.StatusGatewayTimeout, nil
			}
			translate.WriteStreamError(out, c.front, e)
			_ = g.flushEvents(w, rc, out)
			return res
		}
		if !committed && (out.Len() > 0 || ended) {
			h := w.Header()
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no") // tell buffering proxies to pass events through
			w.WriteHeader(http.StatusOK)
			committed = true
			res.ttft = time.Since(c.start)
		}
		if out.Len() > 0 {
			if err := g.flushEvents(w, rc, out); err != nil {
				res.status, res.usage = statusClientClosed, st.Usage()
				return res
			}
		}
		if ended {
			res.status, res.usage = http.StatusOK, st.Usage()
			return res
		}
	}
}

func (g *Gateway) flushEvents(w http.ResponseWriter, rc *http.ResponseController, out *translate.Writer) error {
	_, err := w.Write(out.Bytes())
	out.Reset()
	if err != nil {
		return err
	}
	return rc.Flush()
}

// streamFailure classifies an error from reading or translating a stream.
func streamFailure(actx context.Context, err error) *upstreamFailure {
	var sf *translate.Fault
	if errors.As(err, &sf) {
		return &upstreamFailure{class: faultClass(sf), msg: sf.Msg}
	}
	if errors.Is(err, translate.ErrEventTooLarge) {
		return &upstreamFailure{class: classServerError, msg: err.Error()}
	}
	return classifyTransport(actx, err)
}
