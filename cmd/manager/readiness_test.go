package main

import (
	"context"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/chatgateway/chatgateway-operator/controllers"
)

// TestReadiness: /readyz fails until the manager has synced its caches and
// started its controllers, then passes.
func TestReadiness(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: `make test` builds the control plane and sets it")
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{"../../config/crd/bases"}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: controllers.NewScheme(), Cache: controllers.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.SetupWithManager(mgr, controllers.Options{GatewayImage: "test"}); err != nil {
		t.Fatal(err)
	}
	check := readiness(mgr, false)
	probe := func() error { return check(httptest.NewRequest("GET", "/readyz", nil)) }
	if err := probe(); err == nil {
		t.Fatal("ready before the manager started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = mgr.Start(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for probe() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready 30 s after start: %v", probe())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-mgr.Elected():
	default:
		t.Fatal("ready before the controllers were started")
	}
}
