package e2e

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/controllers"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/render"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// TestMasterKeyOutlivesTheGateway: a ChatGateway with whenDeleted: Retain
// stores conversations through the real gateway binary, run on what the
// operator made (its gateway.yaml, token and master key, the store on the
// volume of its claim); the ChatGateway is deleted (the garbage collector,
// which envtest lacks, is played) and re-created under the same name; the
// gateway run on the new ChatGateway's children reads the conversations
// back. The same store under any other key gives nothing back: that is what
// losing the key means.
func TestMasterKeyOutlivesTheGateway(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: `make test` builds the control plane and sets it")
	}
	bin := buildGateway(t)
	_, simURL := providersim.Start(t, providersim.Options{})
	logf.SetLogger(logr.Discard())

	env := &envtest.Environment{CRDDirectoryPaths: []string{filepath.Join("..", "..", "config", "crd", "bases")}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := controllers.NewScheme()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Cache: controllers.CacheOptions(), Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.SetupWithManager(mgr, controllers.Options{GatewayImage: "chatgateway:e2e"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = mgr.Start(ctx) }()

	const ns = "default"
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "anthropic-api-key"},
		StringData: map[string]string{"api-key": "sk-ant-e2e"}}))
	must(t, c.Create(ctx, &v1alpha1.ModelProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "anthropic"},
		Spec: v1alpha1.ModelProviderSpec{Type: v1alpha1.ProviderAnthropic,
			APIKeySecretRef: &v1alpha1.SecretKeyRef{Name: "anthropic-api-key", Key: "api-key"},
			Models: []v1alpha1.ModelSpec{{Name: "sonnet", ID: "claude-sonnet-4-5-20250929",
				Pricing: v1alpha1.ModelPricing{InputPerMTok: "3", OutputPerMTok: "15"}}}}}))
	must(t, c.Create(ctx, &v1alpha1.UserAllowlist{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "family"},
		Spec: v1alpha1.UserAllowlistSpec{Users: []v1alpha1.AllowedUser{{Email: email}}}}))
	newGateway := func() *v1alpha1.ChatGateway {
		return &v1alpha1.ChatGateway{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "family"},
			Spec: v1alpha1.ChatGatewaySpec{
				Providers: []v1alpha1.LocalRef{{Name: "anthropic"}}, DefaultModel: "sonnet",
				Auth:       v1alpha1.AuthSpec{AllowlistRef: v1alpha1.LocalRef{Name: "family"}},
				Sessions:   v1alpha1.SessionsSpec{Store: v1alpha1.StoreSpec{Type: v1alpha1.StoreEmbedded, WhenDeleted: v1alpha1.ClaimRetain}},
				Monitoring: v1alpha1.MonitoringSpec{},
			},
		}
	}
	volumes := t.TempDir() // one directory per claim UID: the volume bound to it

	// run plays the kubelet for the gateway's pod: the rendered gateway.yaml,
	// the mounted Secrets as files, the claim's volume at the store path.
	run := func(gw *v1alpha1.ChatGateway, masterKey []byte) *process {
		t.Helper()
		cm, pvc := &corev1.ConfigMap{}, &corev1.PersistentVolumeClaim{}
		key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
		eventually(t, "the children of the ChatGateway", func() error {
			if err := c.Get(ctx, key(render.ConfigMapName(gw)), cm); err != nil {
				return err
			}
			return c.Get(ctx, key(render.PVCName(gw)), pvc)
		})
		conf, err := gc.Parse([]byte(cm.Data[gc.ConfigFileName]))
		if err != nil {
			t.Fatal(err)
		}
		mounts := t.TempDir()
		write := func(name string, data []byte) string {
			p := filepath.Join(mounts, name)
			must(t, os.WriteFile(p, data, 0o600))
			return p
		}
		conf.Providers[0].BaseURL = simURL
		conf.Providers[0].APIKeyFile = write("api-key", []byte("sk-ant-e2e"))
		// The e2e suite's token: this test is about the key and the store.
		conf.Auth.TokenFile = write("token", []byte(token))
		conf.Auth.PreviousTokenFile, conf.Auth.PreviousTokenExpiresAtFile = "", ""
		conf.Keys.MasterKeyFile = write("master-key", masterKey)
		volume := filepath.Join(volumes, string(pvc.UID))
		must(t, os.MkdirAll(volume, 0o700))
		conf.Sessions.Store.Path = filepath.Join(volume, "store.db")
		conf.Listen, conf.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
		b, err := gc.Marshal(conf)
		if err != nil {
			t.Fatal(err)
		}
		return start(t, bin, write("gateway.yaml", b))
	}
	keyOf := func(gw *v1alpha1.ChatGateway) *corev1.Secret {
		s := &corev1.Secret{}
		eventually(t, "the master key", func() error {
			return c.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.KeysSecretName(gw)}, s)
		})
		return s
	}

	gw := newGateway()
	must(t, c.Create(ctx, gw))
	keys := keyOf(gw)
	if len(keys.OwnerReferences) != 0 {
		t.Fatalf("with whenDeleted: Retain the keys Secret must have no owner: %+v", keys.OwnerReferences)
	}
	p := run(gw, keys.Data[gc.MasterKeyKey])
	first := chatTurn(t, "http://"+p.addr+"/api/chat", "what we keep", -1)
	if first.done == nil || first.done.Status != "complete" {
		t.Fatalf("first turn: %+v", first)
	}
	sid := first.done.SessionID
	stop(t, p)

	// Delete the ChatGateway, and collect its garbage as the garbage
	// collector would: everything it owns goes.
	must(t, c.Delete(ctx, gw))
	eventually(t, "the ChatGateway gone", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(gw), &v1alpha1.ChatGateway{}); !apierrors.IsNotFound(err) {
			return errStill
		}
		return nil
	})
	collected := collectGarbage(t, ctx, c, ns, gw.UID)
	if collected == 0 {
		t.Fatal("the garbage collector found nothing the gateway owned")
	}
	kept := &corev1.Secret{}
	must(t, c.Get(ctx, client.ObjectKeyFromObject(keys), kept))
	must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: render.PVCName(gw)}, &corev1.PersistentVolumeClaim{}))

	// A GitOps tool puts it back.
	gw = newGateway()
	must(t, c.Create(ctx, gw))
	eventually(t, "KeysReady on the re-created gateway", func() error {
		must(t, c.Get(ctx, client.ObjectKeyFromObject(gw), gw))
		for _, cond := range gw.Status.Conditions {
			if cond.Type == v1alpha1.ConditionKeysReady && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == gw.Generation {
				return nil
			}
		}
		return errStill
	})
	again := keyOf(gw)
	if string(again.Data[gc.MasterKeyKey]) != string(keys.Data[gc.MasterKeyKey]) || again.UID != keys.UID {
		t.Fatal("the re-created gateway has another master key")
	}
	p = run(gw, again.Data[gc.MasterKeyKey])
	var s struct {
		Messages []struct{ Role, Content, Status string }
	}
	get(t, "http://"+p.addr+"/api/sessions/"+sid, &s)
	if len(s.Messages) != 2 || s.Messages[0].Content != "what we keep" || s.Messages[1].Content != first.text || first.text == "" {
		t.Fatalf("the conversation read back: %+v (the reply was %q)", s.Messages, first.text)
	}
	stop(t, p)

	// The same store under another key: nothing comes back.
	other := make([]byte, 32)
	_, _ = rand.Read(other)
	p = run(gw, other)
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+"/api/sessions/"+sid, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-Email", email)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && strings.Contains(string(body), "what we keep") {
		t.Fatalf("another key read the conversation: %s", body)
	}
}

type stillWaiting struct{}

func (stillWaiting) Error() string { return "not yet" }

var errStill error = stillWaiting{}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func stop(t *testing.T, p *process) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the gateway did not stop")
	}
}

// collectGarbage deletes what the owner with this UID owned, as the garbage
// collector does after the owner is gone (background propagation).
func collectGarbage(t *testing.T, ctx context.Context, c client.Client, ns string, owner types.UID) int {
	t.Helper()
	n := 0
	for _, list := range []client.ObjectList{&corev1.ConfigMapList{}, &corev1.SecretList{}, &corev1.ServiceList{},
		&corev1.PersistentVolumeClaimList{}, &appsv1.DeploymentList{}, &networkingv1.NetworkPolicyList{}} {
		must(t, c.List(ctx, list, client.InNamespace(ns)))
		items, err := meta.ExtractList(list)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range items {
			o := item.(client.Object)
			for _, ref := range o.GetOwnerReferences() {
				if ref.UID == owner {
					must(t, client.IgnoreNotFound(c.Delete(ctx, o)))
					n++
				}
			}
		}
	}
	return n
}
