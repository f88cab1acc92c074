package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// TestSpendReadsCommitTheQueuedLedger: the ledger writer lingers to gather
// batches (an hour in these tests' gateways), so every read of spend must
// commit what is queued first. Right after bob's requests end — a chat
// turn, a streamed and a plain API call — and with nothing flushed by the
// test, his usage page counts all three with their cost, its quota shows
// that cost as spent and nothing held, the admin's usage page shows the
// same, and the used-ratio gauge is that spend over his soft limit.
func TestSpendReadsCommitTheQueuedLedger(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newStoreEnv(t, kind, providersim.Options{}, nil, withQuota("1", "5"))
		if code, _, evs := e.turn("/api/chat", bob, "What does a ledger writer linger for?"); code != http.StatusOK {
			t.Fatalf("chat turn: %d %+v", code, evs)
		}
		for _, stream := range []bool{true, false} {
			if resp, b := send(t, e.url, "/v1/chat/completions", bob, chatBody("gpt", "one two three", 20, stream)); resp.StatusCode != http.StatusOK {
				t.Fatalf("stream %t: %d %s", stream, resp.StatusCode, b)
			}
		}
		var mine struct {
			Days []struct {
				Requests int64
				CostUSD  string
			}
			TotalUSD string
			Quota    struct{ SpentUSD, ReservedUSD string }
		}
		e.apiJSON("GET", "/api/me/usage", bob, nil, http.StatusOK, &mine)
		var requests int64
		for _, d := range mine.Days {
			requests += d.Requests
		}
		total := picodollars(t, mine.TotalUSD)
		if requests != 3 || total <= 0 {
			t.Fatalf("bob's usage page right after his requests: %d requests, %s; want 3 with their cost", requests, mine.TotalUSD)
		}
		if mine.Quota.SpentUSD != mine.TotalUSD || picodollars(t, mine.Quota.ReservedUSD) != 0 {
			t.Fatalf("bob's quota right after his requests: %+v; want %s spent and nothing held", mine.Quota, mine.TotalUSD)
		}

		var all struct {
			Users []struct {
				User     string
				Requests int64
				CostUSD  string
			}
		}
		e.apiJSON("GET", "/api/admin/usage", alice, nil, http.StatusOK, &all)
		if len(all.Users) != 1 || all.Users[0].User != bob || all.Users[0].Requests != 3 || all.Users[0].CostUSD != mine.TotalUSD {
			t.Fatalf("admin usage: %+v; want bob's 3 requests and %s", all.Users, mine.TotalUSD)
		}

		want := fmt.Sprintf(`chatgateway_quota_used_ratio{end_user="bob@example.com",limit="soft"} %v`, float64(total)/1e12)
		if got := e.scrape(`chatgateway_quota_used_ratio{end_user="bob@example.com",limit="soft"}`); !slices.Equal(got, []string{want}) {
			t.Fatalf("gauge %q, want %s", got, want)
		}
	})
}

// picodollars reads an amount the API writes with twelve decimals.
func picodollars(t *testing.T, usd string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.Replace(usd, ".", "", 1), 10, 64)
	if err != nil {
		t.Fatalf("%q is not an amount", usd)
	}
	return n
}

// TestSpendReadsCountAnAnswerAsItsLastBytesArrive: a client that reads
// its usage the moment its answer is complete — a stream's terminal event
// ([DONE], message_stop, the chat page's done), the last byte of a plain
// reply — finds the request counted and its cost settled in the quota
// (the quota's spent is the ledger's total), on both fronts,
// across dialects and on the chat page. Each is repeated: on a gateway
// that meters the request only after the answer went out, the read
// often, not always, comes first.
func TestSpendReadsCountAnAnswerAsItsLastBytesArrive(t *testing.T) {
	const rounds = 50
	forEachStore(t, func(t *testing.T, kind string) {
		// A plain reply longer than the server's write buffer reaches the
		// client while the handler is still running.
		e := newStoreEnv(t, kind, providersim.Options{ReplyWords: 2000, Chunks: 8}, quietLogger(), withQuota("1000", "2000"))
		var requests int64
		for _, c := range []struct {
			path, model string
			stream      bool
		}{
			{"/v1/chat/completions", "gpt", true},
			{"/v1/messages", "sonnet", true},
			{"/v1/chat/completions", "sonnet", true},
			{"/v1/messages", "gpt", true},
			{"/v1/chat/completions", "gpt", false},
			{"/v1/messages", "sonnet", false},
			{"/api/chat", "gpt", true},
			{"/api/chat", "sonnet", true},
		} {
			missed := 0
			for i := range rounds {
				body := chatBody(c.model, fmt.Sprintf("round %d", i), 4000, c.stream)
				if c.path == "/api/chat" {
					body = fmt.Sprintf(`{"model":%q,"content":"round %d"}`, c.model, i)
				}
				rest := answerTillTheEnd(t, e.url, c.path, bob, body, c.stream)
				requests++
				var mine struct {
					Days     []struct{ Requests int64 }
					TotalUSD string
					Quota    struct{ SpentUSD string }
				}
				e.apiJSON("GET", "/api/me/usage", bob, nil, http.StatusOK, &mine)
				_, _ = io.Copy(io.Discard, rest)
				rest.Close()
				var n int64
				for _, d := range mine.Days {
					n += d.Requests
				}
				if n != requests || mine.Quota.SpentUSD != mine.TotalUSD {
					if missed++; missed == 1 {
						t.Errorf("%s %s stream %t, round %d: read as the answer ended, bob's usage counts %d requests (want %d), his quota %s spent (want %s)",
							c.path, c.model, c.stream, i, n, requests, mine.Quota.SpentUSD, mine.TotalUSD)
					}
				}
			}
			if missed > 0 {
				t.Errorf("%s %s stream %t: %d of %d reads missed the request just answered", c.path, c.model, c.stream, missed, rounds)
			}
		}
	})
}

// answerTillTheEnd sends body and reads the answer up to its end as a
// client sees it: a stream's terminal event, or a plain reply's
// Content-Length bytes. It returns the body for the caller to drain and
// close after its next request.
func answerTillTheEnd(t *testing.T, base, path, who, body string, stream bool) io.ReadCloser {
	t.Helper()
	resp, err := post(base, path, who, body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	if !stream {
		if resp.ContentLength <= 4096 {
			t.Fatalf("%s: a plain reply of length %d, want one longer than the server's buffer", path, resp.ContentLength)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, resp.ContentLength)); err != nil {
			t.Fatal(err)
		}
		return resp.Body
	}
	terminal := map[string]string{"/v1/chat/completions": "data: [DONE]", "/v1/messages": "event: message_stop", "/api/chat": "event: done"}[path]
	r := bufio.NewReader(resp.Body)
	for seen := false; ; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: the stream ended before %q: %v", path, terminal, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == terminal {
			seen = true
		}
		if seen && line == "" {
			return resp.Body
		}
	}
}
