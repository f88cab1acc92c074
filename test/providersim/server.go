package providersim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// APIKey, when set, must arrive as x-api-key or "Authorization: Bearer"
	// (Anthropic routes) or "Authorization: Bearer" (OpenAI route); otherwise
	// the answer is 401.
	APIKey string
	// Models, when set, is the allow list; other models get 404. It is also
	// what GET /v1/models lists (a default list when empty).
	Models []string
	// ReplyWords pads the reply text with filler up to this many words.
	ReplyWords int
	// Chunks is how many deltas a streamed reply is split into (default 4).
	Chunks int
	// EventDelay is slept between SSE events, to give streams a duration.
	EventDelay time.Duration
	// OpenAICacheMinTokens is the shortest prefix the OpenAI route reports as
	// cached (default 1024, as on the real API).
	OpenAICacheMinTokens int
	// NoRecord keeps no copy of the requests (Requests and LastRequest
	// return nothing), for load runs that would otherwise grow without bound.
	NoRecord bool
	// TextOnlyModels refuse a request that holds pictures (400), as a
	// model without vision does.
	TextOnlyModels []string
}

// DefaultModels is what GET /v1/models lists when Options.Models is empty.
var DefaultModels = []string{"claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "gpt-4o-mini"}

// maxBody bounds what one request may send; the real APIs cap near 32 MB.
const maxBody = 32 << 20

// Recorded is one request as the simulator received it.
type Recorded struct {
	Method string      `json:"method"`
	Path   string      `json:"path"`
	Query  string      `json:"query,omitempty"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"-"`
	Time   time.Time   `json:"time"`
}

type recordedJSON struct {
	recordedAlias
	Body string `json:"body"`
}

type recordedAlias Recorded

// MarshalJSON writes the body as a string: request bodies are JSON text, and
// base64 would hide them from people reading /_sim/requests.
func (r Recorded) MarshalJSON() ([]byte, error) {
	return json.Marshal(recordedJSON{recordedAlias(r), string(r.Body)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Recorded) UnmarshalJSON(b []byte) error {
	var rj recordedJSON
	if err := json.Unmarshal(b, &rj); err != nil {
		return err
	}
	*r = Recorded(rj.recordedAlias)
	r.Body = []byte(rj.Body)
	return nil
}

// JSON decodes the recorded body into v.
func (r Recorded) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Server simulates both providers. It is an http.Handler; use NewHTTPTest or
// Start for tests and cmd/providersim for a process.
type Server struct {
	opts Options
	mux  *http.ServeMux

	mu         sync.Mutex
	recorded   []Recorded
	queue      []Fault
	markerHits map[string]int
	anthCache  map[[32]byte]bool
	oaiCache   map[[32]byte]bool
	images     map[string][]byte // pictures served by URL, see images.go
	imageOrder []string

	served atomic.Int64
	seq    atomic.Int64

	closed    chan struct{}
	closeOnce sync.Once
}

// New returns a simulator configured by opts.
func New(opts Options) *Server {
	if opts.Chunks <= 0 {
		opts.Chunks = 4
	}
	if opts.OpenAICacheMinTokens <= 0 {
		opts.OpenAICacheMinTokens = 1024
	}
	s := &Server{opts: opts, closed: make(chan struct{})}
	s.resetState()

	m := http.NewServeMux()
	m.HandleFunc("POST /v1/messages", s.api(s.handleAnthropic))
	m.HandleFunc("POST /v1/messages/count_tokens", s.api(s.handleCountTokens))
	m.HandleFunc("POST /v1/chat/completions", s.api(s.handleOpenAI))
	m.HandleFunc("POST /v1/images/generations", s.api(s.handleImages))
	m.HandleFunc("GET /v1/models", s.api(s.handleModels))
	m.HandleFunc("GET /v1/models/{id}", s.api(s.handleModels))
	m.HandleFunc("/v1/", s.api(s.handleUnknown))
	m.HandleFunc("POST /_sim/faults", s.handleEnqueue)
	m.HandleFunc("GET /_sim/requests", s.handleRequests)
	m.HandleFunc("GET /_sim/stats", s.handleStats)
	m.HandleFunc("GET /_sim/images/{id}", s.handleStoredImage)
	m.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	s.mux = m
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// NewHTTPTest starts the simulator on a loopback httptest.Server. Call
// Server.Close before the httptest server's Close so hung handlers return.
func NewHTTPTest(opts Options) (*Server, *httptest.Server) {
	s := New(opts)
	return s, httptest.NewServer(s)
}

// TB is the part of testing.TB that Start needs.
type TB interface {
	Helper()
	Cleanup(func())
}

// Start runs the simulator on loopback for the duration of a test and
// returns it with its base URL (no trailing slash).
func Start(t TB, opts Options) (*Server, string) {
	t.Helper()
	s, ts := NewHTTPTest(opts)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts.URL
}

// Close releases every delayed, hung or stalled handler. The Server keeps
// answering other requests.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closed) }) }

// Enqueue adds faults for the next completion requests, in order. A fault
// with Times > 1 is queued that many times.
func (s *Server) Enqueue(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range faults {
		for range max(f.Times, 1) {
			c := f
			c.Times = 0
			s.queue = append(s.queue, c)
		}
	}
}

// Requests returns a copy of every API request received since the last Reset.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.recorded))
	for i, r := range s.recorded {
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// LastRequest returns the most recent API request, if any.
func (s *Server) LastRequest() (Recorded, bool) {
	reqs := s.Requests()
	if len(reqs) == 0 {
		return Recorded{}, false
	}
	return reqs[len(reqs)-1], true
}

// Served is the number of API requests answered (any outcome, faults
// included) since the last Reset. It counts a request before its first
// response byte, so a client that got an answer sees it counted.
func (s *Server) Served() int { return int(s.served.Load()) }

// Queued is the number of faults still waiting in the queue.
func (s *Server) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Reset forgets recorded requests, queued faults, marker counts, cache
// state, stored pictures and the Served count.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetState()
	s.served.Store(0)
}

func (s *Server) resetState() {
	s.recorded = nil
	s.queue = nil
	s.markerHits = map[string]int{}
	s.anthCache = map[[32]byte]bool{}
	s.oaiCache = map[[32]byte]bool{}
	s.images = map[string][]byte{}
	s.imageOrder = nil
}

// api wraps an API route: it reads the (bounded) body, records the request
// and counts it.
func (s *Server) api(h func(http.ResponseWriter, *http.Request, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if !s.opts.NoRecord {
			s.mu.Lock()
			s.recorded = append(s.recorded, Recorded{
				Method: r.Method,
				Path:   r.URL.Path,
				Query:  r.URL.RawQuery,
				Header: r.Header.Clone(),
				Body:   body,
				Time:   time.Now(),
			})
			s.mu.Unlock()
		}
		s.served.Add(1)
		if err != nil {
			d := dialectFor(r)
			d.writeError(w, s, apiError{status: http.StatusRequestEntityTooLarge, msg: "request body too large or unreadable"})
			return
		}
		h(w, r, body)
	}
}

// nextFault takes the first queued fault for provider, else the request's
// in-band marker. A bad marker is returned as an error for a 400.
func (s *Server) nextFault(provider, lastUser string) (*Fault, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.queue {
		if f.appliesTo(provider) {
			s.queue = append(s.queue[:i:i], s.queue[i+1:]...)
			return &f, nil
		}
	}
	spec, ok := FindFaultMarker(lastUser)
	if !ok {
		return nil, nil
	}
	f, err := ParseFault(spec)
	if err != nil {
		return nil, fmt.Errorf("providersim: bad [[fault:%s]] marker: %v", spec, err)
	}
	if !f.appliesTo(provider) {
		return nil, nil
	}
	if f.Times > 0 {
		key := provider + "\x00" + spec
		if s.markerHits[key] >= f.Times {
			return nil, nil
		}
		s.markerHits[key]++
	}
	return &f, nil
}

// wait sleeps for d; it reports false when the client went away or the
// server closed first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.closed:
	}
	return false
}

// hang blocks until the client goes away or the server closes.
func (s *Server) hang(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-s.closed:
	}
}

// resetConn drops the TCP connection with an RST, which is what a crashed
// upstream or a middlebox looks like. With started, what was written is sent
// first (Hijack would discard buffered body bytes); without, nothing is,
// since a flush would emit a 200 header.
func resetConn(w http.ResponseWriter, started bool) {
	rc := http.NewResponseController(w)
	if started {
		_ = rc.Flush()
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): make net/http abort the stream instead.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// applyFault handles f up to the point where a normal reply would start. It
// reports whether the response is finished; if not, the caller replies and
// honours f.ResetAfterEvents and f.StallAfterEvents.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, d dialect, f *Fault, stream bool, normalBody func() []byte) bool {
	if f == nil {
		return false
	}
	if !s.wait(r.Context(), f.DelayFirstByte) {
		return true
	}
	switch {
	case f.HangUntilCancel:
		s.hang(r.Context())
		return true
	case f.Disconnect:
		resetConn(w, false)
		return true
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	midStreamError := stream && f.ErrorAfterEvents > 0
	switch {
	case (f.Status != 0 || f.Overloaded || f.ErrorAfterEvents > 0) && !midStreamError:
		status := f.Status
		if status == 0 {
			status = d.overloadedStatus()
		}
		if f.Body != "" {
			writeRaw(w, s, d, status, "application/json", []byte(f.Body))
			return true
		}
		d.writeError(w, s, apiError{status: status})
		return true
	case f.Body != "":
		writeRaw(w, s, d, http.StatusOK, "application/json", []byte(f.Body))
		return true
	case f.Malformed:
		if stream {
			d.writeMalformedStream(s.newSSE(w, r, d, nil))
			return true
		}
		b := normalBody()
		writeRaw(w, s, d, http.StatusOK, "application/json", b[:len(b)/2])
		return true
	case f.ResetAfterEvents > 0 && !stream:
		b := normalBody()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		d.setRequestID(w, s)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b[:len(b)/2])
		resetConn(w, true)
		return true
	}
	return false
}

func writeRaw(w http.ResponseWriter, s *Server, d dialect, status int, ctype string, b []byte) {
	w.Header().Set("Content-Type", ctype)
	d.setRequestID(w, s)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) nextID() int64 { return s.seq.Add(1) }

func (s *Server) modelAllowed(model string) bool {
	if len(s.opts.Models) == 0 {
		return true
	}
	for _, m := range s.opts.Models {
		if m == model {
			return true
		}
	}
	return false
}

func (s *Server) models() []string {
	if len(s.opts.Models) > 0 {
		return s.opts.Models
	}
	return DefaultModels
}

// dialectFor picks the dialect for routes both providers share. Both SDKs
// send Bearer auth, so the Anthropic-only headers decide.
func dialectFor(r *http.Request) dialect {
	if strings.HasPrefix(r.URL.Path, "/v1/messages") || r.Header.Get("x-api-key") != "" || r.Header.Get("anthropic-version") != "" {
		return anthropicDialect{}
	}
	return openaiDialect{}
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request, _ []byte) {
	d := dialectFor(r)
	if !d.authorized(w, r, s) {
		return
	}
	id := r.PathValue("id")
	if id != "" {
		if !s.modelAllowed(id) {
			d.writeError(w, s, d.modelNotFound(id))
			return
		}
		d.setRequestID(w, s)
		writeJSON(w, http.StatusOK, d.modelObject(id))
		return
	}
	d.setRequestID(w, s)
	writeJSON(w, http.StatusOK, d.modelList(s.models()))
}

func (s *Server) handleUnknown(w http.ResponseWriter, r *http.Request, _ []byte) {
	d := dialectFor(r)
	d.writeError(w, s, apiError{status: http.StatusNotFound, msg: fmt.Sprintf("Not found: %s %s", r.Method, r.URL.Path)})
}

func (s *Server) handleEnqueue(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var faults []Fault
	switch t := bytes.TrimSpace(body); {
	case bytes.HasPrefix(t, []byte("[")):
		err = json.Unmarshal(t, &faults)
	case bytes.HasPrefix(t, []byte("{")):
		var f Fault
		err = json.Unmarshal(t, &f)
		faults = []Fault{f}
	default:
		var f Fault
		f, err = ParseFault(string(t))
		faults = []Fault{f}
	}
	if err != nil {
		http.Error(w, "providersim: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.Enqueue(faults...)
	writeJSON(w, http.StatusOK, map[string]int{"queued": s.Queued()})
}

func (s *Server) handleRequests(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Requests())
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int{"served": s.Served(), "queued": s.Queued()})
}
