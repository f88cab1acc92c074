package e2e

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/store"
	"github.com/chatgateway/chatgateway-operator/internal/store/pgtest"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// The group-committed ledger under a signal: the real binary under load,
// then SIGTERM (everything committed, the quota's spend equal to the
// ledger's, every lease returned) or SIGKILL (what is lost is counted, and
// the quota still counts at least what the ledger lost).

// loadedGateway runs a gateway on store cfg (the DSN file or path filled
// in by mutate) with clients clients sending one identical request each,
// over and over, until the process stops answering. ok counts the 200s.
type loadedGateway struct {
	proc    *process
	key     []byte
	ok      atomic.Int64
	wg      sync.WaitGroup
	started chan struct{}
}

func loadGateway(t *testing.T, clients int, storeCfg func(dir string) gatewayconfig.Store) (*loadedGateway, gatewayconfig.Store) {
	t.Helper()
	bin := buildGateway(t)
	_, simURL := providersim.Start(t, providersim.Options{APIKey: "sk-oai", Chunks: 4})
	dir := t.TempDir()
	lg := &loadedGateway{key: make([]byte, 32), started: make(chan struct{})}
	_, _ = rand.Read(lg.key)
	if err := os.WriteFile(filepath.Join(dir, "master-key"), lg.key, 0o600); err != nil {
		t.Fatal(err)
	}
	sc := storeCfg(dir)
	config := writeConfig(t, dir, simURL, simURL+"/v1", func(c *gatewayconfig.Config) {
		c.Keys.MasterKeyFile = filepath.Join(dir, "master-key")
		c.Sessions.Store = sc
		c.Quotas = gatewayconfig.Quotas{DailyHardUSD: "1000", TimeZone: "UTC"}
	})
	lg.proc = start(t, bin, config)
	base := "http://" + lg.proc.addr
	var once sync.Once
	for i := range clients {
		lg.wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			body := `{"model":"nova","max_tokens":16,"messages":[{"role":"user","content":"count me"}]}`
			if i%2 == 1 {
				body = `{"model":"nova","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"count me"}]}`
			}
			for {
				req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("X-Forwarded-Email", email)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // the process stopped
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || (i%2 == 1 && !strings.Contains(string(b), "[DONE]")) {
					return // cut by the signal: not counted as answered
				}
				lg.ok.Add(1)
				once.Do(func() { close(lg.started) })
			}
		})
	}
	return lg, sc
}

// ledgerAndQuota reads, from the store the gateway left, the ledger's
// rows and total and the quota's settled spend and what leases still hold.
func ledgerAndQuota(t *testing.T, sc gatewayconfig.Store, key []byte) (rows, ledger, spent, held int64) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, sc, key)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	days, err := st.UsageByDay(ctx, email, now.Add(-24*time.Hour), now.Add(time.Hour), time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range days {
		rows += d.Requests
		ledger += d.CostPicodollars
	}
	// Leases count as held until they expire: read at the present.
	u, err := st.QuotaUsage(ctx, email, now.Add(-24*time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	return rows, ledger, u.SpentPicodollars, u.ReservedPicodollars
}

func storeKinds(t *testing.T) map[string]func(dir string) gatewayconfig.Store {
	kinds := map[string]func(dir string) gatewayconfig.Store{
		"sqlite": func(dir string) gatewayconfig.Store {
			return gatewayconfig.Store{Type: gatewayconfig.StoreEmbedded, Path: filepath.Join(dir, "store.db")}
		},
	}
	if os.Getenv(pgtest.SkipEnv) != "1" {
		kinds["postgres"] = func(dir string) gatewayconfig.Store {
			f := filepath.Join(dir, "dsn")
			if err := os.WriteFile(f, []byte(pgtest.NewDatabase(t)), 0o600); err != nil {
				t.Fatal(err)
			}
			return gatewayconfig.Store{Type: gatewayconfig.StorePostgres, DSNFile: f}
		}
	}
	return kinds
}

// TestSIGTERMSettlesTheLedger: SIGTERM under load lets the requests in
// flight finish, commits every ledger row queued and returns every quota
// lease: the quota's spend is then exactly the ledger's, and every
// request a client saw answered is a row.
func TestSIGTERMSettlesTheLedger(t *testing.T) {
	for kind, sc := range storeKinds(t) {
		t.Run(kind, func(t *testing.T) {
			lg, cfg := loadGateway(t, 8, sc)
			<-lg.started
			time.Sleep(500 * time.Millisecond)
			if err := lg.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := <-lg.proc.exited; err != nil {
				t.Fatalf("exit: %v", err)
			}
			lg.wg.Wait()
			rows, ledger, spent, held := ledgerAndQuota(t, cfg, lg.key)
			t.Logf("%s: %d requests answered, %d ledger rows; ledger %d, quota %d, leases %d picodollars", kind, lg.ok.Load(), rows, ledger, spent, held)
			if rows < lg.ok.Load() || ledger == 0 {
				t.Errorf("%d rows for %d answered requests", rows, lg.ok.Load())
			}
			if spent != ledger || held != 0 {
				t.Errorf("after SIGTERM the quota spent %d and leases hold %d; want the ledger's %d and nothing", spent, held, ledger)
			}
		})
	}
}

// TestSIGKILLLosesBoundedAndNeverUndercounts: SIGKILL under load. The rows
// of requests that ended in the last moments (queued for the group commit,
// or in the batch being committed) are lost; the test counts them and
// logs the figure docs/quotas.md quotes. The quota never counts
// less: each lost request's cost is still in the lease that admitted it,
// which is charged in full when it expires.
func TestSIGKILLLosesBoundedAndNeverUndercounts(t *testing.T) {
	const clients = 16
	for kind, sc := range storeKinds(t) {
		t.Run(kind, func(t *testing.T) {
			lg, cfg := loadGateway(t, clients, sc)
			<-lg.started
			time.Sleep(700 * time.Millisecond)
			if err := lg.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-lg.proc.exited
			lg.wg.Wait()
			rows, ledger, spent, held := ledgerAndQuota(t, cfg, lg.key)
			answered := lg.ok.Load()
			lost := max(answered-rows, 0)
			t.Logf("%s: %d requests answered, %d ledger rows: %d lost; ledger %d, quota %d + leases %d picodollars", kind, answered, rows, lost, ledger, spent, held)
			if rows == 0 {
				t.Fatal("nothing committed")
			}
			unit := ledger / rows // every request is the same and costs the same
			if spent+held < ledger+lost*unit {
				t.Errorf("the quota undercounts: spent %d + leases %d < ledger %d + %d lost × %d", spent, held, ledger, lost, unit)
			}
			// What can be lost is what was queued or committing: at most
			// the writer's queue and one batch (8,192 + 512 rows), and in
			// practice the requests that ended in the writer's last
			// linger (50 ms) and the batch committing, more while the
			// store lags. How many depends on
			// the machine: logged, not enforced.
			if lost > 8192+512 {
				t.Errorf("%d rows lost, more than the writer can hold", lost)
			}
		})
	}
}
