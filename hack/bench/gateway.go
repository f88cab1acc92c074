package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/render"
	"github.com/chatgateway/chatgateway-operator/internal/store/pgtest"
)

const gatewayToken = "bench-token-0123456789abcdef0123456789"

// benchModel is the alias (and upstream id) the requests name.
func benchModel(anthropic bool) string {
	if anthropic {
		return "claude-haiku-4-5"
	}
	return model
}

// renderConfig renders gateway.yaml as the operator would for a ChatGateway
// in front of the simulator, then lays out the files the pod would mount.
func renderConfig(o options, store, simURL, dir string, pg *postgres) (*gc.Config, error) {
	typ, base := v1alpha1.ProviderOpenAICompatible, simURL+"/v1"
	if o.anthropic {
		typ, base = v1alpha1.ProviderAnthropic, simURL
	}
	mp := v1alpha1.ModelProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "sim", Namespace: "default"},
		Spec: v1alpha1.ModelProviderSpec{
			Type:            typ,
			BaseURL:         base,
			APIKeySecretRef: &v1alpha1.SecretKeyRef{Name: "sim-key", Key: "api-key"},
			Models: []v1alpha1.ModelSpec{{
				Name: benchModel(o.anthropic), ID: benchModel(o.anthropic),
				Pricing: v1alpha1.ModelPricing{InputPerMTok: "0.80", OutputPerMTok: "4.00", CacheReadPerMTok: ptr.To[v1alpha1.USD]("0.08"), CacheWritePerMTok: ptr.To[v1alpha1.USD]("1.00")},
			}},
		},
	}
	al := v1alpha1.UserAllowlist{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"},
		Spec:       v1alpha1.UserAllowlistSpec{Users: []v1alpha1.AllowedUser{{Email: benchUser, Role: v1alpha1.RoleUser}}},
	}
	cgw := &v1alpha1.ChatGateway{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"},
		Spec: v1alpha1.ChatGatewaySpec{
			Replicas:     ptr.To[int32](1),
			Providers:    []v1alpha1.LocalRef{{Name: "sim"}},
			DefaultModel: benchModel(o.anthropic),
			Auth:         v1alpha1.AuthSpec{AllowlistRef: v1alpha1.LocalRef{Name: "bench"}},
			// A daily quota far from its limit: every request is admitted
			// and settled, none refused.
			Quotas: v1alpha1.QuotaSpec{DailyQuota: v1alpha1.DailyQuota{DailySoftUSD: ptr.To[v1alpha1.USD]("50000"), DailyHardUSD: ptr.To[v1alpha1.USD]("100000")}},
		},
	}
	if store == "postgres" {
		cgw.Spec.Sessions.Store = v1alpha1.StoreSpec{Type: v1alpha1.StorePostgres, DSNSecretRef: &v1alpha1.SecretKeyRef{Name: "dsn", Key: "dsn"}}
		cgw.Spec.Replicas = ptr.To[int32](2)
	}
	c, err := render.GatewayConfig(render.Inputs{Gateway: cgw, Providers: []v1alpha1.ModelProvider{mp}, Allowlist: &al, Image: "bench"})
	if err != nil {
		return nil, err
	}
	write := func(name string, b []byte) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, b, 0o600)
	}
	if c.Auth.TokenFile, err = write("token", []byte(gatewayToken)); err != nil {
		return nil, err
	}
	c.Auth.PreviousTokenFile, c.Auth.PreviousTokenExpiresAtFile = "", ""
	if c.Providers[0].APIKeyFile, err = write("api-key", []byte(simKey)); err != nil {
		return nil, err
	}
	switch store {
	case "none":
		// Without the master key there is no store: the quota lives in
		// memory and the ledger nowhere.
		c.Keys.MasterKeyFile = ""
		c.Sessions.Store.Path = filepath.Join(dir, "unused.db")
	default:
		if c.Keys.MasterKeyFile, err = write("master-key", masterKey()); err != nil {
			return nil, err
		}
		if store == "sqlite" {
			c.Sessions.Store.Path = filepath.Join(dir, "store.db")
		} else {
			name, dsn, err := pg.server.CreateDatabase(context.Background())
			if err != nil {
				return nil, err
			}
			_ = name
			if c.Sessions.Store.DSNFile, err = write("dsn", []byte(dsn)); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// masterKey is 32 random bytes, as the operator's keys Secret holds.
func masterKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return k
}

func startGateway(ctx context.Context, o options, pin pinning, store, simURL string, pg *postgres) (proxy, error) {
	dir := filepath.Join(o.out, "gateway-"+store)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return proxy{}, err
	}
	c, err := renderConfig(o, store, simURL, dir, pg)
	if err != nil {
		return proxy{}, err
	}
	addr, err := freeAddr()
	if err != nil {
		return proxy{}, err
	}
	c.Listen, c.MetricsListen = addr, "127.0.0.1:0"
	b, err := gc.Marshal(c)
	if err != nil {
		return proxy{}, err
	}
	cfgPath := filepath.Join(dir, gc.ConfigFileName)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return proxy{}, err
	}
	argv := []string{o.gateway, "--config", cfgPath, "--log-level", "warn"}
	debug := ""
	if o.profile != "" {
		if debug, err = freeAddr(); err != nil {
			return proxy{}, err
		}
		argv = append(argv, "--debug-listen", debug)
	}
	p, err := start(ctx, pin.wrap(pin.proxy, argv), nil, filepath.Join(dir, "gateway.log"), addr, "/readyz")
	if err != nil {
		return proxy{}, err
	}
	path := "/v1/chat/completions"
	h := http.Header{"Authorization": {"Bearer " + gatewayToken}, "X-Forwarded-Email": {benchUser}}
	if o.anthropic {
		path = "/v1/messages"
		h = http.Header{"X-Api-Key": {gatewayToken}, "Anthropic-Version": {"2023-06-01"}, "X-Forwarded-Email": {benchUser}}
	}
	plain, stream := requestBodies(o.anthropic)
	return proxy{label: "gateway, store " + store, target: newTarget(addr, path, h, plain, stream), proc: p, debug: debug}, nil
}

// postgres is a throwaway local server with fsync on, as in production.
type postgres struct{ server *pgtest.Server }

func startPostgres(ctx context.Context) (*postgres, error) {
	s, err := pgtest.Start(ctx, pgtest.Options{Durable: true})
	if err != nil {
		return nil, fmt.Errorf("starting PostgreSQL: %w", err)
	}
	return &postgres{server: s}, nil
}

func (p *postgres) stop() { _ = p.server.Stop() }
