package providersim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Provider names used by Fault.Provider and the provider= marker item.
const (
	ProviderAnthropic = "anthropic"
	ProviderOpenAI    = "openai"
)

// Fault describes how to misbehave on one request. Fields combine: a delay
// comes first, then a hang or disconnect, then an error status, a raw body,
// a malformed body, or a normal reply cut by ResetAfterEvents or
// StallAfterEvents.
type Fault struct {
	// Status is an HTTP error status (400-599) answered with an error body
	// in the route's dialect.
	Status int `json:"status,omitempty"`
	// RetryAfter is sent verbatim as the Retry-After header.
	RetryAfter string `json:"retry_after,omitempty"`
	// Body replaces the response body (with Status, or with 200 when Status is 0).
	Body string `json:"body,omitempty"`
	// Overloaded answers 529 overloaded_error (Anthropic) or 503 server_error (OpenAI).
	Overloaded bool `json:"overloaded,omitempty"`
	// DelayFirstByte waits before anything is written.
	DelayFirstByte time.Duration `json:"-"`
	// ResetAfterEvents sends that many SSE events and then resets the
	// connection; on a non-streaming request it resets halfway through the body.
	ResetAfterEvents int `json:"reset_after_events,omitempty"`
	// StallAfterEvents sends that many SSE events and then waits for the client to go away.
	StallAfterEvents int `json:"stall_after_events,omitempty"`
	// ErrorAfterEvents sends that many SSE events, then an in-stream error
	// (typed by Status, default overloaded) and ends the stream. A
	// non-streaming request gets the error status instead.
	ErrorAfterEvents int `json:"error_after_events,omitempty"`
	// Disconnect resets the connection before any response byte.
	Disconnect bool `json:"disconnect,omitempty"`
	// Malformed answers 200 with broken JSON (or a broken SSE data line).
	Malformed bool `json:"malformed,omitempty"`
	// HangUntilCancel never answers.
	HangUntilCancel bool `json:"hang_until_cancel,omitempty"`
	// Provider limits the fault to one route: ProviderAnthropic or ProviderOpenAI.
	Provider string `json:"provider,omitempty"`
	// Times is how many requests the fault affects: for Enqueue and
	// /_sim/faults the number of copies queued, for a marker the number of
	// requests that trigger it. 0 means once when queued and always in-band.
	Times int `json:"times,omitempty"`
}

// faultJSON is Fault on the wire; the delay is a Go duration string ("200ms")
// or a number of milliseconds, friendlier than nanoseconds for curl users.
type faultJSON struct {
	faultAlias
	DelayFirstByte json.RawMessage `json:"delay_first_byte,omitempty"`
}

type faultAlias Fault

// MarshalJSON encodes DelayFirstByte as a duration string.
func (f Fault) MarshalJSON() ([]byte, error) {
	fj := faultJSON{faultAlias: faultAlias(f)}
	if f.DelayFirstByte > 0 {
		fj.DelayFirstByte, _ = json.Marshal(f.DelayFirstByte.String())
	}
	return json.Marshal(fj)
}

// UnmarshalJSON accepts delay_first_byte as "200ms" or a number of milliseconds.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var fj faultJSON
	if err := json.Unmarshal(b, &fj); err != nil {
		return err
	}
	*f = Fault(fj.faultAlias)
	if len(fj.DelayFirstByte) > 0 && string(fj.DelayFirstByte) != "null" {
		var s string
		if err := json.Unmarshal(fj.DelayFirstByte, &s); err == nil {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("delay_first_byte: %w", err)
			}
			f.DelayFirstByte = d
		} else {
			var ms float64
			if err := json.Unmarshal(fj.DelayFirstByte, &ms); err != nil {
				return fmt.Errorf("delay_first_byte: want a duration string or milliseconds")
			}
			f.DelayFirstByte = time.Duration(ms * float64(time.Millisecond))
		}
	}
	return f.validate()
}

func (f Fault) validate() error {
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("status %d: want 400-599", f.Status)
	}
	if f.Provider != "" && f.Provider != ProviderAnthropic && f.Provider != ProviderOpenAI {
		return fmt.Errorf("provider %q: want %q or %q", f.Provider, ProviderAnthropic, ProviderOpenAI)
	}
	if f.DelayFirstByte < 0 || f.ResetAfterEvents < 0 || f.StallAfterEvents < 0 || f.ErrorAfterEvents < 0 || f.Times < 0 {
		return fmt.Errorf("negative value in fault")
	}
	return nil
}

// appliesTo reports whether the fault may fire on the given provider's route.
func (f Fault) appliesTo(provider string) bool {
	return f.Provider == "" || f.Provider == provider
}

var (
	faultMarkerRE = regexp.MustCompile(`\[\[fault:([^\]]*)\]\]`)
	toolMarkerRE  = regexp.MustCompile(`\[\[tool(?::([^\]]*))?\]\]`)
)

// FindFaultMarker returns the SPEC of the first [[fault:SPEC]] in text.
func FindFaultMarker(text string) (spec string, ok bool) {
	m := faultMarkerRE.FindStringSubmatch(text)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// ParseFault parses a fault SPEC, the part of a [[fault:SPEC]] marker after
// the colon, e.g. "status=429,retry-after=2". See the package doc for items.
func ParseFault(spec string) (Fault, error) {
	var f Fault
	if strings.TrimSpace(spec) == "" {
		return f, fmt.Errorf("empty fault spec")
	}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, val, hasVal := strings.Cut(item, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		if !hasVal {
			switch key {
			case "overloaded":
				f.Overloaded = true
			case "hang":
				f.HangUntilCancel = true
			case "disconnect":
				f.Disconnect = true
			case "malformed":
				f.Malformed = true
			default:
				n, err := strconv.Atoi(key)
				if err != nil {
					return Fault{}, fmt.Errorf("unknown fault item %q", item)
				}
				f.Status = n
			}
			continue
		}
		var err error
		switch key {
		case "status":
			f.Status, err = strconv.Atoi(val)
		case "retry-after", "retry_after":
			if val == "" {
				err = fmt.Errorf("empty value")
			}
			f.RetryAfter = val
		case "delay":
			f.DelayFirstByte, err = time.ParseDuration(val)
		case "reset":
			f.ResetAfterEvents, err = positive(val)
		case "stall":
			f.StallAfterEvents, err = positive(val)
		case "error-after", "error_after":
			f.ErrorAfterEvents, err = positive(val)
		case "times":
			f.Times, err = positive(val)
		case "provider":
			f.Provider = strings.ToLower(val)
		case "id":
		default:
			return Fault{}, fmt.Errorf("unknown fault item %q", item)
		}
		if err != nil {
			return Fault{}, fmt.Errorf("fault item %q: %w", item, err)
		}
	}
	if f.RetryAfter != "" && f.Status == 0 && !f.Overloaded {
		f.Status = 429
	}
	if err := f.validate(); err != nil {
		return Fault{}, err
	}
	return f, nil
}

func positive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, fmt.Errorf("want a number >= 1")
	}
	return n, nil
}
