package controllers

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

// Reasons shared by the reconcilers.
const (
	ReasonReady       = "Ready"
	ReasonNotReady    = "NotReady"
	ReasonNotFound    = "NotFound"
	ReasonReconciling = "Reconciling"
	ReasonApplyFailed = "ApplyFailed"
	ReasonInvalid     = "Invalid"
)

// setCondition records a condition for the object's current generation.
func setCondition(conds *[]metav1.Condition, gen int64, typ string, ok bool, reason, msg string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen,
	})
}

// summarizeReady sets Ready from the given condition types: True when all of
// them are True, otherwise False with the first failing condition's reason and
// every failing condition's message, so one look tells a person what to fix.
func summarizeReady(conds *[]metav1.Condition, gen int64, types ...string) {
	var reason string
	var msgs []string
	for _, t := range types {
		c := meta.FindStatusCondition(*conds, t)
		switch {
		case c == nil:
			if reason == "" {
				reason = ReasonReconciling
			}
			msgs = append(msgs, t+" has not been evaluated yet")
		case c.Status != metav1.ConditionTrue:
			if reason == "" {
				reason = c.Reason
			}
			msgs = append(msgs, t+": "+c.Message)
		}
	}
	if len(msgs) == 0 {
		setCondition(conds, gen, v1alpha1.ConditionReady, true, ReasonReady, "All conditions are met")
		return
	}
	setCondition(conds, gen, v1alpha1.ConditionReady, false, reason, strings.Join(msgs, "; "))
}

// isReady reports whether the Ready condition is True for the current generation.
func isReady(conds []metav1.Condition, gen int64) bool {
	c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gen
}
