package gateway_test

import (
	"fmt"
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
		// A client can have its whole answer a moment before the gateway
		// meters it; wait for that (not for the ledger's commit).
		waitFor(t, "requests to be metered", func() bool {
			return slices.Equal(e.scrape("chatgateway_requests_in_flight "), []string{"chatgateway_requests_in_flight 0"})
		})

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
