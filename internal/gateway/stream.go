package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
)

var sseWriterPool = sync.Pool{New: func() any { return translate.NewWriter() }}

// relayStream reads the provider's events, translates and forwards each one
// with a flush. The first event decides: an error or garbage before it is a
// failure the caller may fail over from; after it the client owns a 200
// stream, and a failure ends that stream with an error event in the
// client's dialect, billing the usage seen so far.
func (g *Gateway) relayStream(clientCtx context.Context, call *upstream.Call, w http.ResponseWriter, c *call, st translate.Stream) (upstream.Attempt, attemptResult) {
	rd := translate.NewReader(call.Resp.Body)
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
			call.FirstByte()
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
			f := call.Failure(err)
			if !committed {
				return upstream.Attempt{Failure: f}, res
			}
			res.usage = st.Usage()
			if clientCtx.Err() != nil {
				// The client went away: nobody is left to tell.
				res.status = statusClientClosed
				return upstream.Attempt{}, res
			}
			e := &translate.Error{Status: http.StatusBadGateway, Msg: "the provider failed mid-stream: " + f.Msg}
			res.status = http.StatusBadGateway
			a := upstream.Attempt{Broken: f}
			if call.TimedOut() {
				e = &translate.Error{Status: http.StatusGatewayTimeout, Msg: "the request took longer than this gateway's limit"}
				res.status, a.Broken = http.StatusGatewayTimeout, nil
			}
			translate.WriteStreamError(out, c.front, e)
			_ = g.flushEvents(w, rc, out)
			return a, res
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
				return upstream.Attempt{}, res
			}
		}
		if ended {
			res.status, res.usage = http.StatusOK, st.Usage()
			return upstream.Attempt{OK: true}, res
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
