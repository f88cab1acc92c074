package v1alpha1

// Condition types. Every condition carries the generation it was computed
// for; one that was not evaluated for the current generation is Unknown.
//
// Ready, Reconciling and Stalled follow the kstatus conventions that Flux and
// Argo CD read (sigs.k8s.io/cli-utils/pkg/kstatus): Ready=True only when
// every step succeeded for the current generation and the workload serves;
// Reconciling=True while the operator waits for something that will come by
// itself (a rollout, a provider becoming Ready); Stalled=True when a step
// failed and a person has to act. Reconciling and Stalled are removed, not
// set False, when they do not hold.
const (
	// ConditionReady summarises the other conditions.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the resource is making progress.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when a step failed and cannot succeed as things are.
	ConditionStalled = "Stalled"

	// ChatGateway.
	ConditionProvidersReady  = "ProvidersReady"
	ConditionAllowlistReady  = "AllowlistReady"
	ConditionSecretsResolved = "SecretsResolved"
	ConditionTokenReady      = "TokenReady"
	// ConditionKeysReady says whether the master-key Secret holds a usable key.
	ConditionKeysReady       = "KeysReady"
	ConditionMonitoringReady = "MonitoringReady"
	// ConditionGatewayAvailable says whether the gateway Deployment has rolled
	// out its current generation and its pods are available, as the
	// Deployment controller reports.
	ConditionGatewayAvailable = "GatewayAvailable"

	// ModelProvider.
	ConditionSecretResolved = "SecretResolved"
	// ConditionLiteLLMAvailable says whether the LiteLLM Deployment the
	// operator runs (spec.liteLLM.deployment) has rolled out and is available.
	ConditionLiteLLMAvailable = "LiteLLMAvailable"
)

// Condition reasons.
const (
	ReasonReady    = "Ready"
	ReasonNotReady = "NotReady"
	ReasonNotFound = "NotFound"
	ReasonInvalid  = "Invalid"
	// ReasonProgressing: waiting for something that comes by itself.
	ReasonProgressing = "Progressing"
	// ReasonNotEvaluated: a step did not run for this generation because an
	// earlier one did not succeed.
	ReasonNotEvaluated = "NotEvaluated"
	// ReasonApplyFailed: the API server refused a child or could not be reached.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonRenderFailed: the spec and what it references cannot make a child.
	ReasonRenderFailed = "RenderFailed"
	// ReasonReadFailed: reading a referenced object failed.
	ReasonReadFailed = "ReadFailed"
	ReasonDisabled   = "Disabled"

	ReasonSecretFound     = "SecretFound"
	ReasonSecretNotFound  = "SecretNotFound"
	ReasonKeyNotFound     = "KeyNotFound"
	ReasonNoSecret        = "NoSecretRequired"
	ReasonCRDNotInstalled = "CRDNotInstalled"
	// ReasonCRDNotServed: the CRD exists but discovery does not serve it yet
	// (it was just installed); the operator looks again every few seconds.
	ReasonCRDNotServed = "CRDNotServed"

	// ReasonMalformedKey: the master-key Secret exists but does not hold a
	// 32-byte key. The operator never replaces it.
	ReasonMalformedKey = "MalformedKey"

	// ReasonRollingOut: the Deployment has not yet rolled out the current
	// pod template, or its new pods are not yet available.
	ReasonRollingOut = "RollingOut"
	// ReasonProgressDeadlineExceeded: the Deployment controller gave up
	// waiting for the rollout (pods that never become ready, say).
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	// ReasonScaledToZero: replicas is 0, so nothing serves.
	ReasonScaledToZero = "ScaledToZero"
	ReasonAvailable    = "Available"
)
