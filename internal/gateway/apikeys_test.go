package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/chatgateway/chatgateway-operator/internal/gateway"
	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

type apiKeyJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	Key        string     `json:"key"`
}

// newKey creates a key for who, signed in through the sidecar.
func (e *storeEnv) newKey(who, name string) apiKeyJSON {
	e.t.Helper()
	var k apiKeyJSON
	e.apiJSON("POST", "/api/me/keys", who, map[string]string{"name": name}, http.StatusCreated, &k)
	return k
}

// keyHeader is a program's request with a personal key and nothing else.
func keyHeader(key string) http.Header {
	return http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}
}

// whoAmI is the email GET /api/me names for h, or the status when it fails.
func (e *env) whoAmI(h http.Header) (int, string) {
	e.t.Helper()
	resp, body := e.do("GET", "/api/me", h, "")
	var me struct{ Email string }
	_ = json.Unmarshal([]byte(body), &me)
	return resp.StatusCode, me.Email
}

func TestPersonalKeys(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind string) {
		e := newStoreEnv(t, kind, providersim.Options{}, nil, func(c *gatewayconfig.Config) { c.Quotas.DailyHardUSD = "10" })
		ctx := context.Background()

		k := e.newKey(bob, "laptop")
		if !strings.HasPrefix(k.Key, "cgw_") || len(k.Key) != 47 || k.Prefix != k.Key[:12] || k.Name != "laptop" || k.LastUsedAt != nil || k.ID == "" {
			t.Fatalf("created %+v", k)
		}
		var list struct{ Keys []map[string]any }
		e.apiJSON("GET", "/api/me/keys", bob, nil, http.StatusOK, &list)
		if len(list.Keys) != 1 || list.Keys[0]["id"] != k.ID || list.Keys[0]["prefix"] != k.Prefix {
			t.Fatalf("bob's keys: %+v", list.Keys)
		}
		if _, shown := list.Keys[0]["key"]; shown {
			t.Fatal("the list shows the key itself")
		}
		if v, ok := list.Keys[0]["lastUsedAt"]; !ok || v != nil {
			t.Fatalf("lastUsedAt of an unused key: %v (present %v), want null", v, ok)
		}
		e.apiJSON("GET", "/api/me/keys", alice, nil, http.StatusOK, &list)
		if len(list.Keys) != 0 {
			t.Fatalf("alice sees %d keys", len(list.Keys))
		}

		// The key is bob, whatever email header comes with it.
		for name, h := range map[string]http.Header{
			"bearer":               keyHeader(k.Key),
			"x-api-key":            {"X-Api-Key": {k.Key}},
			"with alice's email":   {"Authorization": {"Bearer " + k.Key}, "X-Forwarded-Email": {alice}},
			"with the token too":   {"X-Gateway-Token": {currentToken}, "Authorization": {"Bearer " + k.Key}, "X-Forwarded-Email": {alice}},
			"with a non-ASCII one": {"X-Api-Key": {k.Key}, "X-Forwarded-Email": {"\u212aelvin@example.com"}},
		} {
			if code, who := e.whoAmI(h); code != http.StatusOK || who != bob {
				t.Errorf("%s: %d %q, want bob", name, code, who)
			}
		}
		// Refusals.
		other := "cgw_" + strings.Repeat("A", 43)
		for name, c := range map[string]struct {
			h    http.Header
			want int
		}{
			"an unknown key":               {keyHeader(other), http.StatusUnauthorized},
			"an unknown key with a token":  {http.Header{"X-Gateway-Token": {currentToken}, "X-Forwarded-Email": {bob}, "Authorization": {"Bearer " + other}}, http.StatusUnauthorized},
			"two different keys":           {http.Header{"Authorization": {"Bearer " + k.Key}, "X-Api-Key": {other}}, http.StatusBadRequest},
			"a key in X-Gateway-Token":     {http.Header{"X-Gateway-Token": {k.Key}}, http.StatusUnauthorized},
			"the shared token, no email":   {http.Header{"Authorization": {"Bearer " + currentToken}}, http.StatusUnauthorized},
			"a key with another character": {keyHeader(k.Key[:46] + "x"), http.StatusUnauthorized},
		} {
			if code, _ := e.whoAmI(c.h); code != c.want {
				t.Errorf("%s: %d, want %d", name, code, c.want)
			}
		}

		// Both SDKs, both fronts, both headers, streaming and not: bob's
		// usage, not alice's, and the key never reaches a provider.
		const prompt = "hello there gateway"
		clients := map[string]anthropic.Client{
			"x-api-key": anthropic.NewClient(aoption.WithBaseURL(e.url+"/"), aoption.WithAPIKey(k.Key), aoption.WithMaxRetries(0)),
			"bearer":    anthropic.NewClient(aoption.WithBaseURL(e.url+"/"), aoption.WithAuthToken(k.Key), aoption.WithMaxRetries(0)),
		}
		requests := 0
		for how, client := range clients {
			params := anthropic.MessageNewParams{Model: "sonnet", MaxTokens: 100,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))}}
			msg, err := client.Messages.New(ctx, params)
			if err != nil {
				t.Fatalf("anthropic-sdk-go, %s: %v", how, err)
			}
			if got, want := msg.Content[0].Text, simReply(sonnetID, 3); got != want {
				t.Errorf("anthropic-sdk-go, %s: %q, want %q", how, got, want)
			}
			stream := client.Messages.NewStreaming(ctx, params)
			var acc anthropic.Message
			for stream.Next() {
				if err := acc.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := stream.Err(); err != nil || len(acc.Content) == 0 || acc.Content[0].Text != simReply(sonnetID, 3) {
				t.Errorf("anthropic-sdk-go, %s, streaming: %v %+v", how, err, acc.Content)
			}
			requests += 2
		}
		oclients := map[string]openai.Client{
			"bearer":    openai.NewClient(ooption.WithBaseURL(e.url+"/v1/"), ooption.WithAPIKey(k.Key), ooption.WithMaxRetries(0)),
			"x-api-key": openai.NewClient(ooption.WithBaseURL(e.url+"/v1/"), ooption.WithAPIKey(""), ooption.WithHeader("X-Api-Key", k.Key), ooption.WithMaxRetries(0)),
		}
		for how, client := range oclients {
			params := openai.ChatCompletionNewParams{Model: "gpt", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}}
			cc, err := client.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatalf("openai-go, %s: %v", how, err)
			}
			if got, want := cc.Choices[0].Message.Content, simReply(gptID, 3); got != want {
				t.Errorf("openai-go, %s: %q, want %q", how, got, want)
			}
			stream := client.Chat.Completions.NewStreaming(ctx, params)
			var acc openai.ChatCompletionAccumulator
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil || len(acc.Choices) == 0 || acc.Choices[0].Message.Content != simReply(gptID, 3) {
				t.Errorf("openai-go, %s, streaming: %v", how, err)
			}
			requests += 2
		}
		e.settle()
		day := func(who string) int64 {
			var n int64
			for _, d := range valueOf(e.st.UsageByDay(ctx, who, time.Now().Add(-48*time.Hour), time.Now().Add(48*time.Hour), time.UTC))(t) {
				n += d.Requests
			}
			return n
		}
		if got := day(bob); got != int64(requests) {
			t.Errorf("bob's ledger has %d requests, want %d", got, requests)
		}
		if got := day(alice); got != 0 {
			t.Errorf("alice's ledger has %d requests, want none", got)
		}
		for name, reqs := range map[string][]providersim.Recorded{"anthropic": e.anth.Requests(), "openai": e.oai.Requests()} {
			for _, r := range reqs {
				for h, vs := range r.Header {
					for _, v := range vs {
						if strings.Contains(v, k.Key) {
							t.Errorf("%s: the personal key reached the provider in %s", name, h)
						}
					}
				}
				if !strings.Contains(string(r.Body), bob) || strings.Contains(string(r.Body), alice) {
					t.Errorf("%s: the provider was not told the caller is bob: %s", name, r.Body)
				}
			}
		}
		// The quota counts it: bob's spend today is what his key spent.
		if st, err := e.gw.QuotaStatus(ctx, bob); err != nil || st.SpentPicodollars <= 0 {
			t.Errorf("bob's quota after his key's requests: %+v, %v", st, err)
		}

		// A key manages no keys and an admin makes none for others.
		for _, c := range []struct {
			method, path string
			h            http.Header
			body         string
			want         int
		}{
			{"GET", "/api/me/keys", keyHeader(k.Key), "", http.StatusForbidden},
			{"POST", "/api/me/keys", keyHeader(k.Key), `{"name":"successor"}`, http.StatusForbidden},
			{"DELETE", "/api/me/keys/" + k.ID, keyHeader(k.Key), "", http.StatusForbidden},
			{"POST", "/api/me/keys", authHeader(alice), `{"name":"x","email":"bob@example.com"}`, http.StatusBadRequest},
			{"POST", "/api/me/keys", authHeader(alice), `{"name":"x","owner":"bob@example.com"}`, http.StatusBadRequest},
			{"POST", "/api/me/keys", authHeader(alice), `{"Name":"x"}`, http.StatusBadRequest},
			{"POST", "/api/me/keys", authHeader(alice), `{"name":"x","name":"y"}`, http.StatusBadRequest},
			{"POST", "/api/me/keys", authHeader(alice), `{"name":null}`, http.StatusBadRequest},
			{"POST", "/api/me/keys", authHeader(alice), `{"name":"  "}`, http.StatusBadRequest},
			{"POST", "/api/me/keys", authHeader(alice), `{"name":"a\u0007b"}`, http.StatusBadRequest},
			{"POST", "/api/me/keys", authHeader(alice), `{"name":"` + strings.Repeat("é", 101) + `"}`, http.StatusBadRequest},
			{"POST", "/api/me/keys", authHeader(alice), `[{"name":"x"}]`, http.StatusBadRequest},
			{"POST", "/api/me/keys", authHeader(alice), `{"name":"x"} {}`, http.StatusBadRequest},
			{"DELETE", "/api/me/keys/" + k.ID, authHeader(alice), "", http.StatusNotFound},
		} {
			if resp, body := e.do(c.method, c.path, c.h, c.body); resp.StatusCode != c.want {
				t.Errorf("%s %s %s: %d, want %d: %s", c.method, c.path, c.body, resp.StatusCode, c.want, body)
			}
		}
		e.apiJSON("GET", "/api/me/keys", alice, nil, http.StatusOK, &list)
		if len(list.Keys) != 0 {
			t.Fatalf("refused requests made alice %d keys", len(list.Keys))
		}
		if code, who := e.whoAmI(keyHeader(k.Key)); code != http.StatusOK || who != bob {
			t.Fatalf("alice's DELETE of bob's key: bob's key now %d %q", code, who)
		}

		// Revoked: refused at once on this replica.
		e.apiJSON("DELETE", "/api/me/keys/"+k.ID, bob, nil, http.StatusNoContent, nil)
		if code, _ := e.whoAmI(keyHeader(k.Key)); code != http.StatusUnauthorized {
			t.Fatalf("a revoked key: %d", code)
		}
		e.apiJSON("DELETE", "/api/me/keys/"+k.ID, bob, nil, http.StatusNotFound, nil)

		// Keys go with DELETE /api/me/data.
		k2 := e.newKey(bob, "ci")
		e.apiJSON("DELETE", "/api/me/data", bob, nil, http.StatusNoContent, nil)
		if code, _ := e.whoAmI(keyHeader(k2.Key)); code != http.StatusUnauthorized {
			t.Fatalf("a key after its owner's data was erased: %d", code)
		}
		e.apiJSON("GET", "/api/me/keys", bob, nil, http.StatusOK, &list)
		if len(list.Keys) != 0 {
			t.Fatalf("keys after erasing: %+v", list.Keys)
		}

		// Off the allowlist: the key stops working with the person.
		k3 := e.newKey(bob, "desktop")
		e.cfg.Users = e.cfg.Users[:1]
		e.writeConfig(e.cfg)
		if _, err := e.gw.Reload(); err != nil {
			t.Fatal(err)
		}
		if code, _ := e.whoAmI(keyHeader(k3.Key)); code != http.StatusForbidden {
			t.Fatalf("the key of someone taken off the allowlist: %d", code)
		}
	})
}

func valueOf[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// countingStore counts the reads of every key's hash.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (c *countingStore) APIKeyHashes(ctx context.Context) ([]store.APIKeyHash, error) {
	c.reads.Add(1)
	return c.Store.APIKeyHashes(ctx)
}

// TestKeyRevocationReachesEveryReplica runs two gateways on one PostgreSQL
// database: a key revoked on one is refused by the other within 2 s, and
// the other does not read the store per request to know it.
func TestKeyRevocationReachesEveryReplica(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StorePostgres, providersim.Options{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go e.gw.RunAPIKeys(ctx)

	st, err := store.Open(ctx, e.cfg.Sessions.Store, []byte(masterKey), store.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	counted := &countingStore{Store: st}
	other, err := gateway.New(gateway.Options{ConfigPath: e.configPath(), Now: e.clock.Now, Logger: testLogger(t), Store: counted})
	if err != nil {
		t.Fatal(err)
	}
	otherURL, _ := serve(t, other)
	done := make(chan struct{})
	go func() { other.RunAPIKeys(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	ask := func(key string) int {
		req, _ := http.NewRequest("GET", otherURL+"/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// waitFor polls the other replica until it answers want, and says how long that took.
	waitFor := func(key string, want int, limit time.Duration) time.Duration {
		start := time.Now()
		for {
			got := ask(key)
			if got == want {
				return time.Since(start)
			}
			if time.Since(start) > limit {
				t.Fatalf("the other replica still answers %d after %s, want %d", got, limit, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	k := e.newKey(alice, "laptop")
	took := waitFor(k.Key, http.StatusOK, 2*time.Second)
	t.Logf("a new key works on the other replica after %s", took)

	// Many requests, few reads: the check is in memory.
	before := counted.reads.Load()
	start := time.Now()
	const n = 300
	for range n {
		if code := ask(k.Key); code != http.StatusOK {
			t.Fatalf("a live key: %d", code)
		}
	}
	elapsed := time.Since(start)
	reads := counted.reads.Load() - before
	t.Logf("%d requests in %s: %d reads of the keys", n, elapsed, reads)
	if limit := int64(elapsed/(500*time.Millisecond)) + 2; reads > limit {
		t.Errorf("%d reads of the key table for %d requests in %s; want at most %d (one per refresh)", reads, n, elapsed, limit)
	}

	e.apiJSON("DELETE", "/api/me/keys/"+k.ID, alice, nil, http.StatusNoContent, nil)
	took = waitFor(k.Key, http.StatusUnauthorized, 2*time.Second)
	t.Logf("the revoked key is refused by the other replica after %s", took)
}

// TestKeyLastUsedIsWrittenCoarsely: the refresh loop writes a key's last
// use, once per interval, not per request.
func TestKeyLastUsedIsWrittenCoarsely(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.gw.RunAPIKeys(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	k := e.newKey(bob, "laptop")
	first := e.clock.Now()
	if code, _ := e.whoAmI(keyHeader(k.Key)); code != http.StatusOK {
		t.Fatal(code)
	}
	lastUsed := func() *time.Time {
		var list struct{ Keys []apiKeyJSON }
		e.apiJSON("GET", "/api/me/keys", bob, nil, http.StatusOK, &list)
		return list.Keys[0].LastUsedAt
	}
	deadline := time.Now().Add(3 * time.Second)
	for lastUsed() == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := lastUsed(); got == nil || !got.Equal(first.Truncate(time.Microsecond)) {
		t.Fatalf("last used %v, want %v", got, first)
	}
	// A minute later: not written again (coarse); ten minutes later: it is.
	e.clock.Set(first.Add(time.Minute))
	e.whoAmI(keyHeader(k.Key))
	time.Sleep(1200 * time.Millisecond)
	if got := lastUsed(); !got.Equal(first.Truncate(time.Microsecond)) {
		t.Fatalf("last used moved to %v a minute later; it is written at most every few minutes", got)
	}
	later := first.Add(10 * time.Minute)
	e.clock.Set(later)
	e.whoAmI(keyHeader(k.Key))
	deadline = time.Now().Add(3 * time.Second)
	for !lastUsed().Equal(later.Truncate(time.Microsecond)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := lastUsed(); !got.Equal(later.Truncate(time.Microsecond)) {
		t.Fatalf("last used %v, want %v", got, later)
	}
}

// TestKeyIsItsOwnerForPrivacyAndAudit: an admin's key opens what the
// privacy toggles open to that admin, no more, and the subject's audit log
// names the admin.
func TestKeyIsItsOwnerForPrivacyAndAudit(t *testing.T) {
	e := newStoreEnv(t, gatewayconfig.StoreEmbedded, providersim.Options{}, nil)
	var s struct{ ID string }
	e.apiJSON("POST", "/api/sessions", bob, map[string]string{"title": "bob's"}, http.StatusCreated, &s)
	aliceKey := e.newKey(alice, "admin laptop").Key
	bobKey := e.newKey(bob, "bob's laptop").Key
	read := func(key string) int {
		resp, _ := e.do("GET", "/api/admin/users/"+bob+"/sessions/"+s.ID, keyHeader(key), "")
		return resp.StatusCode
	}
	if code := read(aliceKey); code != http.StatusNotFound {
		t.Fatalf("admin chat access off: the admin's key reads bob's session: %d", code)
	}
	e.cfg.Privacy.AdminChatAccess = true
	e.writeConfig(e.cfg)
	if _, err := e.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if code := read(bobKey); code != http.StatusForbidden {
		t.Fatalf("a user's key on an admin route: %d", code)
	}
	if code := read(aliceKey); code != http.StatusOK {
		t.Fatalf("admin chat access on: the admin's key: %d", code)
	}
	var audit struct {
		Events []struct{ Actor, Action, SessionID string }
	}
	resp, body := e.do("GET", "/api/me/audit", keyHeader(bobKey), "")
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), &audit); err != nil {
		t.Fatal(err)
	}
	if len(audit.Events) != 1 || audit.Events[0].Actor != alice || audit.Events[0].Action != "session.read" || audit.Events[0].SessionID != s.ID {
		t.Fatalf("bob's audit log: %+v", audit.Events)
	}
}
