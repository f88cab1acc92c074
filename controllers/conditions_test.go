package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
)

func TestSummarizeReady(t *testing.T) {
	cases := []struct {
		name       string
		set        map[string]bool
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		{"all true", map[string]bool{"A": true, "B": true}, metav1.ConditionTrue, ReasonReady},
		{"one false", map[string]bool{"A": true, "B": false}, metav1.ConditionFalse, "B-reason"},
		{"missing", map[string]bool{"A": true}, metav1.ConditionFalse, ReasonReconciling},
		{"first failing wins", map[string]bool{"A": false, "B": false}, metav1.ConditionFalse, "A-reason"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var conds []metav1.Condition
			for _, typ := range []string{"A", "B"} {
				if ok, found := tc.set[typ]; found {
					setCondition(&conds, 3, typ, ok, typ+"-reason", typ+" message")
				}
			}
			summarizeReady(&conds, 3, "A", "B")
			c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
			if c.Status != tc.wantStatus || c.Reason != tc.wantReason || c.ObservedGeneration != 3 {
				t.Fatalf("Ready = %s/%s gen %d, want %s/%s", c.Status, c.Reason, c.ObservedGeneration, tc.wantStatus, tc.wantReason)
			}
			if isReady(conds, 3) != (tc.wantStatus == metav1.ConditionTrue) || isReady(conds, 4) {
				t.Fatalf("isReady disagrees with the condition")
			}
		})
	}
}
