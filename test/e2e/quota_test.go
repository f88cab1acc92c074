package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store/pgtest"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// TestQuotaAcrossTwoProcesses: two gateway processes share one PostgreSQL
// database. One user's concurrent requests, spread over both and over the
// model API and the stateful chat, are admitted against one daily hard
// limit: the spend never passes it, and Slack hears once about the soft
// limit and once about the hard one, whichever process saw each.
func TestQuotaAcrossTwoProcesses(t *testing.T) {
	if os.Getenv(pgtest.SkipEnv) == "1" {
		t.Skipf("%s=1", pgtest.SkipEnv)
	}
	ctx := context.Background()
	pg, err := pgtest.Start(ctx, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	_, dsn, err := pg.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	posts := map[string]int{}
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct{ Text string }
		_ = json.NewDecoder(r.Body).Decode(&m)
		th := "soft"
		if strings.Contains(m.Text, "hard limit") {
			th = "hard"
		}
		mu.Lock()
		posts[th]++
		mu.Unlock()
	}))
	t.Cleanup(slack.Close)
	count := func(th string) int {
		mu.Lock()
		defer mu.Unlock()
		return posts[th]
	}

	bin := buildGateway(t)
	_, simURL := providersim.Start(t, providersim.Options{ReplyWords: 12, EventDelay: time.Millisecond})
	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	files := map[string]string{"master-key": string(key), "dsn": dsn, "slack": slack.URL}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const hardPico = 10_000_000_000
	config := writeConfig(t, dir, simURL, simURL+"/v1", func(c *gatewayconfig.Config) {
		c.Keys.MasterKeyFile = filepath.Join(dir, "master-key")
		c.Sessions.Store = gatewayconfig.Store{Type: gatewayconfig.StorePostgres, DSNFile: filepath.Join(dir, "dsn")}
		c.Quotas = gatewayconfig.Quotas{DailySoftUSD: "0.0005", DailyHardUSD: "0.01", TimeZone: "UTC", SlackWebhookFile: filepath.Join(dir, "slack")}
	})
	bases := []string{"http://" + start(t, bin, config).addr, "http://" + start(t, bin, config).addr}

	post := func(url, body string) (int, string) {
		req, _ := http.NewRequest("POST", url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Forwarded-Email", email)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var wg sync.WaitGroup
	var served, exhausted sync.Map
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := bases[i%2]
			for j := range 300 {
				url, body := base+"/v1/chat/completions", `{"model":"sonnet","stream":true,"max_tokens":16,"messages":[{"role":"user","content":"a private question"}]}`
				if j%3 == 0 {
					url, body = base+"/api/chat", `{"content":"a private question"}`
				}
				code, out := post(url, body)
				switch {
				case code == 200:
					served.Store(fmt.Sprint(i, "/", j), true)
				case code == 429 && strings.HasPrefix(url, base+"/api/"):
					time.Sleep(time.Millisecond) // the stateful chat is admitted the same way
				case code == 429 && !strings.Contains(out, "held by requests in progress"):
					exhausted.Store(i, true)
					return
				case code == 429:
					time.Sleep(time.Millisecond)
				default:
					t.Errorf("%s: %d %s", url, code, out)
					return
				}
			}
		}()
	}
	wg.Wait()
	n := 0
	served.Range(func(any, any) bool { n++; return true })
	if n == 0 {
		t.Fatal("nothing served")
	}

	// The ledger both processes wrote: never above the hard limit.
	var spent int64
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT CAST(COALESCE(SUM(amount_picodollars), 0) AS BIGINT) FROM quota_spend WHERE user_email = $1", email).Scan(&spent); err != nil {
		t.Fatal(err)
	}
	var ledger int64
	if err := conn.QueryRow(ctx, "SELECT CAST(COALESCE(SUM(cost_picodollars), 0) AS BIGINT) FROM spend WHERE user_email = $1", email).Scan(&ledger); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests served by two processes; quota spend %d, ledger %d, hard limit %d picodollars", n, spent, ledger, hardPico)
	if spent > hardPico || ledger > hardPico {
		t.Fatalf("over the hard limit: quota spend %d, ledger %d", spent, ledger)
	}

	deadline := time.Now().Add(10 * time.Second)
	for (count("soft") < 1 || count("hard") < 1) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for a duplicate to arrive
	if count("soft") != 1 || count("hard") != 1 {
		t.Fatalf("notifications %v, want one per threshold", posts)
	}
}
