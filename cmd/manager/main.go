// Command manager runs the chatgateway-operator: the controllers for
// ChatGateway, ModelProvider and UserAllowlist.
package main

import (
	"flag"
	"os"
	"runtime/debug"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/chatgateway/chatgateway-operator/controllers"
)

// defaultGatewayImage is used when neither --gateway-image nor GATEWAY_IMAGE is set.
const defaultGatewayImage = "ghcr.io/chatgateway/chatgateway-operator:latest"

func main() {
	var (
		metricsAddr string
		probeAddr   string
		leaderElect bool
		secureMeta  bool
		image       string
		concurrent  int
		pprofAddr   string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address of the metrics endpoint; \"0\" disables it.")
	flag.BoolVar(&secureMeta, "metrics-secure", true, "Serve metrics over HTTPS with authentication and authorization.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.StringVar(&image, "gateway-image", os.Getenv("GATEWAY_IMAGE"),
		"Image that runs the gateway when a ChatGateway names none (the operator's own image holds both binaries).")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one manager replica reconciles.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address of the pprof endpoint (off when empty).")
	flag.IntVar(&concurrent, "concurrent-reconciles", 16,
		"Reconciles each controller runs at once. A reconcile mostly waits on the API server, so more than the CPUs help.")
	// The manager's heap is mostly its informer caches, which live as long
	// as the objects do: collecting when the heap has grown by 30% (not
	// Go's default, doubled) keeps the peak resident memory at 500
	// ChatGateways near 61 MiB instead of 73-87 (make bench-operator), for
	// no manager CPU it can tell apart. GOGC in the environment still decides.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(30)
	}
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	scheme := controllers.NewScheme()

	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: secureMeta}
	if secureMeta {
		metricsOpts.FilterProvider = filtersWithAuth
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsOpts,
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "chatgateway-operator.chatgateway.dev",
		Controller:             config.Controller{MaxConcurrentReconciles: concurrent},
		PprofBindAddress:       pprofAddr,
	})
	if err != nil {
		log.Error(err, "Failed to create the manager")
		os.Exit(1)
	}
	if image == "" {
		image = defaultGatewayImage
	}
	if err := controllers.SetupWithManager(mgr, controllers.Options{GatewayImage: image}); err != nil {
		log.Error(err, "Failed to set up the controllers")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "Failed to add the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", readiness(mgr, leaderElect)); err != nil {
		log.Error(err, "Failed to add the readiness check")
		os.Exit(1)
	}
	log.Info("Starting the manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "Manager stopped with an error")
		os.Exit(1)
	}
}
