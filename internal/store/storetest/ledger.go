package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

func spend(id, user, model string, at time.Time, cost int64) store.SpendEntry {
	return store.SpendEntry{
		RequestID: id, User: user, Model: model, RequestedModel: "auto", Provider: "anthropic",
		InputTokens: 100, OutputTokens: 10, CacheReadTokens: 5, CacheWriteTokens: 1,
		CostPicodollars: cost, Status: "200", Time: at,
	}
}

// pictures is an image model's row: no tokens, n pictures.
func pictures(id, user, model string, at time.Time, n, cost int64) store.SpendEntry {
	return store.SpendEntry{RequestID: id, User: user, Model: model, Provider: "litellm", Images: n, CostPicodollars: cost, Status: "200", Time: at}
}

func testLedgerByDay(t *testing.T, h Harness) {
	ctx := context.Background()
	s := open(t, h)
	ny, err := time.LoadLocation("America/New_York")
	noErr(t, err)
	// 2025-03-09 is the day New York moves to daylight time: 23 hours long.
	// Midnight EST on the 9th is 05:00 UTC; midnight EDT on the 10th is 04:00 UTC.
	at := func(s string) time.Time { return r(time.Parse(time.RFC3339Nano, s)).must(t) }
	entries := []store.SpendEntry{
		spend("r1", alice, "sonnet", at("2025-03-09T04:59:59.999999Z"), 1),                  // Mar 8 23:59:59 EST
		spend("r2", alice, "sonnet", at("2025-03-09T05:00:00Z"), 2),                         // Mar 9 00:00 EST
		spend("r3", alice, "haiku", at("2025-03-09T12:00:00Z"), 4_000_000_000_000_001),      // Mar 9
		spend("r4", alice, "sonnet", at("2025-03-10T03:59:59Z"), 5_000_000_000_000_003),     // Mar 9 23:59:59 EDT
		spend("r5", alice, "sonnet", at("2025-03-10T04:00:00Z"), 16),                        // Mar 10 00:00 EDT
		spend("r6", bob, "sonnet", at("2025-03-09T12:00:00Z"), 32),                          // not alice's
		spend("r7", alice, "sonnet", at("2025-03-11T04:00:00Z"), 64),                        // outside [from, to)
		spend("r8", alice, "sonnet", at("2025-03-08T04:59:59Z"), 128),                       // before from
		pictures("r9", alice, "nova-canvas", at("2025-03-09T13:00:00Z"), 2, 80_000_000_000), // Mar 9: two pictures
		pictures("r10", alice, "nova-canvas", at("2025-03-09T14:00:00Z"), 3, 120_000_000_000),
		spend("r2", alice, "sonnet", at("2025-03-09T06:00:00Z"), 1_000_000_000_000_000_00), // duplicate id: ignored
	}
	for _, e := range entries {
		noErr(t, s.RecordSpend(ctx, e))
	}
	from := time.Date(2025, 3, 8, 0, 0, 0, 0, ny)
	to := time.Date(2025, 3, 11, 0, 0, 0, 0, ny)
	got := r(s.UsageByDay(ctx, alice, from, to, ny)).must(t)
	tok := func(n int64) store.Tokens {
		return store.Tokens{Input: 100 * n, Output: 10 * n, CacheRead: 5 * n, CacheWrite: n}
	}
	want := []store.DayUsage{
		{Day: "2025-03-08", Model: "sonnet", Requests: 1, Tokens: tok(1), CostPicodollars: 1},
		{Day: "2025-03-09", Model: "haiku", Requests: 1, Tokens: tok(1), CostPicodollars: 4_000_000_000_000_001},
		{Day: "2025-03-09", Model: "nova-canvas", Requests: 2, Images: 5, CostPicodollars: 200_000_000_000},
		// 2 + 5_000_000_000_000_003 is not representable as a float64: a
		// float anywhere on the way would show here.
		{Day: "2025-03-09", Model: "sonnet", Requests: 2, Tokens: tok(2), CostPicodollars: 5_000_000_000_000_005},
		{Day: "2025-03-10", Model: "sonnet", Requests: 1, Tokens: tok(1), CostPicodollars: 16},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("usage by day:\n got %+v\nwant %+v", got, want)
	}
	// The same rows in UTC fall on other days.
	utc := r(s.UsageByDay(ctx, alice, from, to, time.UTC)).must(t)
	days := map[string]int64{}
	for _, d := range utc {
		days[d.Day] += d.Requests
	}
	if !reflect.DeepEqual(days, map[string]int64{"2025-03-09": 5, "2025-03-10": 2}) {
		t.Fatalf("utc days %v", days)
	}
	if empty := r(s.UsageByDay(ctx, "nobody@example.com", from, to, ny)).must(t); len(empty) != 0 {
		t.Fatalf("usage for unknown user: %+v", empty)
	}
}

func testLedgerTotals(t *testing.T, h Harness) {
	ctx := context.Background()
	s := open(t, h)
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	big := int64(1<<53 + 1) // odd and above 2^53: lost by any float64 sum
	for i, e := range []store.SpendEntry{
		spend("a1", alice, "sonnet", base, big),
		spend("a2", alice, "haiku", base.Add(time.Hour), 2),
		spend("a3", alice, "sonnet", base.Add(48*time.Hour), 7),
		spend("b1", bob, "sonnet", base.Add(time.Hour), 1_000_000),
		spend("c1", "carol@example.com", "sonnet", base.Add(-time.Hour), 5), // before the window
		pictures("b2", bob, "nova-canvas", base.Add(2*time.Hour), 4, 160_000_000_000),
	} {
		if i == 3 {
			e.Status = "upstream_error"
		}
		noErr(t, s.RecordSpend(ctx, e))
	}
	if got := r(s.SpendSince(ctx, alice, base)).must(t); got != big+9 {
		t.Fatalf("alice since base = %d, want %d", got, big+9)
	}
	if got := r(s.SpendSince(ctx, alice, base.Add(time.Hour))).must(t); got != 9 {
		t.Fatalf("alice since base+1h = %d, want 9 (since is inclusive)", got)
	}
	if got := r(s.SpendSince(ctx, "nobody@example.com", base)).must(t); got != 0 {
		t.Fatalf("unknown user spend = %d", got)
	}
	got := r(s.UsageByUser(ctx, base, base.Add(24*time.Hour))).must(t)
	want := []store.UserUsage{
		{User: alice, Requests: 2, Tokens: store.Tokens{Input: 200, Output: 20, CacheRead: 10, CacheWrite: 2}, CostPicodollars: big + 2},
		{User: bob, Requests: 2, Tokens: store.Tokens{Input: 100, Output: 10, CacheRead: 5, CacheWrite: 1}, Images: 4, CostPicodollars: 160_001_000_000},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("usage by user:\n got %+v\nwant %+v", got, want)
	}
	if none := r(s.UsageByUser(ctx, base.Add(-48*time.Hour), base.Add(-24*time.Hour))).must(t); len(none) != 0 {
		t.Fatalf("empty window: %+v", none)
	}
	wantErr(t, s.RecordSpend(ctx, store.SpendEntry{User: alice}), store.ErrInvalid, "spend without request id")
	wantErr(t, s.RecordSpend(ctx, store.SpendEntry{RequestID: "x"}), store.ErrInvalid, "spend without user")
	wantErr(t, s.RecordSpend(ctx, store.SpendEntry{RequestID: "x", User: alice, Images: -1}), store.ErrInvalid, "negative pictures")
}

func testAudit(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, h, store.WithClock(clk.Now))
	const admin = "admin@example.com"
	t0 := clk.Now()
	noErr(t, s.RecordAudit(ctx, store.AuditEvent{Actor: admin, Action: "session.list", Subject: bob}))
	clk.Advance(time.Minute)
	noErr(t, s.RecordAudit(ctx, store.AuditEvent{Actor: admin, Action: "session.read", Subject: bob, SessionID: "s1"}))
	noErr(t, s.RecordAudit(ctx, store.AuditEvent{Actor: admin, Action: "export", Subject: alice}))
	noErr(t, s.RecordAudit(ctx, store.AuditEvent{Actor: admin, Action: "export", Subject: bob, Time: t0.Add(time.Hour)}))

	got := r(s.AuditFor(ctx, bob, 0)).must(t)
	want := []store.AuditEvent{
		{Time: t0.Add(time.Hour), Actor: admin, Action: "export", Subject: bob},
		{Time: t0.Add(time.Minute), Actor: admin, Action: "session.read", Subject: bob, SessionID: "s1"},
		{Time: t0, Actor: admin, Action: "session.list", Subject: bob},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("audit for bob:\n got %+v\nwant %+v", got, want)
	}
	if got := r(s.AuditFor(ctx, bob, 2)).must(t); len(got) != 2 || got[0].Action != "export" {
		t.Fatalf("limited audit: %+v", got)
	}
	if got := r(s.AuditFor(ctx, "carol@example.com", 0)).must(t); len(got) != 0 {
		t.Fatalf("audit for carol: %+v", got)
	}
	wantErr(t, s.RecordAudit(ctx, store.AuditEvent{Actor: admin, Subject: bob}), store.ErrInvalid, "audit without action")
}

// testLedgerBatch: the group-committed ledger. Rows with one request id
// replace each other, the last written winning, inside a batch and across
// batches; the row keeps its first time and its user; requests that share
// the caller's X-Request-Id are still one row each (the key is the
// gateway's id); a final row settles its cost against a live lease in the
// same transaction, and against a gone one not at all.
func testLedgerBatch(t *testing.T, h Harness) {
	ctx := context.Background()
	s := open(t, h)
	base := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	w := func(id string, cost int64, at time.Time, lease string) store.SpendWrite {
		e := spend(id, alice, "sonnet", at, cost)
		e.ClientRequestID = "same-client-id"
		return store.SpendWrite{Entry: e, Lease: lease}
	}
	since := base.Add(-time.Hour)
	g := r(s.GrantLease(ctx, store.Lease{ID: "lease-1", User: alice, At: base, ExpiresAt: base.Add(time.Hour), Create: true}, 100, 100, since, base, 1000)).must(t)
	if !g.OK {
		t.Fatalf("grant %+v", g)
	}
	// A stream's provisional rows and its final one in one batch, and a
	// second request with the same client id.
	noErr(t, s.CommitSpend(ctx, []store.SpendWrite{
		w("g1", 3, base, ""), w("g1", 5, base.Add(time.Second), ""), w("g1", 9, base.Add(2*time.Second), "lease-1"),
		w("g2", 11, base.Add(time.Minute), "lease-1"),
	}))
	// A request for pictures, settled like any other.
	pic := store.SpendWrite{Entry: pictures("p1", alice, "nova-canvas", base.Add(90*time.Second), 3, 17), Lease: "lease-1"}
	noErr(t, s.CommitSpend(ctx, []store.SpendWrite{pic}))
	// A third request provisional in one batch, final in the next.
	noErr(t, s.CommitSpend(ctx, []store.SpendWrite{w("g3", 1, base.Add(2*time.Minute), "")}))
	noErr(t, s.CommitSpend(ctx, []store.SpendWrite{w("g3", 13, base.Add(3*time.Minute), "lease-1")}))
	// Another user cannot take over a row by its id.
	other := w("g3", 1_000, base, "")
	other.Entry.User = bob
	noErr(t, s.CommitSpend(ctx, []store.SpendWrite{other}))

	days := r(s.UsageByDay(ctx, alice, base.Add(-24*time.Hour), base.Add(24*time.Hour), time.UTC)).must(t)
	if len(days) != 2 || days[0].Model != "nova-canvas" || days[0].Requests != 1 || days[0].Images != 3 || days[0].CostPicodollars != 17 ||
		days[1].Requests != 3 || days[1].Images != 0 || days[1].CostPicodollars != 9+11+13 {
		t.Fatalf("usage %+v, want 3 pictures costing 17 and 3 requests costing 33", days)
	}
	if n := r(s.SpendSince(ctx, bob, since)).must(t); n != 0 {
		t.Fatalf("bob took over a row: %d", n)
	}
	u := r(s.QuotaUsage(ctx, alice, since, base)).must(t)
	if u.SpentPicodollars != 50 || u.ReservedPicodollars != 100-50 {
		t.Fatalf("quota %+v: want the 50 settled moved out of the lease", u)
	}
	// A returned lease's late cost is not settled again.
	noErr(t, s.ReturnLease(ctx, store.Lease{ID: "lease-1", User: alice}))
	noErr(t, s.CommitSpend(ctx, []store.SpendWrite{w("g4", 7, base.Add(4*time.Minute), "lease-1")}))
	if u := r(s.QuotaUsage(ctx, alice, since, base)).must(t); u.SpentPicodollars != 50 || u.ReservedPicodollars != 0 {
		t.Fatalf("after return %+v", u)
	}
	wantErr(t, s.CommitSpend(ctx, []store.SpendWrite{{Entry: store.SpendEntry{User: alice}}}), store.ErrInvalid, "a row without request id")
}

// testLedgerBigBatch: a batch the size a lingering writer gathers (46
// writes, 45 rows: more than one statement's worth on SQLite) keeps the
// rules of a small one. A provisional row is replaced by its final one
// written 35 rows later; a row written before is revised and keeps its
// first time; bob's row with the id of one of alice's is left alone; every
// final cost is settled against the lease, in the same transaction.
func testLedgerBigBatch(t *testing.T, h Harness) {
	ctx := context.Background()
	s := open(t, h)
	base := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	since := base.Add(-time.Hour)
	if g := r(s.GrantLease(ctx, store.Lease{ID: "lease-2", User: alice, At: base, ExpiresAt: base.Add(time.Hour), Create: true}, 10_000, 10_000, since, base, 1<<40)).must(t); !g.OK {
		t.Fatalf("grant %+v", g)
	}
	early := spend("b3", alice, "sonnet", base.Add(-time.Minute), 1)
	noErr(t, s.CommitSpend(ctx, []store.SpendWrite{{Entry: early}, {Entry: spend("b40", bob, "sonnet", base, 1000)}}))

	var writes []store.SpendWrite
	for i := range 45 {
		e := spend(fmt.Sprint("b", i), alice, "sonnet", base.Add(time.Duration(i)*time.Second), int64(i+1))
		w := store.SpendWrite{Entry: e, Lease: "lease-2"}
		if i == 10 {
			w.Lease = "" // provisional: billed as it streams, settled by its final row
		}
		writes = append(writes, w)
	}
	writes = append(writes, store.SpendWrite{Entry: spend("b10", alice, "sonnet", base.Add(time.Hour), 500), Lease: "lease-2"})
	noErr(t, s.CommitSpend(ctx, writes))

	// Alice's rows: b0…b44 but bob's b40, b10 at its final cost.
	wantCost := int64(45*46/2 - 11 + 500 - 41)
	days := r(s.UsageByDay(ctx, alice, base.Add(-24*time.Hour), base.Add(24*time.Hour), time.UTC)).must(t)
	if len(days) != 1 || days[0].Requests != 44 || days[0].CostPicodollars != wantCost {
		t.Fatalf("usage %+v, want 44 requests costing %d", days, wantCost)
	}
	// b3 kept its first time: it is the one row before base.
	if n := r(s.SpendSince(ctx, alice, base)).must(t); n != wantCost-4 {
		t.Fatalf("alice's spend since the batch began: %d, want %d (b3 keeps its first time)", n, wantCost-4)
	}
	if n := r(s.SpendSince(ctx, bob, since)).must(t); n != 1000 {
		t.Fatalf("bob's row: %d, want 1000 untouched", n)
	}
	// Every final row's cost is settled, b40's too: the quota counts what
	// alice's request cost, whoever's id it collided with.
	settled := int64(45*46/2 - 11 + 500)
	if u := r(s.QuotaUsage(ctx, alice, since, base)).must(t); u.SpentPicodollars != settled || u.ReservedPicodollars != 10_000-settled {
		t.Fatalf("quota %+v, want %d settled out of the lease", u, settled)
	}
}
