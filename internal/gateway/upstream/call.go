package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
)

// Call is one attempt's exchange with a provider that answered 2xx: the
// response, under a context that the route's firstByte timeout cancels
// until the caller reports the first byte.
type Call struct {
	Resp   *http.Response
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	// begun: FirstByte has stopped the timer (a stream reports every
	// event; the timer is stopped at the first).
	begun bool
}

// maxErrorBody bounds the part of a provider's error response read for its message.
const maxErrorBody = 64 << 10

// Send posts body to rt's provider. One timer covers the response headers
// and, for streams, the first event (see FirstByte): a provider that sends
// headers and then stalls is as dead as one that sends nothing. A status
// other than 2xx is a Failure, classified, with the provider's message.
func (rt *Route) Send(ctx context.Context, body *Body, stream bool) (Call, *Failure) {
	return rt.send(ctx, func(ctx context.Context) (*http.Response, error) { return rt.Provider.Send(ctx, body, stream) })
}

// SendImages posts an images request to rt's provider, which must be an
// ImageSender, as Send does.
func (rt *Route) SendImages(ctx context.Context, body *Body) (Call, *Failure) {
	is := rt.Provider.(ImageSender)
	return rt.send(ctx, func(ctx context.Context) (*http.Response, error) { return is.SendImages(ctx, body) })
}

func (rt *Route) send(ctx context.Context, do func(context.Context) (*http.Response, error)) (Call, *Failure) {
	actx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(rt.FirstByte, func() { cancel(errFirstByteTimeout) })
	resp, err := do(actx)
	if err != nil {
		f := classifyTransport(actx, err)
		timer.Stop()
		cancel(nil)
		return Call{}, f
	}
	if resp.StatusCode/100 != 2 {
		eb := GetBuffer()
		_, _ = eb.ReadFrom(io.LimitReader(resp.Body, maxErrorBody))
		f := statusFailure(resp.StatusCode, resp.Header, eb.Bytes())
		PutBuffer(eb)
		resp.Body.Close()
		timer.Stop()
		cancel(nil)
		return Call{}, f
	}
	return Call{Resp: resp, ctx: actx, cancel: cancel, timer: timer}, nil
}

// FirstByte stops the firstByte timer: the answer has begun. Reading a
// whole (non-streamed) response is bounded by the request's deadline only.
func (c *Call) FirstByte() {
	if !c.begun {
		c.begun = true
		c.timer.Stop()
	}
}

// TimedOut reports whether the request's overall deadline ended the call.
func (c *Call) TimedOut() bool { return errors.Is(c.ctx.Err(), context.DeadlineExceeded) }

// Failure classifies an error from reading or translating the response.
func (c *Call) Failure(err error) *Failure {
	var sf *translate.Fault
	if errors.As(err, &sf) {
		return &Failure{Class: faultClass(sf), Msg: sf.Msg}
	}
	if errors.Is(err, translate.ErrEventTooLarge) {
		return &Failure{Class: ClassServerError, Msg: err.Error()}
	}
	return classifyTransport(c.ctx, err)
}

// Close ends the call: the response body, the timer and the context.
func (c *Call) Close() {
	c.Resp.Body.Close()
	c.timer.Stop()
	c.cancel(nil)
}
