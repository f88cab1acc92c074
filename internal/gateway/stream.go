package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

var sseWriterPool = sync.Pool{New: func() any { return newSSEWriter() }}

// relayStream reads the provider's events, translates and forwards each one
// with a flush. The first event decides: an error or garbage before it is a
// failure the caller may fail over from; after it the client owns a 200
// stream, and a failure ends that stream with an error event in the
// client's dialect, billing the usage seen so far.
func (g *Gateway) relayStream(actx, clientCtx context.Context, firstByte *time.Timer, w http.ResponseWriter, c *call, st streamTranslator, body io.Reader) attemptResult {
	rd := newSSEReader(body)
	out := sseWriterPool.Get().(*sseWriter)
	out.buf.Reset()
	defer sseWriterPool.Put(out)
	rc := http.NewResponseController(w)
	var (
		ev        sseEvent
		committed bool
		res       attemptResult
	)
	for {
		err := rd.next(&ev)
		ended := false
		switch {
		case err == nil:
			firstByte.Stop()
			err = st.event(&ev, out)
		case errors.Is(err, io.EOF):
			ended = true
			err = st.eof(out)
		case committed && st.eof(out) == nil:
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
			res.usage = st.usage()
			if clientCtx.Err() != nil {
				// The client went away: nobody is left to tell.
				res.status = statusClientClosed
				return res
			}
			e := &apiError{status: http.StatusBadGateway, msg: "the provider failed mid-stream: " + f.msg}
			res.status, res.broken = http.StatusBadGateway, f
			if errors.Is(actx.Err(), context.DeadlineExceeded) {
				e = &apiError{status: http.StatusGatewayTimeout, msg: "the request took longer than this gateway's limit"}
				res.status, res.broken = http.StatusGatewayTimeout, nil
			}
			writeStreamError(out, c.front, e)
			_ = g.flushEvents(w, rc, out)
			return res
		}
		if !committed && (out.buf.Len() > 0 || ended) {
			h := w.Header()
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no") // tell buffering proxies to pass events through
			w.WriteHeader(http.StatusOK)
			committed = true
			res.ttft = time.Since(c.start)
		}
		if out.buf.Len() > 0 {
			if err := g.flushEvents(w, rc, out); err != nil {
				res.status, res.usage = statusClientClosed, st.usage()
				return res
			}
		}
		if ended {
			res.status, res.usage = http.StatusOK, st.usage()
			return res
		}
	}
}

func (g *Gateway) flushEvents(w http.ResponseWriter, rc *http.ResponseController, out *sseWriter) error {
	_, err := w.Write(out.buf.Bytes())
	out.buf.Reset()
	if err != nil {
		return err
	}
	return rc.Flush()
}

// streamFailure classifies an error from reading or translating a stream.
func streamFailure(actx context.Context, err error) *upstreamFailure {
	var sf *streamFault
	if errors.As(err, &sf) {
		return &upstreamFailure{class: sf.class, msg: sf.msg}
	}
	if errors.Is(err, errEventTooLarge) {
		return &upstreamFailure{class: classServerError, msg: err.Error()}
	}
	return classifyTransport(actx, err)
}
