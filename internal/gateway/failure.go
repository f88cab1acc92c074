package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// failureClass names why a provider failed, as in failover.retryOn.
type failureClass string

const (
	classNone            failureClass = "" // the request's own fault; never retried
	classTimeout         failureClass = gatewayconfig.FailureTimeout
	classServerError     failureClass = gatewayconfig.FailureServerError
	classRateLimited     failureClass = gatewayconfig.FailureRateLimited
	classOverloaded      failureClass = gatewayconfig.FailureOverloaded
	classConnectionError failureClass = gatewayconfig.FailureConnectionError
)

var errFirstByteTimeout = errors.New("no first byte within the provider's firstByte timeout")

// upstreamFailure is why one attempt did not produce a response.
type upstreamFailure struct {
	class  failureClass
	status int // the provider's HTTP status; 0 when it sent none
	// retryAfter is the provider's Retry-After, raw and parsed (0 when absent).
	retryAfterRaw string
	retryAfter    time.Duration
	msg           string // safe to show the caller: no prompt text, no key
	err           error
}

func (f *upstreamFailure) Error() string {
	if f.err != nil {
		return f.msg + ": " + f.err.Error()
	}
	return f.msg
}

// classifyStatus maps a provider's HTTP status to a failure class. Only the
// statuses that say "try elsewhere" have one; any other 4xx (and 501, 505…)
// is an answer about the request and goes back to the caller.
func classifyStatus(status int) failureClass {
	switch status {
	case http.StatusTooManyRequests:
		return classRateLimited
	case 529:
		return classOverloaded
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return classServerError
	}
	return classNone
}

// faultClass classifies a failure found in a stream: an event that does
// not parse is the server's fault, a stream that stops short the
// connection's; an error event is classed by Anthropic's error type.
func faultClass(f *translate.Fault) failureClass {
	switch {
	case f.Kind == translate.FaultTruncated:
		return classConnectionError
	case f.Type == "overloaded_error":
		return classOverloaded
	case f.Type == "rate_limit_error":
		return classRateLimited
	}
	return classServerError
}

// classifyTransport maps an error from sending or reading. attemptCtx is the
// attempt's context, whose cause tells a first-byte timeout from the rest.
func classifyTransport(attemptCtx context.Context, err error) *upstreamFailure {
	if errors.Is(context.Cause(attemptCtx), errFirstByteTimeout) {
		return &upstreamFailure{class: classTimeout, msg: "the provider did not answer within its firstByte timeout", err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &upstreamFailure{class: classTimeout, msg: "timed out connecting to the provider", err: err}
	}
	return &upstreamFailure{class: classConnectionError, msg: "could not reach the provider", err: err}
}

func statusFailure(status int, header http.Header, body []byte) *upstreamFailure {
	msg, _ := translate.UpstreamErrorMessage(body, status)
	f := &upstreamFailure{class: classifyStatus(status), status: status, msg: msg}
	if ra := header.Get("Retry-After"); ra != "" {
		f.retryAfterRaw = ra
		f.retryAfter = parseRetryAfter(ra, time.Now())
	}
	return f
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// clientError converts a failure that ends the request into the caller's
// error. A provider's 4xx about the request keeps its status and message;
// configuration faults (the gateway's key or model id refused) become 502,
// since the caller did nothing wrong and cannot fix them.
func (f *upstreamFailure) clientError(provider string) *translate.Error {
	switch {
	case f.status == http.StatusUnauthorized || f.status == http.StatusForbidden:
		return &translate.Error{Status: http.StatusBadGateway, Msg: fmt.Sprintf("provider %s refused the gateway's API key (%d); an administrator must fix the provider's key Secret", provider, f.status)}
	case f.status == http.StatusNotFound:
		return &translate.Error{Status: http.StatusBadGateway, Msg: fmt.Sprintf("provider %s does not know the configured model id: %s", provider, f.msg)}
	case f.class == classNone && f.status >= 400 && f.status < 500:
		return &translate.Error{Status: f.status, Msg: fmt.Sprintf("provider %s rejected the request: %s", provider, f.msg)}
	}
	e := &translate.Error{RetryAfter: f.retryAfterRaw}
	switch f.class {
	case classRateLimited:
		e.Status, e.Msg = http.StatusTooManyRequests, "every provider for this model is rate limited; retry later"
	case classOverloaded:
		e.Status, e.Msg = 529, "every provider for this model is overloaded; retry later"
	case classTimeout:
		e.Status, e.Msg = http.StatusGatewayTimeout, "no provider answered in time; retry later"
	default:
		e.Status, e.Msg = http.StatusBadGateway, "no provider could serve the request; retry later"
	}
	e.Msg += fmt.Sprintf(" (last: provider %s: %s)", provider, f.msg)
	return e
}
