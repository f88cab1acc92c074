package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// TestExportImportRoundTrip exports a history, imports it into a fresh
// store through another gateway, and exports it again: equal, byte for byte.
func TestExportImportRoundTrip(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		src := newStoreEnv(t, kind, providersim.Options{}, nil)
		for _, content := range []string{"one", "two"} {
			_, _, evs := src.turn("/api/chat", bob, content)
			done(t, evs)
			src.clock.Set(src.clock.Now().Add(time.Minute))
		}
		var s store.Session
		src.apiJSON("POST", "/api/sessions", bob, map[string]string{"title": "empty one"}, http.StatusCreated, &s)
		_, _, evs := src.turn("/api/sessions/"+s.ID+"/messages", bob, "cut me [[fault:reset=5]]")
		done(t, evs)

		code, jsonl := src.api("GET", "/api/me/export?format=jsonl", bob, nil)
		if code != 200 || strings.Count(jsonl, "\n") != 2 {
			t.Fatalf("jsonl export: %d %q", code, jsonl)
		}
		var doc struct {
			Owner    string
			Sessions []store.ExportedSession
		}
		src.apiJSON("GET", "/api/me/export", bob, nil, 200, &doc)
		if doc.Owner != bob || len(doc.Sessions) != 2 || len(doc.Sessions[0].Messages) != 4 || doc.Sessions[1].Messages[1].Status != store.StatusIncomplete {
			t.Fatalf("json export: %+v", doc)
		}
		// The JSON document and the JSONL stream hold the same sessions.
		var lines bytes.Buffer
		for _, s := range doc.Sessions {
			b, _ := json.Marshal(s)
			lines.Write(b)
			lines.WriteByte('\n')
		}
		if lines.String() != jsonl {
			t.Errorf("json and jsonl differ:\n%s\n%s", lines.String(), jsonl)
		}

		dst := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil)
		dst.clock.Set(src.clock.Now().Add(time.Hour)) // imported times are never later than now
		var res struct{ Imported int }
		dst.apiJSON("POST", "/api/me/import", bob, jsonl, 200, &res)
		if res.Imported != 2 {
			t.Fatalf("imported %d", res.Imported)
		}
		if _, again := dst.api("GET", "/api/me/export?format=jsonl", bob, nil); again != jsonl {
			t.Errorf("export → import → export differs:\n%s\n%s", jsonl, again)
		}
		// Importing again conflicts and says how far it got.
		code, body := dst.api("POST", "/api/me/import", bob, jsonl)
		if code != http.StatusConflict || !strings.Contains(body, `"imported":0`) {
			t.Errorf("second import: %d %s", code, body)
		}
		if code, body := dst.api("POST", "/api/me/import", alice, "{not json\n"); code != 400 || !strings.Contains(body, "line 1") {
			t.Errorf("bad import: %d %s", code, body)
		}
		// Imported into bob's name only: alice sees nothing of it.
		if _, out := dst.api("GET", "/api/me/export?format=jsonl", alice, nil); out != "" {
			t.Errorf("alice's export: %q", out)
		}
	})
}

func TestUsageRoutes(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, func(c *gatewayconfig.Config) {
		c.Quotas.TimeZone = "America/New_York"
	})
	ctx := context.Background()
	// 03:00 UTC on Jan 10 is still Jan 9 in New York.
	at := time.Date(2026, 1, 10, 3, 0, 0, 0, time.UTC)
	for i, u := range []string{bob, bob, alice} {
		if err := e.st.RecordSpend(ctx, store.SpendEntry{RequestID: "r" + string(rune('0'+i)), User: u, Model: "sonnet", Provider: "anthropic",
			InputTokens: 10, OutputTokens: 20, CostPicodollars: 1_500_000, Status: "200", Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	var mine struct {
		TimeZone string
		Days     []struct {
			Day, Model, CostUSD string
			Requests            int64
			Tokens              store.Tokens
		}
		TotalUSD string
	}
	e.apiJSON("GET", "/api/me/usage?from=2026-01-01&to=2026-01-31", bob, nil, 200, &mine)
	if mine.TimeZone != "America/New_York" || len(mine.Days) != 1 || mine.Days[0].Day != "2026-01-09" || mine.Days[0].Requests != 2 ||
		mine.Days[0].Tokens.Output != 40 || mine.Days[0].CostUSD != "0.000003000000" || mine.TotalUSD != "0.000003000000" {
		t.Errorf("bob's usage: %+v", mine)
	}
	var all struct {
		Users []struct {
			User     string
			Requests int64
			CostUSD  string
		}
	}
	e.apiJSON("GET", "/api/admin/usage?from=2026-01-01&to=2026-01-31", alice, nil, 200, &all)
	if len(all.Users) != 2 || all.Users[1].User != bob || all.Users[1].Requests != 2 || all.Users[0].CostUSD != "0.000001500000" {
		t.Errorf("admin usage: %+v", all)
	}
	if code, _ := e.api("GET", "/api/admin/usage", bob, nil); code != 403 {
		t.Errorf("admin usage as bob: %d", code)
	}
	if code, _ := e.api("GET", "/api/me/usage?from=yesterday", bob, nil); code != 400 {
		t.Errorf("bad date: %d", code)
	}
}

func TestUsageShowsTodaysQuota(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil, func(c *gatewayconfig.Config) {
		c.Quotas.DailySoftUSD, c.Quotas.DailyHardUSD = "1", "5"
	})
	if code, _, _ := e.turn("/api/chat", bob, "How much is left today?"); code != http.StatusOK {
		t.Fatalf("chat turn: %d", code)
	}
	e.settle() // the ledger writer commits the turn's cost a moment after it ends
	var mine struct {
		Quota struct {
			Day, SpentUSD, ReservedUSD, DailySoftUSD, DailyHardUSD, RemainingUSD string
		}
	}
	e.apiJSON("GET", "/api/me/usage", bob, nil, 200, &mine)
	q := mine.Quota
	pico := func(usd string) int64 { // exact: every amount has twelve decimals
		n, err := strconv.ParseInt(strings.Replace(usd, ".", "", 1), 10, 64)
		if err != nil {
			t.Fatalf("%q is not an amount", usd)
		}
		return n
	}
	spent := pico(q.SpentUSD)
	if spent <= 0 || q.ReservedUSD != "0.000000000000" {
		t.Fatalf("today's spend is not shown, or a finished turn still holds a reservation: %+v", q)
	}
	if q.DailySoftUSD != "1.000000000000" || q.DailyHardUSD != "5.000000000000" || pico(q.RemainingUSD) != 5e12-spent {
		t.Fatalf("limits or remaining quota wrong: %+v", q)
	}
}

func TestDeleteMyDataKeepsTheLedger(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newStoreEnv(t, kind, providersim.Options{}, nil)
		_, _, evs := e.turn("/api/chat", bob, "remember this")
		d, _ := done(t, evs)
		_, _, evs = e.turn("/api/chat", alice, "hers")
		done(t, evs)
		e.apiJSON("DELETE", "/api/me/data", bob, nil, http.StatusNoContent, nil)
		if code, _ := e.api("GET", "/api/sessions/"+d.SessionID, bob, nil); code != 404 {
			t.Errorf("session after erase: %d", code)
		}
		if _, out := e.api("GET", "/api/me/export?format=jsonl", bob, nil); out != "" {
			t.Errorf("export after erase: %q", out)
		}
		var list struct{ Sessions []store.Session }
		e.apiJSON("GET", "/api/sessions", alice, nil, 200, &list)
		if len(list.Sessions) != 1 {
			t.Errorf("alice's sessions: %+v", list)
		}
		e.settle()
		total, err := e.st.SpendSince(context.Background(), bob, time.Now().Add(-time.Hour))
		if err != nil || total == 0 {
			t.Errorf("the ledger stays: %d %v", total, err)
		}
		// A fresh start works: new key material, new sessions.
		_, _, evs = e.turn("/api/chat", bob, "again")
		if d2, _ := done(t, evs); !d2.NewSession || d2.Status != "complete" {
			t.Errorf("after erase: %+v", d2)
		}
	})
}

func TestRetentionDeletesOldSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newStoreEnv(t, kind, providersim.Options{}, nil, func(c *gatewayconfig.Config) {
			c.Sessions.Retention = gatewayconfig.D(24 * time.Hour)
		})
		_, _, evs := e.turn("/api/chat", bob, "old")
		old, _ := done(t, evs)
		e.clock.Set(e.clock.Now().Add(23 * time.Hour))
		var fresh store.Session
		e.apiJSON("POST", "/api/sessions", bob, nil, http.StatusCreated, &fresh)
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		go func() { e.gw.RunRetention(ctx, 10*time.Millisecond); close(stopped) }()
		t.Cleanup(func() { cancel(); <-stopped })

		time.Sleep(50 * time.Millisecond)
		if code, _ := e.api("GET", "/api/sessions/"+old.SessionID, bob, nil); code != 200 {
			t.Fatalf("within retention: %d", code)
		}
		e.clock.Set(e.clock.Now().Add(2 * time.Hour))
		waitFor(t, "retention to delete the old session", func() bool {
			code, _ := e.api("GET", "/api/sessions/"+old.SessionID, bob, nil)
			return code == 404
		})
		if code, _ := e.api("GET", "/api/sessions/"+fresh.ID, bob, nil); code != 200 {
			t.Errorf("the newer session: %d", code)
		}
		e.settle()
		if total, _ := e.st.SpendSince(context.Background(), bob, time.Time{}); total == 0 {
			t.Error("retention deleted the ledger")
		}
	})
}
