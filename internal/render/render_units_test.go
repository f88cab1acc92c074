package render

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// TestGatewayConfigParses feeds every variant's gateway.yaml to the
// gateway's own parser.
func TestGatewayConfigParses(t *testing.T) {
	for name := range variants {
		t.Run(name, func(t *testing.T) {
			in := variant(t, name)
			b, err := GatewayConfigYAML(in)
			if err != nil {
				t.Fatal(err)
			}
			c, err := gc.Parse(b)
			if err != nil {
				t.Fatalf("the gateway rejects the rendered config: %v\n%s", err, b)
			}
			if c.Providers[0].Name != "anthropic" || c.Providers[1].Name != "litellm-bedrock" {
				t.Errorf("providers out of spec order: %s, %s", c.Providers[0].Name, c.Providers[1].Name)
			}
			if got := c.Providers[0].APIKeyFile; got != "/etc/chatgateway/providers/anthropic/api-key" {
				t.Errorf("anthropic key file = %s", got)
			}
			if c.Users[0].Email != "alice@example.com" || c.Users[0].Role != gc.RoleAdmin || c.Users[0].DailySoftUSD != "2" {
				t.Errorf("first user = %+v", c.Users[0])
			}
			if c.Auth.TokenFile != "/etc/chatgateway/token/token" || c.Keys.MasterKeyFile != "/etc/chatgateway/keys/master-key" {
				t.Errorf("token/key files = %s, %s", c.Auth.TokenFile, c.Keys.MasterKeyFile)
			}
			switch name {
			case "postgres-oauth2":
				if c.Sessions.Store != (gc.Store{Type: gc.StorePostgres, DSNFile: "/etc/chatgateway/store/dsn"}) {
					t.Errorf("store = %+v", c.Sessions.Store)
				}
			default:
				if c.Sessions.Store != (gc.Store{Type: gc.StoreEmbedded, Path: "/var/lib/chatgateway/store.db"}) {
					t.Errorf("store = %+v", c.Sessions.Store)
				}
			}
		})
	}
}

// TestZeroValues renders a ChatGateway as a client could build it in Go,
// without the defaults the API server would add, and expects the CRD's
// defaults in gateway.yaml.
func TestZeroValues(t *testing.T) {
	gw := &v1alpha1.ChatGateway{
		ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: "ns"},
		Spec: v1alpha1.ChatGatewaySpec{
			Providers:    []v1alpha1.LocalRef{{Name: "claude"}},
			DefaultModel: "sonnet",
			Auth:         v1alpha1.AuthSpec{AllowlistRef: v1alpha1.LocalRef{Name: "people"}},
		},
	}
	mp := v1alpha1.ModelProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "claude", Namespace: "ns"},
		Spec: v1alpha1.ModelProviderSpec{
			Type:   v1alpha1.ProviderAnthropic,
			Models: []v1alpha1.ModelSpec{{Name: "sonnet", ID: "claude-sonnet-4-5", Pricing: v1alpha1.ModelPricing{InputPerMTok: "3", OutputPerMTok: "15"}}},
		},
	}
	in := Inputs{Gateway: gw, Providers: []v1alpha1.ModelProvider{mp}, Image: "img"}
	c, err := GatewayConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]any{
		"baseURL":          {c.Providers[0].BaseURL, "https://api.anthropic.com"},
		"apiKeyFile":       {c.Providers[0].APIKeyFile, ""},
		"connect":          {c.Providers[0].Timeouts.Connect.Duration, 5 * time.Second},
		"firstByte":        {c.Providers[0].Timeouts.FirstByte.Duration, 30 * time.Second},
		"cacheRead":        {c.Providers[0].Models[0].Pricing.CacheReadPerMTok, "3"},
		"contextWindow":    {c.Providers[0].Models[0].ContextWindow, int32(200000)},
		"maxOutputTokens":  {c.Providers[0].Models[0].MaxOutputTokens, int32(8192)},
		"retryOn":          {len(c.Failover.RetryOn), 5},
		"cooldown":         {c.Failover.Cooldown.Duration, time.Minute},
		"failureThreshold": {c.Failover.FailureThreshold, int32(3)},
		"requestTimeout":   {c.Failover.RequestTimeout.Duration, 5 * time.Minute},
		"emailHeader":      {c.Auth.EmailHeader, "X-Forwarded-Email"},
		"upstream":         {c.Identity.Upstream, "Email"},
		"metricsEndUser":   {c.Identity.MetricsEndUser, "Email"},
		"scope":            {c.Sessions.Scope, "PerSender"},
		"idleTimeout":      {c.Sessions.IdleTimeout.Duration, 2 * time.Hour},
		"retention":        {c.Sessions.Retention.Duration, 90 * 24 * time.Hour},
		"store":            {c.Sessions.Store.Type, "Embedded"},
		"timeZone":         {c.Quotas.TimeZone, "UTC"},
		"users":            {len(c.Users), 0},
		"slack":            {c.Quotas.SlackWebhookFile, ""},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
	// Every other renderer copes with the zero values too.
	d, err := Deployment(in)
	if err != nil {
		t.Fatal(err)
	}
	if *d.Spec.Replicas != 1 || len(d.Spec.Template.Spec.Containers) != 1 {
		t.Errorf("replicas %d, containers %d", *d.Spec.Replicas, len(d.Spec.Template.Spec.Containers))
	}
	svc, err := Service(in)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Ports[0].Port != 80 || svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("service port %d type %s", svc.Spec.Ports[0].Port, svc.Spec.Type)
	}
	pvc, err := PVC(in)
	if err != nil || pvc.Spec.Resources.Requests.Storage().String() != "1Gi" {
		t.Errorf("pvc = %v, %v", pvc, err)
	}
	for name, f := range map[string]func(Inputs) ([]byte, error){
		"rules": PrometheusRuleYAML, "dashboard": GrafanaDashboardJSON,
	} {
		if _, err := f(in); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if sm, err := ServiceMonitor(in); err != nil || sm.Spec.Endpoints[0].Interval != "30s" {
		t.Errorf("servicemonitor: %v %v", sm, err)
	}
}

func TestGatewayConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Inputs)
		want string
	}{
		"missing provider":      {func(in *Inputs) { in.Providers = in.Providers[:1] }, "ModelProvider litellm-bedrock not given"},
		"unknown default model": {func(in *Inputs) { in.Gateway.Spec.DefaultModel = "gpt-9" }, `defaultModel: "gpt-9" is not a model`},
		"unknown fallback": {func(in *Inputs) {
			in.Gateway.Spec.Fallbacks = []v1alpha1.Fallback{{Model: "sonnet", To: []string{"nope"}}}
		}, `fallbacks[0].to[0]: "nope"`},
		"no gateway": {func(in *Inputs) { in.Gateway = nil }, "no ChatGateway"},
	} {
		t.Run(name, func(t *testing.T) {
			in := family(t)
			tc.edit(&in)
			_, err := GatewayConfigYAML(in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
			if in.Gateway != nil {
				if _, err := Deployment(in); err == nil {
					t.Error("Deployment renders from inputs whose config is invalid")
				}
			}
		})
	}
}

func TestDeployment(t *testing.T) {
	in := family(t)
	d, err := Deployment(in)
	if err != nil {
		t.Fatal(err)
	}
	pod := d.Spec.Template.Spec
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("Embedded store: strategy %s, want Recreate", d.Spec.Strategy.Type)
	}
	if sc := pod.SecurityContext; !*sc.RunAsNonRoot || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", sc)
	}
	for _, c := range pod.Containers {
		sc := c.SecurityContext
		if *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || !*sc.RunAsNonRoot ||
			len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("container %s is not restricted: %+v", c.Name, sc)
		}
	}
	// Each provider's Secret is mounted with only its key, as api-key.
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
		if errs := validation.IsDNS1123Label(v.Name); len(errs) > 0 {
			t.Errorf("volume name %q: %v", v.Name, errs)
		}
	}
	if s := vols["provider-litellm-bedrock"].Secret; s == nil || s.SecretName != "litellm-master-key" ||
		len(s.Items) != 1 || s.Items[0] != (corev1.KeyToPath{Key: "master-key", Path: "api-key"}) {
		t.Errorf("litellm-bedrock key volume = %+v", vols["provider-litellm-bedrock"])
	}
	if pod.Containers[1].Name != OAuth2ProxyContainerName {
		t.Errorf("second container = %s", pod.Containers[1].Name)
	}

	// The pods roll when the allowlist or the token generation changes,
	// and only then.
	hash := d.Spec.Template.Annotations[AnnotationConfigHash]
	again, _ := Deployment(family(t))
	if again.Spec.Template.Annotations[AnnotationConfigHash] != hash {
		t.Error("an unchanged render changes the config hash")
	}
	in2 := family(t)
	in2.Allowlist.Spec.Users = in2.Allowlist.Spec.Users[:2]
	d2, _ := Deployment(in2)
	if d2.Spec.Template.Annotations[AnnotationConfigHash] == hash {
		t.Error("removing a user does not change the config hash")
	}
	in3 := family(t)
	in3.TokenGeneration = "4"
	d3, _ := Deployment(in3)
	if d3.Spec.Template.Annotations[AnnotationTokenGeneration] != "4" || d3.Spec.Template.Annotations[AnnotationConfigHash] != hash {
		t.Errorf("token generation annotations = %v", d3.Spec.Template.Annotations)
	}

	in4 := family(t)
	in4.Image, in4.Gateway.Spec.Image = "", ""
	if _, err := Deployment(in4); err == nil {
		t.Error("no error without an image")
	}
}

func TestServicePorts(t *testing.T) {
	for _, port := range []int32{80, MetricsPort} {
		in := family(t)
		in.Gateway.Spec.Service.Port = port
		svc, err := Service(in)
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.Ports[0].Port == svc.Spec.Ports[1].Port {
			t.Errorf("two Service ports share %d", svc.Spec.Ports[0].Port)
		}
		// The API port leads to the sidecar; "metrics" to the gateway's
		// metrics port, never to its API port.
		if p := svc.Spec.Ports[0]; p.Name != ServicePortName || p.TargetPort.StrVal != OAuth2ProxyPortName {
			t.Errorf("API port = %+v", p)
		}
		if p := svc.Spec.Ports[1]; p.Name != MetricsPortName || p.TargetPort.StrVal != MetricsPortName {
			t.Errorf("metrics port = %+v", p)
		}
	}
}

// TestMetricsOnlyForScrapers: the NetworkPolicy opens the metrics port to
// the scrapers alone, and the API port to nobody but token holders.
func TestMetricsOnlyForScrapers(t *testing.T) {
	for name, tc := range map[string]struct {
		scrapers *v1alpha1.ScraperSelector
		wantPods map[string]string
		wantNS   map[string]string
	}{
		"default: Prometheus pods anywhere": {nil, map[string]string{LabelName: PrometheusPodLabel}, nil},
		"configured": {&v1alpha1.ScraperSelector{
			PodSelector:       metav1.LabelSelector{MatchLabels: map[string]string{"app": "vmagent"}},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}},
		}, map[string]string{"app": "vmagent"}, map[string]string{"kubernetes.io/metadata.name": "monitoring"}},
		"configured without namespaces: any namespace": {&v1alpha1.ScraperSelector{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "vmagent"}},
		}, map[string]string{"app": "vmagent"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			in := family(t)
			in.Gateway.Spec.Monitoring.Scrapers = tc.scrapers
			np, err := NetworkPolicy(in)
			if err != nil {
				t.Fatal(err)
			}
			byPort := map[int32][]networkingv1.NetworkPolicyPeer{}
			for _, r := range np.Spec.Ingress {
				for _, p := range r.Ports {
					byPort[p.Port.IntVal] = append(byPort[p.Port.IntVal], r.From...)
				}
			}
			metrics := byPort[MetricsPort]
			if len(metrics) != 1 || metrics[0].PodSelector == nil || !maps.Equal(metrics[0].PodSelector.MatchLabels, tc.wantPods) ||
				metrics[0].NamespaceSelector == nil || !maps.Equal(metrics[0].NamespaceSelector.MatchLabels, tc.wantNS) {
				t.Errorf("metrics port admits %+v", metrics)
			}
			for _, peer := range byPort[GatewayPort] {
				if peer.PodSelector == nil || peer.PodSelector.MatchLabels[LabelTokenHolder] != "true" || peer.NamespaceSelector != nil {
					t.Errorf("the API port admits %+v", peer)
				}
			}
		})
	}
}

func TestPVCOnlyForEmbedded(t *testing.T) {
	in := variant(t, "postgres-oauth2")
	pvc, err := PVC(in)
	if err != nil || pvc != nil {
		t.Errorf("Postgres store renders a PVC: %v, %v", pvc, err)
	}
	d, _ := Deployment(in)
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("Postgres store: strategy %s, want RollingUpdate", d.Spec.Strategy.Type)
	}
}

func TestLiteLLM(t *testing.T) {
	in := family(t)
	mp := &in.Providers[1]
	b, err := LiteLLMConfigYAML(mp)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ModelList []struct {
			ModelName     string         `json:"model_name"`
			LiteLLMParams map[string]any `json:"litellm_params"`
		} `json:"model_list"`
		LiteLLMSettings map[string]any `json:"litellm_settings"`
	}
	if err := yaml.UnmarshalStrict(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.ModelList) != 5 || got.ModelList[2].ModelName != "nova-micro" ||
		got.ModelList[2].LiteLLMParams["model"] != "bedrock/us.amazon.nova-micro-v1:0" || got.ModelList[2].LiteLLMParams["rpm"] != float64(60) {
		t.Errorf("model_list = %+v", got.ModelList)
	}
	if got.LiteLLMSettings["drop_params"] != true || got.LiteLLMSettings["telemetry"] != false {
		t.Errorf("litellm_settings = %v", got.LiteLLMSettings)
	}
	if name := LiteLLMConfigMapName(mp); name != "litellm-config" {
		t.Errorf("ConfigMap name = %s", name)
	}
	mp.Spec.LiteLLM.ConfigMapName = ""
	if name := LiteLLMConfigMapName(mp); name != "litellm-bedrock-litellm" {
		t.Errorf("default ConfigMap name = %s", name)
	}
	if _, err := LiteLLMConfigYAML(&in.Providers[0]); err == nil {
		t.Error("an Anthropic provider without liteLLM renders a LiteLLM config")
	}
}

// TestYAMLScalars checks that every LiteLLM param reads back as what was
// meant, through the whole renderer and a YAML 1.1 reader (sigs.k8s.io/yaml
// reads YAML 1.1, as LiteLLM's PyYAML does): strings that YAML 1.1 would
// turn into bools, nulls, numbers or dates are quoted; numbers and
// true/false are typed. Keys and model names go the same way.
func TestYAMLScalars(t *testing.T) {
	cases := map[string]any{
		"us-east-1":                         "us-east-1",
		"bedrock/us.amazon.nova-micro-v1:0": "bedrock/us.amazon.nova-micro-v1:0",
		"os.environ/AWS_ACCESS_KEY_ID":      "os.environ/AWS_ACCESS_KEY_ID",
		"no":                                "no",
		"Yes":                               "Yes",
		"ON":                                "ON",
		"y":                                 "y",
		"null":                              "null",
		"~":                                 "~",
		"1:30":                              "1:30",
		"2026-01-31":                        "2026-01-31",
		"1_000":                             "1_000",
		".inf":                              ".inf",
		"0x1F":                              "0x1F",
		"key: value":                        "key: value",
		"# not a comment":                   "# not a comment",
		"trailing:":                         "trailing:",
		`quote"d`:                           `quote"d`,
		"back\\slash":                       "back\\slash",
		"tab\there":                         "tab\there",
		"two\nlines":                        "two\nlines",
		"ünïcödé":                           "ünïcödé",
		"":                                  "",
		"60":                                float64(60),
		"0.5":                               0.5,
		"true":                              true,
		"false":                             false,
		"007":                               "007",
	}
	mp := family(t).Providers[1].DeepCopy()
	mp.Spec.LiteLLM.Models = nil
	i := 0
	for in := range cases {
		// Each value as a param, as a param key and as a model name.
		mp.Spec.LiteLLM.Models = append(mp.Spec.LiteLLM.Models, v1alpha1.LiteLLMModel{
			Name: fmt.Sprintf("m%d-%s", i, in), Params: map[string]string{"model": "openai/x", "v": in, in + "-key": "k"}})
		i++
	}
	b, err := LiteLLMConfigYAML(mp)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ModelList []struct {
			ModelName     string         `json:"model_name"`
			LiteLLMParams map[string]any `json:"litellm_params"`
		} `json:"model_list"`
		LiteLLMSettings map[string]any `json:"litellm_settings"`
	}
	if err := yaml.UnmarshalStrict(b, &got); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if len(got.ModelList) != len(cases) {
		t.Fatalf("%d models read back, want %d", len(got.ModelList), len(cases))
	}
	for i, m := range got.ModelList {
		in := mp.Spec.LiteLLM.Models[i].Params["v"]
		if m.LiteLLMParams["v"] != cases[in] {
			t.Errorf("param %q reads back as %#v, want %#v", in, m.LiteLLMParams["v"], cases[in])
		}
		if m.LiteLLMParams[in+"-key"] != "k" {
			t.Errorf("param key %q does not read back: %v", in+"-key", m.LiteLLMParams)
		}
		if m.ModelName != mp.Spec.LiteLLM.Models[i].Name {
			t.Errorf("model name %q reads back as %q", mp.Spec.LiteLLM.Models[i].Name, m.ModelName)
		}
	}
}

func TestDashboard(t *testing.T) {
	in := family(t)
	b, err := GrafanaDashboardJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		SchemaVersion int    `json:"schemaVersion"`
		UID           string `json:"uid"`
		Templating    struct {
			List []struct {
				Name, Type string
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title      string               `json:"title"`
			Datasource struct{ UID string } `json:"datasource"`
			Targets    []struct {
				Expr       string `json:"expr"`
				Datasource struct{ UID string }
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.SchemaVersion < 39 || len(d.UID) > 40 {
		t.Errorf("schemaVersion %d uid %q", d.SchemaVersion, d.UID)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["end_user"] != "query" {
		t.Errorf("template variables = %v", vars)
	}
	all := ""
	for _, p := range d.Panels {
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource.UID != "${datasource}" {
				t.Errorf("a target of %q does not use the datasource variable", p.Title)
			}
			all += tg.Expr + "\n"
		}
	}
	for _, want := range []string{
		"chatgateway_spend_usd_total", "chatgateway_requests_total", "histogram_quantile(0.99",
		"chatgateway_request_duration_seconds_bucket", "chatgateway_time_to_first_token_seconds_bucket",
		"chatgateway_failovers_total", "chatgateway_quota_used_ratio", "vector(60)", `end_user=~"$end_user"`,
		"[30d] anchored", RecordUserDailySpend,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel queries %s", want)
		}
	}
	cm, err := GrafanaDashboard(in)
	if err != nil {
		t.Fatal(err)
	}
	if cm.Labels[LabelGrafanaDashboard] != "1" || cm.Data["chatgateway-family-family.json"] == "" {
		t.Errorf("dashboard ConfigMap labels %v keys %d", cm.Labels, len(cm.Data))
	}
}

func TestTokenSecret(t *testing.T) {
	gw := family(t).Gateway
	s := TokenSecret(gw, TokenState{Current: "new", RotatedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))})
	if len(s.Data) != 2 || string(s.Data["rotated-at"]) != "2026-03-01T09:00:00Z" {
		t.Errorf("after a kill switch the Secret holds %v", s.Data)
	}
	if s.Name != "family-gateway-token" || s.Namespace != "family" {
		t.Errorf("name %s/%s", s.Namespace, s.Name)
	}
}

func TestVolumeName(t *testing.T) {
	for in, want := range map[string]string{
		"anthropic":             "provider-anthropic",
		"bedrock.us":            "provider-",
		strings.Repeat("a", 60): "provider-",
	} {
		got := volumeName("provider", in)
		if !strings.HasPrefix(got, want) || len(validation.IsDNS1123Label(got)) > 0 {
			t.Errorf("volumeName(%q) = %q", in, got)
		}
	}
	if volumeName("provider", "a.b") == volumeName("provider", "a.c") {
		t.Error("volume names collide")
	}
}

func TestHash(t *testing.T) {
	if Hash([]byte("ab"), []byte("c")) == Hash([]byte("a"), []byte("bc")) {
		t.Error("moving a byte between parts keeps the hash")
	}
	if len(Hash()) != 64 {
		t.Error("not a hex SHA-256")
	}
}

func TestLiteLLMDriftRules(t *testing.T) {
	driftRules := func(in Inputs) []string {
		t.Helper()
		groups, err := ruleGroups(in)
		if err != nil {
			t.Fatal(err)
		}
		var exprs []string
		for _, r := range groups[0].Rules {
			if r.Alert == AlertLiteLLMSpendDrift {
				exprs = append(exprs, r.Expr.String())
			}
		}
		return exprs
	}
	if got := driftRules(family(t)); len(got) != 1 || !strings.Contains(got[0], `litellm_spend_metric_total{namespace="family",service="litellm"}`) ||
		!strings.Contains(got[0], `model="nova-micro"}[1h] anchored), "litellm_model", "us.amazon.nova-micro-v1:0"`) || !strings.Contains(got[0], "> 0.05,") {
		t.Errorf("family: drift rules %v", got)
	}
	for name, c := range map[string]struct {
		mutate func(*Inputs)
		want   int
	}{
		"callback off":            {func(in *Inputs) { in.Providers[1].Spec.LiteLLM.Settings.SuccessCallback = []string{"langfuse"} }, 0},
		"no liteLLM section":      {func(in *Inputs) { in.Providers[1].Spec.LiteLLM = nil }, 0},
		"external URL":            {func(in *Inputs) { in.Providers[1].Spec.BaseURL = "https://litellm.example.com" }, 0},
		"service.namespace":       {func(in *Inputs) { in.Providers[1].Spec.BaseURL = "http://litellm.ai:4000" }, 0},
		"IP address":              {func(in *Inputs) { in.Providers[1].Spec.BaseURL = "http://10.0.0.7:4000" }, 0},
		"short Service name":      {func(in *Inputs) { in.Providers[1].Spec.BaseURL = "http://litellm:4000" }, 1},
		"cluster domain":          {func(in *Inputs) { in.Providers[1].Spec.BaseURL = "http://litellm.ai.svc.cluster.local:4000/v1" }, 1},
		"provider not referenced": {func(in *Inputs) { in.Gateway.Spec.Providers = in.Gateway.Spec.Providers[:1] }, 0},
		"no alias maps to LiteLLM": {func(in *Inputs) {
			for i := range in.Providers[1].Spec.Models {
				in.Providers[1].Spec.Models[i].ID = "elsewhere"
			}
		}, 0},
	} {
		in := family(t)
		in.Providers = []v1alpha1.ModelProvider{*in.Providers[0].DeepCopy(), *in.Providers[1].DeepCopy()}
		c.mutate(&in)
		if got := driftRules(in); len(got) != c.want {
			t.Errorf("%s: %d drift rules, want %d: %v", name, len(got), c.want, got)
		}
	}

	in := family(t)
	in.Providers[1].Spec.BaseURL = "http://litellm.ai.svc.cluster.local:4000/v1"
	if got := driftRules(in); len(got) != 1 || !strings.Contains(got[0], `{namespace="ai",service="litellm"}`) {
		t.Errorf("a LiteLLM in namespace ai: %v", got)
	}
	// Two aliases for one LiteLLM model add up under its label.
	in = family(t)
	in.Providers[1].Spec.Models = append(in.Providers[1].Spec.Models, v1alpha1.ModelSpec{Name: "micro", ID: "nova-micro"})
	if got := driftRules(in); len(got) != 1 || strings.Count(got[0], `"litellm_model", "us.amazon.nova-micro-v1:0"`) != 2 {
		t.Errorf("two aliases of nova-micro: %v", got)
	}

	for _, bad := range []v1alpha1.Fraction{"0", "0.0", "1.5", "5", "abc", "-0.1"} {
		in := family(t)
		in.Gateway.Spec.Monitoring.Alerts.LiteLLMSpendDrift = &bad
		if _, err := PrometheusRule(in); err == nil {
			t.Errorf("liteLLMSpendDrift %q renders", bad)
		}
	}

	for _, c := range []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"model": "bedrock/us.amazon.nova-micro-v1:0"}, "us.amazon.nova-micro-v1:0"},
		{map[string]string{"model": "bedrock/converse/us.amazon.nova-pro-v1:0"}, "converse/us.amazon.nova-pro-v1:0"},
		{map[string]string{"model": "gpt-4o"}, "gpt-4o"},
		{map[string]string{"model": "openrouter/anthropic/claude-sonnet-4.5"}, "anthropic/claude-sonnet-4.5"},
		{map[string]string{"model": "openai/gpt-4o", "custom_llm_provider": "openai"}, "gpt-4o"},
		{map[string]string{"model": "meta-llama/Llama-3.3-70B", "custom_llm_provider": "hosted_vllm"}, "meta-llama/Llama-3.3-70B"},
	} {
		if got := liteLLMModelLabelValue(c.params); got != c.want {
			t.Errorf("LiteLLM model label of %v = %q, want %q", c.params, got, c.want)
		}
	}
}
