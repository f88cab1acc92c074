package render

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// family loads testdata/family.yaml: the objects a controller would hand
// to the renderers for a family deployment.
func family(t *testing.T) Inputs {
	t.Helper()
	b, err := os.ReadFile("testdata/family.yaml")
	if err != nil {
		t.Fatal(err)
	}
	in := Inputs{Image: "ghcr.io/chatgateway/chatgateway-operator:v0.1.0", TokenGeneration: "3"}
	for i, doc := range strings.Split(string(b), "\n---\n") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var obj any
		switch tm.Kind {
		case "ChatGateway":
			in.Gateway = &v1alpha1.ChatGateway{}
			obj = in.Gateway
		case "ModelProvider":
			in.Providers = append(in.Providers, v1alpha1.ModelProvider{})
			obj = &in.Providers[len(in.Providers)-1]
		case "UserAllowlist":
			in.Allowlist = &v1alpha1.UserAllowlist{}
			obj = in.Allowlist
		default:
			t.Fatalf("document %d: unexpected kind %q", i, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("document %d (%s): %v", i, tm.Kind, err)
		}
	}
	return in
}

// variants of the family deployment that change what is rendered.
var variants = map[string]func(*Inputs){
	"embedded-oauth2": func(*Inputs) {},
	"embedded-no-oauth2": func(in *Inputs) {
		in.Gateway.Spec.Auth.OAuth2Proxy = nil
	},
	"postgres-oauth2": func(in *Inputs) {
		in.Gateway.Spec.Replicas = ptrTo(int32(2))
		in.Gateway.Spec.Sessions.Store = v1alpha1.StoreSpec{
			Type:         v1alpha1.StorePostgres,
			DSNSecretRef: &v1alpha1.SecretKeyRef{Name: "family-postgres", Key: "dsn"},
		}
	},
}

func variant(t *testing.T, name string) Inputs {
	t.Helper()
	in := family(t)
	variants[name](&in)
	return in
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/render -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got); if the change is intended, run go test ./internal/render -update and review the diff:\n%s", name, diff)
	}
}

func toYAML(obj any, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return marshalYAML(obj)
}

// renderer renders one text from a variant's inputs.
type renderer struct {
	golden  string
	variant string
	render  func(Inputs) ([]byte, error)
}

func litellmYAML(in Inputs) ([]byte, error) {
	for i := range in.Providers {
		if in.Providers[i].Spec.LiteLLM != nil {
			return LiteLLMConfigYAML(&in.Providers[i])
		}
	}
	return nil, fmt.Errorf("no LiteLLM provider")
}

var tokenState = TokenState{
	Current:           "current-token-placeholder",
	Previous:          "previous-token-placeholder",
	RotatedAt:         mustTime("2026-03-01T09:00:00Z"),
	PreviousExpiresAt: mustTime("2026-03-01T09:10:00Z"),
}

// renderers is every rendered text, each with a golden file.
var renderers = []renderer{
	{"gateway-config.yaml", "embedded-oauth2", GatewayConfigYAML},
	{"gateway-config-postgres.yaml", "postgres-oauth2", GatewayConfigYAML},
	{"litellm-config.yaml", "embedded-oauth2", litellmYAML},
	{"litellm-configmap.yaml", "embedded-oauth2", func(in Inputs) ([]byte, error) {
		return toYAML(LiteLLMConfigMap(&in.Providers[1]))
	}},
	{"authenticated-emails", "embedded-oauth2", func(in Inputs) ([]byte, error) { return AuthenticatedEmails(in.Allowlist), nil }},
	{"oauth2-proxy.yaml", "embedded-oauth2", OAuth2ProxyConfigYAML},
	{"oauth2-proxy-args.txt", "embedded-oauth2", func(in Inputs) ([]byte, error) {
		return []byte(strings.Join(OAuth2ProxyArgs(in), "\n") + "\n"), nil
	}},
	{"oauth2-proxy-configmap.yaml", "embedded-oauth2", func(in Inputs) ([]byte, error) { return toYAML(OAuth2ProxyConfigMap(in)) }},
	{"emails-configmap-no-oauth2.yaml", "embedded-no-oauth2", func(in Inputs) ([]byte, error) { return toYAML(OAuth2ProxyConfigMap(in)) }},
	{"gateway-configmap.yaml", "embedded-oauth2", func(in Inputs) ([]byte, error) { return toYAML(GatewayConfigMap(in)) }},
	{"deployment-embedded-oauth2.yaml", "embedded-oauth2", func(in Inputs) ([]byte, error) { return toYAML(Deployment(in)) }},
	{"deployment-embedded-no-oauth2.yaml", "embedded-no-oauth2", func(in Inputs) ([]byte, error) { return toYAML(Deployment(in)) }},
	{"deployment-postgres-oauth2.yaml", "postgres-oauth2", func(in Inputs) ([]byte, error) { return toYAML(Deployment(in)) }},
	{"service-oauth2.yaml", "embedded-oauth2", func(in Inputs) ([]byte, error) { return toYAML(Service(in)) }},
	{"service-no-oauth2.yaml", "embedded-no-oauth2", func(in Inputs) ([]byte, error) { return toYAML(Service(in)) }},
	{"networkpolicy-oauth2.yaml", "embedded-oauth2", func(in Inputs) ([]byte, error) { return toYAML(NetworkPolicy(in)) }},
	{"networkpolicy-no-oauth2.yaml", "embedded-no-oauth2", func(in Inputs) ([]byte, error) { return toYAML(NetworkPolicy(in)) }},
	{"pvc.yaml", "embedded-oauth2", func(in Inputs) ([]byte, error) { return toYAML(PVC(in)) }},
	{"servicemonitor.yaml", "embedded-oauth2", func(in Inputs) ([]byte, error) { return toYAML(ServiceMonitor(in)) }},
	{"prometheusrule.yaml", "embedded-oauth2", func(in Inputs) ([]byte, error) { return toYAML(PrometheusRule(in)) }},
	{"prometheus-rules.yaml", "embedded-oauth2", PrometheusRuleYAML},
	{"dashboard.json", "embedded-oauth2", func(in Inputs) ([]byte, error) { // indented, to read its diffs
		b, err := GrafanaDashboardJSON(in)
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		err = json.Indent(&out, b, "", "  ")
		return out.Bytes(), err
	}},
	{"dashboard-configmap.yaml", "embedded-oauth2", func(in Inputs) ([]byte, error) { return toYAML(GrafanaDashboard(in)) }},
	{"token-secret.yaml", "embedded-oauth2", func(in Inputs) ([]byte, error) {
		return marshalYAML(TokenSecret(in.Gateway, tokenState))
	}},
}

func TestGoldenFiles(t *testing.T) {
	for _, r := range renderers {
		t.Run(r.golden, func(t *testing.T) {
			got, err := r.render(variant(t, r.variant))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, r.golden, got)
		})
	}
}

// TestDeterministic renders everything twice, the second time from inputs
// listed in another order, and expects the same bytes.
func TestDeterministic(t *testing.T) {
	for _, r := range renderers {
		t.Run(r.golden, func(t *testing.T) {
			first, err := r.render(variant(t, r.variant))
			if err != nil {
				t.Fatal(err)
			}
			in := variant(t, r.variant)
			slices.Reverse(in.Allowlist.Spec.Users)
			if r.golden != "litellm-configmap.yaml" && r.golden != "litellm-config.yaml" {
				slices.Reverse(in.Providers)
			}
			second, err := r.render(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, second) {
				t.Errorf("two renders differ:\n%s", cmp.Diff(string(first), string(second)))
			}
		})
	}
}

// TestNoSecretValues puts a canary in everything Secret-like the
// controller holds and checks that no rendered object other than the token
// and keys Secrets carries it.
func TestNoSecretValues(t *testing.T) {
	const canary = "CANARY-7f3a9c-do-not-render"
	for name := range variants {
		t.Run(name, func(t *testing.T) {
			in := variant(t, name)
			// Inputs hold no Secret content by construction; what they do
			// hold and a careless renderer could copy is metadata.
			secretish := map[string]string{"kubectl.kubernetes.io/last-applied-configuration": canary}
			in.Gateway.Annotations = secretish
			in.Allowlist.Annotations = secretish
			for i := range in.Providers {
				in.Providers[i].Annotations = secretish
			}
			for _, r := range renderers {
				if r.variant != name || strings.HasPrefix(r.golden, "token-secret") {
					continue
				}
				got, err := r.render(in)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(got, []byte(canary)) || bytes.Contains(got, []byte(tokenState.Current)) {
					t.Errorf("%s carries a secret value", r.golden)
				}
			}
			tok := TokenSecret(in.Gateway, TokenState{Current: canary, Previous: canary + "-old"})
			if string(tok.Data["token"]) != canary {
				t.Errorf("token Secret does not hold the token")
			}
			keys := KeysSecret(in.Gateway, []byte(canary))
			if string(keys.Data["master-key"]) != canary {
				t.Errorf("keys Secret does not hold the master key")
			}
		})
	}
}

func mustTime(s string) time.Time {
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return v
}
