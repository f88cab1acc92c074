package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gateway"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/internal/store/pgtest"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// One PostgreSQL server for the package's tests (started on first use).
func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }

// storeKinds are the stores the stateful tests run against.
var storeKinds = []string{gatewayconfig.StoreEmbedded, gatewayconfig.StorePostgres}

// forEachStore runs fn as a subtest per store kind.
func forEachStore(t *testing.T, fn func(t *testing.T, kind string)) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			fn(t, kind)
		})
	}
}

// storeEnv is a gateway with a store, in front of the two simulators.
type storeEnv struct {
	*env
	st    store.Store
	clock *clock
}

var masterKey = strings.Repeat("k", 32)

// newStoreEnv is newEnv with a store of kind; the store and the gateway
// share a clock starting now.
func newStoreEnv(t testing.TB, kind string, sim providersim.Options, log *slog.Logger, opts ...envOption) *storeEnv {
	t.Helper()
	return newStoreEnvWrapped(t, kind, sim, log, nil, opts...)
}

// newStoreEnvWrapped is newStoreEnv with the gateway's store wrapped, to
// make it fail where a test needs it to (nil: as it is).
func newStoreEnvWrapped(t testing.TB, kind string, sim providersim.Options, log *slog.Logger, wrap func(store.Store) store.Store, opts ...envOption) *storeEnv {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), clock: &clock{t: time.Now().UTC()}}
	sim.APIKey = anthKey
	e.anth, e.anthURL = providersim.Start(t, sim)
	sim.APIKey = oaiKey
	e.oai, e.oaiURL = providersim.Start(t, sim)
	e.cfg = baseConfig(e.dir, e.anthURL, e.oaiURL)
	if kind == gatewayconfig.StorePostgres {
		dsnFile := filepath.Join(e.dir, "store", "dsn")
		writeFile(t, dsnFile, pgtest.NewDatabase(t))
		e.cfg.Sessions.Store = gatewayconfig.Store{Type: gatewayconfig.StorePostgres, DSNFile: dsnFile}
	}
	for _, o := range opts {
		o(e.cfg)
	}
	writeFile(t, filepath.Join(e.dir, "keys", "anthropic"), anthKey+"\n")
	writeFile(t, filepath.Join(e.dir, "keys", "openai"), oaiKey)
	writeFile(t, filepath.Join(e.dir, "keys", "master"), masterKey)
	writeFile(t, filepath.Join(e.dir, "token", "token"), currentToken+"\n")
	e.writeConfig(e.cfg)

	st, err := store.Open(context.Background(), e.cfg.Sessions.Store, []byte(masterKey), store.WithClock(e.clock.Now))
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if log == nil {
		log = testLogger(t)
	}
	gst := st
	if wrap != nil {
		gst = wrap(st)
	}
	// An hour's linger: only a Flush commits the ledger, so a read of
	// spend that does not commit the queue first shows nothing.
	gw, err := gateway.New(gateway.Options{ConfigPath: e.configPath(), Now: e.clock.Now, Logger: log, Store: gst, LedgerLinger: time.Hour})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	e.gw = gw
	e.url, e.metricsURL = serve(t, gw)
	return &storeEnv{env: e, st: st, clock: e.clock}
}

// api sends an /api request as who ("" sends no identity at all).
func (e *storeEnv) api(method, path, who string, body any) (int, string) {
	e.t.Helper()
	var b string
	switch v := body.(type) {
	case nil:
	case string:
		b = v
	default:
		j, err := json.Marshal(v)
		if err != nil {
			e.t.Fatal(err)
		}
		b = string(j)
	}
	h := http.Header{}
	if who != "" {
		h = authHeader(who)
	}
	resp, out := e.do(method, path, h, b)
	return resp.StatusCode, out
}

// apiJSON sends a request, demands want, and decodes the answer into v.
func (e *storeEnv) apiJSON(method, path, who string, body any, want int, v any) {
	e.t.Helper()
	code, out := e.api(method, path, who, body)
	if code != want {
		e.t.Fatalf("%s %s as %s: status %d, want %d: %s", method, path, who, code, want, out)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			e.t.Fatalf("%s %s: decoding %q: %v", method, path, out, err)
		}
	}
}

type sseEv struct {
	Name string
	Data string
}

// turn sends a streamed message and returns its events and HTTP status.
func (e *storeEnv) turn(path, who, content string) (int, http.Header, []sseEv) {
	e.t.Helper()
	return e.turnWith(path, who, map[string]string{"content": content})
}

func readSSE(t testing.TB, r io.Reader) []sseEv {
	t.Helper()
	var evs []sseEv
	var cur sseEv
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Name != "" || cur.Data != "" {
				evs = append(evs, cur)
			}
			cur = sseEv{}
		case strings.HasPrefix(line, "event: "):
			cur.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.Data += strings.TrimPrefix(line, "data: ")
		}
	}
	return evs
}

// turnDone is the done event as a client reads it.
type turnDone struct {
	SessionID       string `json:"sessionId"`
	NewSession      bool   `json:"newSession"`
	UserMessageID   string `json:"userMessageId"`
	MessageID       string `json:"messageId"`
	Status          string `json:"status"`
	Model           string `json:"model"`
	Provider        string `json:"provider"`
	DroppedMessages int    `json:"droppedMessages"`
	Usage           struct {
		InputTokens  int64 `json:"inputTokens"`
		OutputTokens int64 `json:"outputTokens"`
	} `json:"usage"`
	CostUSD string  `json:"costUSD"`
	Content *string `json:"content"`
	Error   *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// done checks the event sequence (session, delta…, [error], done) and
// returns the done event and the streamed text.
func done(t testing.TB, evs []sseEv) (turnDone, string) {
	t.Helper()
	if len(evs) < 2 || evs[0].Name != "session" || evs[len(evs)-1].Name != "done" {
		t.Fatalf("events: want session … done, got %+v", evs)
	}
	var text strings.Builder
	for _, ev := range evs[1 : len(evs)-1] {
		switch ev.Name {
		case "delta":
			var d struct{ Text string }
			if err := json.Unmarshal([]byte(ev.Data), &d); err != nil {
				t.Fatal(err)
			}
			text.WriteString(d.Text)
		case "error":
		default:
			t.Fatalf("unexpected event %q", ev.Name)
		}
	}
	var d turnDone
	if err := json.Unmarshal([]byte(evs[len(evs)-1].Data), &d); err != nil {
		t.Fatal(err)
	}
	return d, text.String()
}

type sessionWithMessages struct {
	store.Session
	Messages []store.Message `json:"messages"`
}

// quietLogger drops logs, for tests that send hundreds of requests.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
