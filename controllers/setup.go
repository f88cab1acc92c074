package controllers

import (
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Options configure the controllers.
type Options struct {
	// GatewayImage runs the gateway when a ChatGateway names no image.
	GatewayImage string
	// Clock tells the time for token rotation; the real clock when nil.
	Clock clock.PassiveClock
}

// SetupWithManager registers every reconciler with the manager.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	// One record of the operator's own writes, shared by the controllers
	// that apply children.
	cache := newApplyCache()
	if err := (&ModelProviderReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme()}).SetupWithManager(mgr, cache); err != nil {
		return err
	}
	if err := (&UserAllowlistReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme()}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&ChatGatewayReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: mgr.GetScheme(),
		Recorder:     mgr.GetEventRecorder("chatgateway-operator"),
		Clock:        opts.Clock,
		GatewayImage: opts.GatewayImage,
	}).SetupWithManager(mgr, cache)
}
