package main

import (
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
)

// filtersWithAuth protects the metrics endpoint with the API server's
// TokenReview and SubjectAccessReview, as kubebuilder projects do.
var filtersWithAuth = filters.WithAuthenticationAndAuthorization
