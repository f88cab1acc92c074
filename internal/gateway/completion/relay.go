package completion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/metering"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/upstream"
)

// maxResponseSize bounds a non-streaming provider response.
const maxResponseSize = 64 << 20

var (
	writerPool = sync.Pool{New: func() any { return translate.NewWriter() }}
	readerPool = sync.Pool{New: func() any { return translate.NewReader(nil) }}
)

// Try implements upstream.Attempts: it sends the request to one provider.
// Nothing reaches the caller until the provider's answer is known to be
// good: the whole body for a non-streaming request, the first event for a
// stream. Until then a failure leaves the caller untouched, so the plan can
// fail over.
func (x *exchange) Try(ctx context.Context, rt *upstream.Route) upstream.Attempt {
	tr := x.in.Translator(rt.Provider.Dialect())
	t := x.target
	t.ModelID, t.MaxTokens = rt.ModelID, rt.MaxTokens
	body := upstream.NewBody()
	defer body.Release()
	if aerr := tr.Request(x.in, t, body.Buffer()); aerr != nil {
		return upstream.Attempt{Unsupported: aerr}
	}
	call, f := rt.Send(ctx, body, x.in.Stream())
	if f != nil {
		return upstream.Attempt{Failure: f}
	}
	defer call.Close()
	if x.in.Stream() {
		return x.relay(&call, rt, tr.Stream(x.in))
	}

	// A whole response follows its headers; the overall deadline bounds it.
	call.FirstByte()
	up := upstream.GetBuffer()
	defer upstream.PutBuffer(up)
	if _, err := up.ReadFrom(io.LimitReader(call.Resp.Body, maxResponseSize)); err != nil {
		return upstream.Attempt{Failure: call.Failure(err)}
	}
	out := upstream.GetBuffer()
	defer upstream.PutBuffer(out)
	usage, err := tr.Response(up.Bytes(), out)
	if err != nil {
		return upstream.Attempt{Failure: &upstream.Failure{Class: upstream.ClassServerError, Msg: "the provider's response could not be read", Err: err}}
	}
	if err := x.begin(rt, usage); err != nil {
		return x.observerFailed(rt, usage, err)
	}
	// The reply is metered before its body is written: a body larger than
	// the server's buffer reaches the caller during Write. A caller who
	// left already is billed all the same.
	status := http.StatusOK
	if x.ctx.Err() != nil {
		status = StatusClientClosed
	}
	x.answered(rt, status, usage)
	x.meter(x.ctx)
	w := x.req.Client
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(out.Len()))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(out.Bytes()); err != nil {
		return upstream.Attempt{}
	}
	return upstream.Attempt{OK: true}
}

// relay reads the provider's events and translates each: an HTTP front's
// caller gets the translated events with a flush per read of the
// provider's stream (the events that arrived together, most often one); a
// Conversation's Observer gets the text. The first event decides: an error
// or garbage before it is a failure the plan may fail over from; after it
// the caller owns the answer, and a failure ends it (an HTTP stream with
// an error event in the caller's dialect), billing the usage seen so far.
//
// A caller who goes away does not end the call: the provider bills the
// answer all the same, and OpenAI-compatible streams report usage only in
// their last chunk. The rest of the stream is read, bounded by the
// request's deadline, and dropped, so the request is billed what the
// provider reported; the caller's connection is not written to again.
func (x *exchange) relay(call *upstream.Call, rt *upstream.Route, st translate.Stream) upstream.Attempt {
	rd := readerPool.Get().(*translate.Reader)
	rd.Reset(call.Resp.Body)
	defer func() {
		rd.Reset(nil) // drop the response body
		readerPool.Put(rd)
	}()
	out := writerPool.Get().(*translate.Writer)
	out.Reset()
	defer writerPool.Put(out)
	w := x.req.Client
	var rc *http.ResponseController
	if w != nil {
		rc = http.NewResponseController(w)
	}
	// A caller who leaves while the provider is silent (a stall) is seen
	// at once, not at the provider's next event.
	stop := context.AfterFunc(x.ctx, x.callerLeft)
	defer func() {
		// stop is false once the AfterFunc has started: wait for its Left
		// (a Once's Do returns when the running call has) so that Left,
		// when it comes, comes before End.
		if !stop() {
			x.callerLeft()
		}
	}()
	var (
		ev        translate.Event
		committed bool
		gone      bool // the caller left: read on for the usage only
		// missed: the caller left with part of the answer unsent. A caller
		// that closes as soon as the terminal event arrives had it all.
		missed   bool
		reported metering.Usage
		// unflushed: events written to the caller and not yet flushed.
		unflushed bool
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
			// to reuse the connection) failed.
			ended, err = true, nil
		}
		// The caller is gone when there is something left to tell them
		// and they are not there: one who hung up after the last event
		// they needed (an SDK closes on [DONE], before the provider's
		// EOF reaches the gateway) had the whole answer.
		if !gone && (out.Len() > 0 || len(out.Texts()) > 0) && x.ctx.Err() != nil {
			gone = true
			x.callerLeft()
		}
		if err != nil {
			if !gone && x.ctx.Err() != nil {
				gone = true // whoever failed, nobody is left to tell
			}
			f := call.Failure(err)
			if !committed && !gone {
				return upstream.Attempt{Failure: f}
			}
			if gone {
				// Nobody is left to tell; what the provider reported so
				// far is billed, and estimated where it reported nothing.
				x.answered(rt, StatusClientClosed, st.Usage())
				x.cut = true
				return upstream.Attempt{}
			}
			e := &translate.Error{Status: http.StatusBadGateway, Msg: "the provider failed mid-stream: " + f.Msg}
			a := upstream.Attempt{Broken: f}
			if call.TimedOut() {
				e = &translate.Error{Status: http.StatusGatewayTimeout, Msg: "the request took longer than this gateway's limit"}
				a.Broken = nil
			}
			x.answered(rt, e.Status, st.Usage())
			if !x.metered {
				x.cut, x.err = true, e
			}
			if w != nil {
				translate.WriteStreamError(out, x.req.Front, e)
				_ = flush(w, rc, out)
			}
			return a
		}
		if !committed && (out.Begun() || ended) {
			u := st.Usage()
			if err := x.begin(rt, u); err != nil {
				return x.observerFailed(rt, u, err)
			}
			if w != nil && !gone {
				h := w.Header()
				h.Set("Content-Type", "text/event-stream; charset=utf-8")
				h.Set("Cache-Control", "no-cache")
				h.Set("X-Accel-Buffering", "no") // tell buffering proxies to pass events through
				w.WriteHeader(http.StatusOK)
			}
			committed = true
			x.out.TTFT = time.Since(x.req.Start)
		}
		if out.Len() > 0 {
			x.events++
			switch {
			case gone:
				missed = true
			case w != nil:
				if st.Finished() {
					// out ends with the caller's terminal event: the
					// request is metered before it goes, so a read of
					// spend made as soon as the caller has it counts it.
					// The provider's usage came before its own end.
					x.answered(rt, http.StatusOK, st.Usage())
					x.meter(x.ctx)
				}
				if _, err := w.Write(out.Bytes()); err != nil {
					gone, missed = true, true
					x.callerLeft()
				} else {
					unflushed = true
				}
			}
		}
		// One flush per read of the provider's stream: events that came
		// together (a slow reader, or a provider that sends several at
		// once) go out in one write, and none waits for a read; the
		// terminal event goes at once.
		if unflushed && !gone && (!rd.Buffered() || st.Finished()) {
			unflushed = false
			if err := rc.Flush(); err != nil {
				gone, missed = true, true
				x.callerLeft()
			}
		}
		if texts := out.Texts(); len(texts) > 0 {
			if gone {
				missed = true
			} else {
				for _, t := range texts {
					x.obs.Text(t)
					x.text += len(t)
				}
				x.sinceBill += len(texts)
			}
		}
		out.Reset()
		if u := st.Usage(); u != reported {
			reported = u
			if !gone {
				x.obs.Usage(u)
			}
		}
		if ended {
			status := http.StatusOK
			if missed {
				status = StatusClientClosed
			}
			x.answered(rt, status, st.Usage())
			return upstream.Attempt{OK: true}
		}
		x.checkpoint(rt, reported)
	}
}

// callerLeft tells a Leaver, once, that the caller went away.
func (x *exchange) callerLeft() {
	x.leftOnce.Do(func() {
		if l, ok := x.obs.(Leaver); ok {
			l.Left()
		}
	})
}

func flush(w http.ResponseWriter, rc *http.ResponseController, out *translate.Writer) error {
	_, err := w.Write(out.Bytes())
	out.Reset()
	if err != nil {
		return err
	}
	return rc.Flush()
}

// begin writes the provisional ledger row of a request billed while
// streaming and hands the answer to the Observer: nothing reaches the
// caller before the ledger has it. The provider has answered, so it bills
// even when the Observer then fails.
func (x *exchange) begin(rt *upstream.Route, u metering.Usage) error {
	if x.req.BillWhileStreaming {
		x.bill(rt, u)
	}
	return x.obs.Begin(rt, u)
}

// observerFailed ends a request whose Observer could not take a good
// answer (its store failed): a failure of the gateway (500), not of the
// provider nor of a caller who went away.
func (x *exchange) observerFailed(rt *upstream.Route, u metering.Usage, err error) upstream.Attempt {
	x.answered(rt, http.StatusInternalServerError, u)
	x.err = fmt.Errorf("the answer could not be kept: %w", err)
	return upstream.Attempt{}
}

// answered records the route that answered and how it ended, unless the
// request was metered already: a failure after the caller had the whole
// answer (the provider's garbage after its terminal event, or the caller
// hanging up as it was written) does not change what it was billed.
func (x *exchange) answered(rt *upstream.Route, status int, u metering.Usage) {
	if x.metered {
		return
	}
	x.served = rt
	x.out.Model, x.out.Provider, x.out.Status, x.out.Usage = rt.Alias, rt.Provider.Name(), status, u
}
