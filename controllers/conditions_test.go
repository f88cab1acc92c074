package controllers

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

func TestSummarize(t *testing.T) {
	const gen = 3
	denied := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "gw",
		field.ErrorList{field.Invalid(field.NewPath("spec", "template"), "secret-looking-value", "denied by policy")})
	cases := []struct {
		name string
		set  func(*conditions)
		// want: Ready status and reason, and which of Reconciling/Stalled is True.
		ready               metav1.ConditionStatus
		reason              string
		reconciling, stalle bool
	}{
		{"nothing evaluated", func(*conditions) {}, metav1.ConditionUnknown, v1alpha1.ReasonNotEvaluated, true, false},
		{"all true", func(c *conditions) {
			c.True("A", "Fine", "a")
			c.True("B", "Fine", "b")
		}, metav1.ConditionTrue, v1alpha1.ReasonReady, false, false},
		{"one not evaluated", func(c *conditions) { c.True("A", "Fine", "a") }, metav1.ConditionUnknown, v1alpha1.ReasonNotEvaluated, true, false},
		{"rolling out", func(c *conditions) {
			c.True("A", "Fine", "a")
			c.False("B", v1alpha1.ReasonRollingOut, "1 of 2 updated")
		}, metav1.ConditionFalse, v1alpha1.ReasonRollingOut, true, false},
		{"a missing reference needs a person", func(c *conditions) {
			c.False("A", v1alpha1.ReasonNotFound, "no such provider")
			c.False("B", v1alpha1.ReasonRollingOut, "1 of 2 updated")
		}, metav1.ConditionFalse, v1alpha1.ReasonNotFound, false, true},
		{"what needs a person names Ready's reason", func(c *conditions) {
			c.False("A", v1alpha1.ReasonNotReady, "provider not ready")
			c.False("B", v1alpha1.ReasonMalformedKey, "bad key")
		}, metav1.ConditionFalse, v1alpha1.ReasonMalformedKey, false, true},
		{"a refused apply is stalled", func(c *conditions) {
			c.True("A", "Fine", "a")
			c.True("B", "Fine", "b")
			c.fail(failed(v1alpha1.ReasonApplyFailed, `applying Deployment "gw"`, denied))
		}, metav1.ConditionFalse, v1alpha1.ReasonApplyFailed, false, true},
		{"an unreachable API server is retried", func(c *conditions) {
			c.fail(failed(v1alpha1.ReasonApplyFailed, `applying Service "gw"`, apierrors.NewServiceUnavailable("etcd is down")))
		}, metav1.ConditionFalse, v1alpha1.ReasonApplyFailed, true, false},
		{"a plain error is retried", func(c *conditions) {
			c.fail(errors.New("connection refused"))
		}, metav1.ConditionFalse, v1alpha1.ReasonApplyFailed, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newConditions(gen, "A", "B")
			tc.set(c)
			s := c.summarize()
			if s.ready.Status != tc.ready || s.ready.Reason != tc.reason || s.ready.ObservedGeneration != gen {
				t.Errorf("Ready = %s/%s (gen %d), want %s/%s", s.ready.Status, s.ready.Reason, s.ready.ObservedGeneration, tc.ready, tc.reason)
			}
			if (s.reconciling != nil) != tc.reconciling || (s.stalled != nil) != tc.stalle {
				t.Errorf("Reconciling %v, Stalled %v; want %v, %v", s.reconciling != nil, s.stalled != nil, tc.reconciling, tc.stalle)
			}
			for _, cond := range []*metav1.Condition{s.ready, s.reconciling, s.stalled} {
				if cond != nil && strings.Contains(cond.Message, "secret-looking-value") {
					t.Errorf("%s echoes the refused request's content: %q", cond.Type, cond.Message)
				}
			}
		})
	}
}

// TestWriteTo: conditions a step did not set this time become Unknown, types
// no longer set go, unchanged ones keep their transition time, and
// observedGeneration moves only when Ready or Stalled.
func TestWriteTo(t *testing.T) {
	long := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	dst := []metav1.Condition{
		{Type: "A", Status: metav1.ConditionTrue, Reason: "Fine", Message: "a", ObservedGeneration: 1, LastTransitionTime: long},
		{Type: "B", Status: metav1.ConditionTrue, Reason: "Fine", Message: "b", ObservedGeneration: 1, LastTransitionTime: long},
		{Type: "Gone", Status: metav1.ConditionTrue, Reason: "Old", LastTransitionTime: long},
		{Type: v1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "Old", LastTransitionTime: long},
	}
	c := newConditions(2, "A", "B")
	c.True("A", "Fine", "a")
	if observed := c.writeTo(&dst); observed {
		t.Error("B was not evaluated: the status must not claim generation 2")
	}
	a, b := meta.FindStatusCondition(dst, "A"), meta.FindStatusCondition(dst, "B")
	if !a.LastTransitionTime.Equal(&long) || a.ObservedGeneration != 2 {
		t.Errorf("A: %+v", a)
	}
	if b.Status != metav1.ConditionUnknown || b.ObservedGeneration != 2 {
		t.Errorf("a condition left from generation 1 must be Unknown for generation 2: %+v", b)
	}
	if meta.FindStatusCondition(dst, "Gone") != nil || meta.FindStatusCondition(dst, v1alpha1.ConditionStalled) != nil {
		t.Errorf("stale types kept: %+v", dst)
	}
	if !meta.IsStatusConditionTrue(dst, v1alpha1.ConditionReconciling) {
		t.Errorf("Reconciling must be True while B is unknown: %+v", dst)
	}

	c = newConditions(2, "A", "B")
	c.True("A", "Fine", "a")
	c.True("B", "Fine", "b")
	if !c.writeTo(&dst) || !isReady(dst, 2) || meta.FindStatusCondition(dst, v1alpha1.ConditionReconciling) != nil {
		t.Errorf("all true: %+v", dst)
	}
}

func TestDeploymentAvailability(t *testing.T) {
	progressing := func(reason string, status corev1.ConditionStatus) []appsv1.DeploymentCondition {
		return []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: status, Reason: reason}}
	}
	cases := []struct {
		name     string
		gen      int64
		replicas int32
		status   appsv1.DeploymentStatus
		want     metav1.ConditionStatus
		reason   string
	}{
		{"not yet seen", 2, 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1},
			metav1.ConditionFalse, v1alpha1.ReasonRollingOut},
		{"no status at all", 1, 1, appsv1.DeploymentStatus{}, metav1.ConditionFalse, v1alpha1.ReasonRollingOut},
		{"new pods not updated yet", 2, 2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 2},
			metav1.ConditionFalse, v1alpha1.ReasonRollingOut},
		{"old pod still terminating", 2, 1, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 1},
			metav1.ConditionFalse, v1alpha1.ReasonRollingOut},
		{"updated but not available", 2, 1, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 0},
			metav1.ConditionFalse, v1alpha1.ReasonRollingOut},
		{"rolled out", 2, 1, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
			Conditions: progressing("NewReplicaSetAvailable", corev1.ConditionTrue)}, metav1.ConditionTrue, v1alpha1.ReasonAvailable},
		{"deadline exceeded", 2, 1, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 1,
			Conditions: progressing("ProgressDeadlineExceeded", corev1.ConditionFalse)}, metav1.ConditionFalse, v1alpha1.ReasonProgressDeadlineExceeded},
		{"scaled to zero", 2, 0, appsv1.DeploymentStatus{ObservedGeneration: 2}, metav1.ConditionFalse, v1alpha1.ReasonScaledToZero},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "gw", Generation: tc.gen},
				Spec: appsv1.DeploymentSpec{Replicas: ptr.To(tc.replicas)}, Status: tc.status}
			status, reason, msg := deploymentAvailability(d)
			if status != tc.want || reason != tc.reason {
				t.Errorf("got %s/%s (%s), want %s/%s", status, reason, msg, tc.want, tc.reason)
			}
		})
	}
}

func TestApplyCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newApplyCache()
	c.now = func() time.Time { return now }
	h, other := sha256.Sum256([]byte("request")), sha256.Sum256([]byte("another request"))
	c.add("k", "7", "7", h, "inputs")
	if !c.has("k", "7", h) || !c.ownWrite("k", "7") {
		t.Fatal("a fresh entry must hit")
	}
	if !c.renderedAt("k", "inputs") || !c.sameVersion("k", "7") {
		t.Fatal("a fresh entry must know its inputs and version")
	}
	if c.has("k", "8", h) || c.ownWrite("k", "8") || c.sameVersion("k", "8") {
		t.Error("someone else's write (a new resourceVersion) must miss")
	}
	if c.has("k", "7", other) {
		t.Error("a changed render must miss")
	}
	if c.renderedAt("k", "other inputs") {
		t.Error("other inputs must miss")
	}
	c.renderedFrom("k", "other inputs")
	if !c.renderedAt("k", "other inputs") || !c.has("k", "7", h) {
		t.Error("inputs found to render the same request must hit, and the request still")
	}
	c.add("w", "3", "3", [sha256.Size]byte{}, "")
	if !c.ownWrite("w", "3") || c.has("w", "3", [sha256.Size]byte{}) || c.renderedAt("w", "") {
		t.Error("a write other than an apply is our own, but no apply to skip")
	}
	now = now.Add(applyCacheTTL)
	if c.has("k", "7", h) || c.renderedAt("k", "other inputs") {
		t.Error("an entry past its TTL must miss")
	}
	c.forget("k")
	if c.ownWrite("k", "7") {
		t.Error("a forgotten entry must miss")
	}
}
