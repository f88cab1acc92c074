package upstream

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

// Class names why a provider failed, as in failover.retryOn.
type Class string

// The classes.
const (
	ClassNone            Class = "" // the request's own fault; never retried
	ClassTimeout         Class = gatewayconfig.FailureTimeout
	ClassServerError     Class = gatewayconfig.FailureServerError
	ClassRateLimited     Class = gatewayconfig.FailureRateLimited
	ClassOverloaded      Class = gatewayconfig.FailureOverloaded
	ClassConnectionError Class = gatewayconfig.FailureConnectionError
)

var errFirstByteTimeout = errors.New("no first byte within the provider's firstByte timeout")

// Failure is why one attempt did not produce a response.
type Failure struct {
	Class  Class
	Status int // the provider's HTTP status; 0 when it sent none
	// RetryAfter is the provider's Retry-After, raw and parsed (0 when absent).
	RetryAfterRaw string
	RetryAfter    time.Duration
	Msg           string // safe to show the caller: no prompt text, no key
	Err           error
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return f.Msg + ": " + f.Err.Error()
	}
	return f.Msg
}

// ClassifyStatus maps a provider's HTTP status to a failure class. Only the
// statuses that say "try elsewhere" have one; any other 4xx (and 501, 505…)
// is an answer about the request and goes back to the caller.
func ClassifyStatus(status int) Class {
	switch status {
	case http.StatusTooManyRequests:
		return ClassRateLimited
	case 529:
		return ClassOverloaded
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return ClassServerError
	}
	return ClassNone
}

// faultClass classifies a failure found in a stream: an event that does
// not parse is the server's fault, a stream that stops short the
// connection's; an error event is classed by Anthropic's error type.
func faultClass(f *translate.Fault) Class {
	switch {
	case f.Kind == translate.FaultTruncated:
		return ClassConnectionError
	case f.Type == "overloaded_error":
		return ClassOverloaded
	case f.Type == "rate_limit_error":
		return ClassRateLimited
	}
	return ClassServerError
}

// classifyTransport maps an error from sending or reading. attemptCtx is the
// attempt's context, whose cause tells a first-byte timeout from the rest.
func classifyTransport(attemptCtx context.Context, err error) *Failure {
	if errors.Is(context.Cause(attemptCtx), errFirstByteTimeout) {
		return &Failure{Class: ClassTimeout, Msg: "the provider did not answer within its firstByte timeout", Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Failure{Class: ClassTimeout, Msg: "timed out connecting to the provider", Err: err}
	}
	return &Failure{Class: ClassConnectionError, Msg: "could not reach the provider", Err: err}
}

func statusFailure(status int, header http.Header, body []byte) *Failure {
	msg, _ := translate.UpstreamErrorMessage(body, status)
	f := &Failure{Class: ClassifyStatus(status), Status: status, Msg: msg}
	if ra := header.Get("Retry-After"); ra != "" {
		f.RetryAfterRaw = ra
		f.RetryAfter = parseRetryAfter(ra, time.Now())
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

// ClientError converts a failure that ends the request into the caller's
// error. A provider's 4xx about the request keeps its status and message;
// configuration faults (the gateway's key or model id refused) become 502,
// since the caller did nothing wrong and cannot fix them.
func (f *Failure) ClientError(provider string) *translate.Error {
	switch {
	case f.Status == http.StatusUnauthorized || f.Status == http.StatusForbidden:
		return &translate.Error{Status: http.StatusBadGateway, Msg: fmt.Sprintf("provider %s refused the gateway's API key (%d); an administrator must fix the provider's key Secret", provider, f.Status)}
	case f.Status == http.StatusNotFound:
		return &translate.Error{Status: http.StatusBadGateway, Msg: fmt.Sprintf("provider %s does not know the configured model id: %s", provider, f.Msg)}
	case f.Class == ClassNone && f.Status >= 400 && f.Status < 500:
		return &translate.Error{Status: f.Status, Msg: fmt.Sprintf("provider %s rejected the request: %s", provider, f.Msg)}
	}
	e := &translate.Error{RetryAfter: f.RetryAfterRaw}
	switch f.Class {
	case ClassRateLimited:
		e.Status, e.Msg = http.StatusTooManyRequests, "every provider for this model is rate limited; retry later"
	case ClassOverloaded:
		e.Status, e.Msg = 529, "every provider for this model is overloaded; retry later"
	case ClassTimeout:
		e.Status, e.Msg = http.StatusGatewayTimeout, "no provider answered in time; retry later"
	default:
		e.Status, e.Msg = http.StatusBadGateway, "no provider could serve the request; retry later"
	}
	e.Msg += fmt.Sprintf(" (last: provider %s: %s)", provider, f.Msg)
	return e
}
