package controllers

import (
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// conditions is what one reconcile found, for one generation. It starts with
// every condition type the kind owns set to Unknown ("not evaluated"), so a
// step that did not run this time can never leave a stale True behind.
type conditions struct {
	gen   int64
	types []string
	byTyp map[string]metav1.Condition
	// failure is the first step that returned an error.
	failure *stepError
}

func newConditions(gen int64, types ...string) *conditions {
	c := &conditions{gen: gen, types: types, byTyp: make(map[string]metav1.Condition, len(types))}
	for _, t := range types {
		c.byTyp[t] = metav1.Condition{Type: t, Status: metav1.ConditionUnknown, Reason: v1alpha1.ReasonNotEvaluated,
			Message: "Not evaluated: an earlier step did not succeed", ObservedGeneration: gen}
	}
	return c
}

func (c *conditions) set(typ string, status metav1.ConditionStatus, reason, msg string) {
	c.byTyp[typ] = metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: c.gen}
}

func (c *conditions) True(typ, reason, msg string) { c.set(typ, metav1.ConditionTrue, reason, msg) }

func (c *conditions) False(typ, reason, msg string) { c.set(typ, metav1.ConditionFalse, reason, msg) }

func (c *conditions) Unknown(typ, reason, msg string) {
	c.set(typ, metav1.ConditionUnknown, reason, msg)
}

func (c *conditions) isTrue(typ string) bool { return c.byTyp[typ].Status == metav1.ConditionTrue }

// fail records a step's error; the first one decides Ready's reason.
func (c *conditions) fail(err error) {
	if c.failure != nil || err == nil {
		return
	}
	var se *stepError
	if !errors.As(err, &se) {
		se = &stepError{reason: v1alpha1.ReasonApplyFailed, msg: safeMessage(err), err: err}
	}
	c.failure = se
}

// waitingReasons are the False reasons that mean "in progress": something
// that comes by itself. Every other False reason needs a person (Stalled).
var waitingReasons = map[string]bool{
	v1alpha1.ReasonNotReady:     true,
	v1alpha1.ReasonRollingOut:   true,
	v1alpha1.ReasonProgressing:  true,
	v1alpha1.ReasonNotEvaluated: true,
}

// summary is Ready, Reconciling and Stalled as summarize decides them.
type summary struct {
	ready, reconciling, stalled *metav1.Condition
}

// summarize decides Ready, Reconciling and Stalled from the step conditions
// and the first failed step. Pure, so it is table-tested:
//
//   - a failed step: Ready=False with its reason; Stalled if retrying
//     cannot help (the API server refused the request), else Reconciling;
//   - any condition False: Ready=False with the first one's reason and the
//     messages of all that are not True; Stalled when one of them needs a
//     person, else Reconciling;
//   - any condition Unknown: Ready=Unknown, Reconciling;
//   - all True: Ready=True, neither Reconciling nor Stalled.
func (c *conditions) summarize() summary {
	mk := func(typ string, status metav1.ConditionStatus, reason, msg string) *metav1.Condition {
		return &metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: c.gen}
	}
	if f := c.failure; f != nil {
		s := summary{ready: mk(v1alpha1.ConditionReady, metav1.ConditionFalse, f.reason, f.msg)}
		if f.transient() {
			s.reconciling = mk(v1alpha1.ConditionReconciling, metav1.ConditionTrue, f.reason, f.msg+"; retrying")
		} else {
			s.stalled = mk(v1alpha1.ConditionStalled, metav1.ConditionTrue, f.reason, f.msg)
		}
		return s
	}
	var firstFalse, firstStalled, firstUnknown *metav1.Condition
	var msgs []string
	for _, t := range c.types {
		cond := c.byTyp[t]
		switch cond.Status {
		case metav1.ConditionTrue:
			continue
		case metav1.ConditionFalse:
			if firstFalse == nil {
				firstFalse = &cond
			}
			if firstStalled == nil && !waitingReasons[cond.Reason] {
				firstStalled = &cond
			}
		default:
			if firstUnknown == nil {
				firstUnknown = &cond
			}
		}
		msgs = append(msgs, t+": "+cond.Message)
	}
	msg := strings.Join(msgs, "; ")
	switch {
	case firstStalled != nil:
		return summary{
			ready:   mk(v1alpha1.ConditionReady, metav1.ConditionFalse, firstStalled.Reason, msg),
			stalled: mk(v1alpha1.ConditionStalled, metav1.ConditionTrue, firstStalled.Reason, firstStalled.Type+": "+firstStalled.Message),
		}
	case firstFalse != nil:
		return summary{
			ready:       mk(v1alpha1.ConditionReady, metav1.ConditionFalse, firstFalse.Reason, msg),
			reconciling: mk(v1alpha1.ConditionReconciling, metav1.ConditionTrue, firstFalse.Reason, firstFalse.Type+": "+firstFalse.Message),
		}
	case firstUnknown != nil:
		return summary{
			ready:       mk(v1alpha1.ConditionReady, metav1.ConditionUnknown, firstUnknown.Reason, msg),
			reconciling: mk(v1alpha1.ConditionReconciling, metav1.ConditionTrue, firstUnknown.Reason, firstUnknown.Type+": "+firstUnknown.Message),
		}
	}
	return summary{ready: mk(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady, "All conditions are met")}
}

// writeTo merges this reconcile's conditions and their summary into a status'
// conditions, keeping the transition time of those that did not change, and
// returns whether the status now describes its generation (Ready or Stalled),
// which is when status.observedGeneration moves on.
func (c *conditions) writeTo(dst *[]metav1.Condition) (observed bool) {
	s := c.summarize()
	keep := map[string]bool{v1alpha1.ConditionReady: true, v1alpha1.ConditionReconciling: true, v1alpha1.ConditionStalled: true}
	for _, t := range c.types {
		keep[t] = true
		meta.SetStatusCondition(dst, c.byTyp[t])
	}
	meta.SetStatusCondition(dst, *s.ready)
	for typ, cond := range map[string]*metav1.Condition{v1alpha1.ConditionReconciling: s.reconciling, v1alpha1.ConditionStalled: s.stalled} {
		if cond == nil {
			meta.RemoveStatusCondition(dst, typ)
		} else {
			meta.SetStatusCondition(dst, *cond)
		}
	}
	// Types this version no longer sets would be stale forever.
	out := (*dst)[:0]
	for _, cond := range *dst {
		if keep[cond.Type] {
			out = append(out, cond)
		}
	}
	*dst = out
	return s.ready.Status == metav1.ConditionTrue || s.stalled != nil
}

// stepError is a failed step: the reason and a message safe for status
// (no secret, no request content), and the error behind it for the log.
type stepError struct {
	reason, msg string
	err         error
}

func (e *stepError) Error() string { return e.msg + ": " + e.err.Error() }

func (e *stepError) Unwrap() error { return e.err }

// transient reports whether retrying may succeed without anyone acting: the
// API server was unreachable, overloaded or raced with another writer. A
// request it refused (invalid, forbidden, denied by a policy) is not.
func (e *stepError) transient() bool {
	switch apierrors.ReasonForError(e.err) {
	case metav1.StatusReasonInvalid, metav1.StatusReasonForbidden, metav1.StatusReasonBadRequest,
		metav1.StatusReasonUnauthorized, metav1.StatusReasonRequestEntityTooLarge,
		metav1.StatusReasonNotAcceptable, metav1.StatusReasonUnsupportedMediaType, metav1.StatusReasonMethodNotAllowed:
		return false
	}
	return true
}

// failed wraps a step's error with its reason and what it was doing.
func failed(reason, doing string, err error) error {
	return &stepError{reason: reason, msg: doing + ": " + safeMessage(err), err: err}
}

// safeMessage describes an error for status without echoing what was sent:
// the API server's validation messages can quote field values (a ConfigMap's
// content, say), so for those only the reason and the fields are kept.
func safeMessage(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err.Error()
	}
	s := status.Status()
	if s.Reason != metav1.StatusReasonInvalid || s.Details == nil || len(s.Details.Causes) == 0 {
		if s.Reason == metav1.StatusReasonInvalid {
			return fmt.Sprintf("%s (HTTP %d)", s.Reason, s.Code)
		}
		return fmt.Sprintf("%s (HTTP %d): %s", s.Reason, s.Code, s.Message)
	}
	var fields []string
	for _, c := range s.Details.Causes {
		f := c.Field
		if f == "" {
			f = "(object)"
		}
		fields = append(fields, fmt.Sprintf("%s %s", f, c.Type))
	}
	return fmt.Sprintf("%s (HTTP %d): %s", s.Reason, s.Code, strings.Join(fields, ", "))
}

// deploymentAvailability says whether a Deployment has rolled out its current
// generation and its pods are available, from the status the Deployment
// controller writes (as `kubectl rollout status` and kstatus read it).
func deploymentAvailability(d *appsv1.Deployment) (metav1.ConditionStatus, string, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration < d.Generation {
		return metav1.ConditionFalse, v1alpha1.ReasonRollingOut,
			fmt.Sprintf("Deployment %q: the Deployment controller has not yet seen generation %d", d.Name, d.Generation)
	}
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return metav1.ConditionFalse, v1alpha1.ReasonProgressDeadlineExceeded,
				fmt.Sprintf("Deployment %q did not roll out within its progress deadline: see its pods' events", d.Name)
		}
	}
	switch {
	case want == 0:
		return metav1.ConditionFalse, v1alpha1.ReasonScaledToZero,
			fmt.Sprintf("Deployment %q has 0 replicas: nothing serves", d.Name)
	case st.UpdatedReplicas < want:
		return metav1.ConditionFalse, v1alpha1.ReasonRollingOut,
			fmt.Sprintf("Deployment %q: %d of %d pods updated", d.Name, st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return metav1.ConditionFalse, v1alpha1.ReasonRollingOut,
			fmt.Sprintf("Deployment %q: %d old pods still terminating", d.Name, st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		return metav1.ConditionFalse, v1alpha1.ReasonRollingOut,
			fmt.Sprintf("Deployment %q: %d of %d updated pods available", d.Name, st.AvailableReplicas, st.UpdatedReplicas)
	}
	return metav1.ConditionTrue, v1alpha1.ReasonAvailable, fmt.Sprintf("Deployment %q: %d of %d pods available", d.Name, st.AvailableReplicas, want)
}

// isReady reports whether the Ready condition is True for the current generation.
func isReady(conds []metav1.Condition, gen int64) bool {
	c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gen
}
