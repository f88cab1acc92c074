package controllers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

// handledRotationAnnotation on the token Secret records the value of the
// ChatGateway's rotate-token annotation that was last acted on, so that a
// value triggers exactly one rotation, across manager restarts too.
const handledRotationAnnotation = "chatgateway.dev/rotate-token-handled"

// masterKeySize is the length of the master key: an AES-256 key's.
const masterKeySize = 32

const (
	defaultRotationInterval = 720 * time.Hour
	defaultGracePeriod      = 10 * time.Minute
)

// tokenPlan is the decision about the gateway token at one point in time.
type tokenPlan struct {
	state   render.TokenState
	handled string // rotate-token value acted on
	rotated string // "", "scheduled", "requested" or "created"
}

// planToken decides, from the current Secret content and the clock, whether
// to mint a token. Pure: the token minter and the time are passed in.
func planToken(cur render.TokenState, handled, requested string, interval, grace time.Duration,
	now time.Time, mint func() string) tokenPlan {
	p := tokenPlan{state: cur, handled: handled}
	switch {
	case cur.Current == "" || cur.RotatedAt.IsZero():
		p.state = render.TokenState{Current: mint(), RotatedAt: now}
		p.handled, p.rotated = requested, "created"
	case requested != "" && requested != handled:
		// The kill switch: a new token, and the old one stops working at once.
		p.state = render.TokenState{Current: mint(), RotatedAt: now}
		p.handled, p.rotated = requested, "requested"
	case !now.Before(cur.RotatedAt.Add(interval)):
		p.state = render.TokenState{Current: mint(), RotatedAt: now, Previous: cur.Current, PreviousExpiresAt: now.Add(grace)}
		p.rotated = "scheduled"
	case cur.Previous != "" && !now.Before(cur.PreviousExpiresAt):
		// The grace period is over: forget the previous token.
		p.state.Previous, p.state.PreviousExpiresAt = "", time.Time{}
	}
	return p
}

// nextWake is when the token needs attention again: the next rotation or
// the end of the previous token's grace period, whichever comes first.
func (p tokenPlan) nextWake(interval time.Duration, now time.Time) time.Duration {
	next := p.state.RotatedAt.Add(interval)
	if p.state.Previous != "" && p.state.PreviousExpiresAt.Before(next) {
		next = p.state.PreviousExpiresAt
	}
	if d := next.Sub(now); d > time.Second {
		return d
	}
	return time.Second
}

func mintToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never happens on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// reconcileToken keeps the gateway-token Secret and sets TokenReady. It
// reads the Secret from the API server (Secrets are cached metadata-only)
// when it changed since the last read, or when a rotation must carry the
// current token over as the previous one.
func (r *ChatGatewayReconciler) reconcileToken(ctx context.Context, st *gatewayState) error {
	gw := st.gw
	interval := durationOr(gw.Spec.Auth.GatewayToken.RotationInterval, defaultRotationInterval)
	grace := durationOr(gw.Spec.Auth.GatewayToken.GracePeriod, defaultGracePeriod)
	now := r.Clock.Now().UTC().Truncate(time.Second)

	key := types.NamespacedName{Namespace: gw.Namespace, Name: render.TokenSecretName(gw)}
	requested := gw.Annotations[v1alpha1.RotateTokenAnnotation]
	facts, _, read, found, err := r.secrets.lookup(ctx, r.Client, r.APIReader, key)
	if err != nil {
		return failed(v1alpha1.ReasonReadFailed, "reading the gateway-token Secret", err)
	}
	// The plan needs the times only; the tokens are read when they must be
	// carried into a new Secret.
	cur, handled := render.TokenState{}, ""
	if found {
		cur, handled = facts.token.state(), facts.token.handled
	}
	p := planToken(cur, handled, requested, interval, grace, now, mintToken)
	secret := render.TokenSecret(gw, p.state)
	// From the memo, unchanged since our last write or read: nothing to do
	// unless the plan changes the token. Read live: apply, which also puts
	// back what someone else changed (the apply cache drops a no-op).
	if !found || read != nil || p.changes(cur) {
		if found && read == nil {
			if cur, handled, err = r.readToken(ctx, gw); err != nil {
				return failed(v1alpha1.ReasonReadFailed, "reading the gateway-token Secret", err)
			}
			p = planToken(cur, handled, requested, interval, grace, now, mintToken)
		} else if read != nil {
			cur, handled = tokenStateOf(read)
			p = planToken(cur, handled, requested, interval, grace, now, mintToken)
		}
		secret = render.TokenSecret(gw, p.state)
		if p.handled != "" {
			secret.Annotations = map[string]string{handledRotationAnnotation: p.handled}
		}
		applied, err := r.applier.apply(ctx, gw, secret, "")
		if err != nil {
			st.conds.False(v1alpha1.ConditionTokenReady, v1alpha1.ReasonApplyFailed,
				fmt.Sprintf("Could not write the gateway-token Secret %q: %s", secret.Name, safeMessage(err)))
			return failed(v1alpha1.ReasonApplyFailed, fmt.Sprintf("applying Secret %q", secret.Name), err)
		}
		if applied != nil {
			r.secrets.remember(key, secretFacts{resourceVersion: applied.GetResourceVersion(), token: tokenFactsOf(p.state, p.handled)})
		}
	}
	// A token made with the gateway is no news; a rotation is.
	switch p.rotated {
	case "scheduled":
		r.Recorder.Eventf(gw, nil, corev1.EventTypeNormal, "TokenRotated", "RotateToken",
			"Rotated the gateway token on schedule; the previous token is accepted until %s", p.state.PreviousExpiresAt.Format(time.RFC3339))
	case "requested":
		r.Recorder.Eventf(gw, nil, corev1.EventTypeNormal, "TokenRotated", "RotateToken",
			"Rotated the gateway token on request (%s); the previous token is revoked", v1alpha1.RotateTokenAnnotation)
	}

	st.tokenGeneration = strconv.FormatInt(p.state.RotatedAt.Unix(), 10)
	st.requeueAfter = minPositive(st.requeueAfter, p.nextWake(interval, now))
	gw.Status.TokenSecretName = secret.Name
	gw.Status.TokenRotatedAt = &metav1.Time{Time: p.state.RotatedAt}
	gw.Status.NextTokenRotation = &metav1.Time{Time: p.state.RotatedAt.Add(interval)}
	st.conds.True(v1alpha1.ConditionTokenReady, v1alpha1.ReasonReady,
		fmt.Sprintf("Token in Secret %q; next rotation at %s", secret.Name, gw.Status.NextTokenRotation.UTC().Format(time.RFC3339)))
	return nil
}

func (r *ChatGatewayReconciler) readToken(ctx context.Context, gw *v1alpha1.ChatGateway) (render.TokenState, string, error) {
	s := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: gw.Namespace, Name: render.TokenSecretName(gw)}, s)
	if apierrors.IsNotFound(err) {
		return render.TokenState{}, "", nil
	}
	if err != nil {
		return render.TokenState{}, "", fmt.Errorf("reading the gateway-token Secret: %w", err)
	}
	cur, handled := tokenStateOf(s)
	return cur, handled, nil
}

func tokenStateOf(s *corev1.Secret) (render.TokenState, string) {
	parse := func(key string) time.Time {
		t, _ := time.Parse(time.RFC3339, string(s.Data[key]))
		return t
	}
	return render.TokenState{
		Current:           string(s.Data[gc.TokenKey]),
		Previous:          string(s.Data[gc.PreviousTokenKey]),
		RotatedAt:         parse(gc.TokenRotatedAtKey),
		PreviousExpiresAt: parse(gc.PreviousExpiresAtKey),
	}, s.Annotations[handledRotationAnnotation]
}

// unread stands for a token that exists but was not read: planning needs
// to know that it is there, not what it is.
const unread = "(not read)"

// state is the token state as far as the times tell.
func (t tokenFacts) state() render.TokenState {
	s := render.TokenState{RotatedAt: t.rotatedAt, PreviousExpiresAt: t.previousExpiresAt}
	if t.hasCurrent {
		s.Current = unread
	}
	if t.hasPrevious {
		s.Previous = unread
	}
	return s
}

func tokenFactsOf(s render.TokenState, handled string) tokenFacts {
	return tokenFacts{hasCurrent: s.Current != "", hasPrevious: s.Previous != "", rotatedAt: s.RotatedAt,
		previousExpiresAt: s.PreviousExpiresAt, handled: handled}
}

// changes reports whether the plan writes a different token Secret.
func (p tokenPlan) changes(cur render.TokenState) bool {
	return p.rotated != "" || p.state.Previous != cur.Previous || !p.state.PreviousExpiresAt.Equal(cur.PreviousExpiresAt)
}

// reconcileKeys creates the master-key Secret once and sets KeysReady. The
// key is never rotated and never replaced: the keys that encrypt stored
// conversations derive from it, so a new key would make every kept
// conversation unreadable. The Secret follows whenDeleted like the store
// claim (no owner under Retain), so a re-created gateway finds the key to
// its retained store. A Secret that does not hold a 32-byte key (a restore
// gone wrong) is reported, and the Deployment is left alone until it is fixed.
func (r *ChatGatewayReconciler) reconcileKeys(ctx context.Context, st *gatewayState) error {
	gw := st.gw
	const typ = v1alpha1.ConditionKeysReady
	name := render.KeysSecretName(gw)
	facts, s, _, found, err := r.secrets.lookup(ctx, r.Client, r.APIReader, types.NamespacedName{Namespace: gw.Namespace, Name: name})
	switch {
	case err != nil:
		return failed(v1alpha1.ReasonReadFailed, fmt.Sprintf("reading the keys Secret %q", name), err)
	case !found:
		return r.createKeys(ctx, st)
	}
	if n := facts.keyLen[gc.MasterKeyKey]; n != masterKeySize {
		st.conds.False(typ, v1alpha1.ReasonMalformedKey, fmt.Sprintf(
			"Secret %q key %q holds %d bytes, not the %d of a master key. It is not replaced: a new key could not read the stored conversations. "+
				"Restore the key from your backup (see README); the gateway's pods are not rolled until then",
			name, gc.MasterKeyKey, n, masterKeySize))
		return nil
	}
	if err := r.followRetention(ctx, gw, s); err != nil {
		return failed(v1alpha1.ReasonApplyFailed, fmt.Sprintf("changing the owner of the keys Secret %q", name), err)
	}
	st.keysOK = true
	st.conds.True(typ, v1alpha1.ReasonReady, keysReadyMessage(gw, name))
	return nil
}

// keysReadyMessage is the same whether the key was created in this
// reconcile or found: a message that changed on the next reconcile would
// cost a status write and say nothing new.
func keysReadyMessage(gw *v1alpha1.ChatGateway, name string) string {
	msg := fmt.Sprintf("Master key in Secret %q", name)
	if retained(gw) {
		msg += "; kept when the ChatGateway is deleted, like the store (whenDeleted: Retain)"
	}
	return msg
}

// createKeys mints the master key. Create, not apply: it must never
// overwrite a key that appeared in the meantime.
func (r *ChatGatewayReconciler) createKeys(ctx context.Context, st *gatewayState) error {
	gw := st.gw
	key := make([]byte, masterKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generating the master key: %w", err)
	}
	s := render.KeysSecret(gw, key)
	if !retained(gw) {
		if err := controllerutil.SetControllerReference(gw, s, r.Scheme); err != nil {
			return err
		}
	}
	if err := r.Create(ctx, s); err != nil {
		return failed(v1alpha1.ReasonApplyFailed, fmt.Sprintf("creating the keys Secret %q", s.Name), err)
	}
	r.applier.recordWrite(s)
	r.secrets.remember(client.ObjectKeyFromObject(s), secretFacts{resourceVersion: s.ResourceVersion, keyLen: map[string]int{gc.MasterKeyKey: len(key)}})
	st.keysOK = true
	st.conds.True(v1alpha1.ConditionKeysReady, v1alpha1.ReasonReady, keysReadyMessage(gw, s.Name))
	return nil
}

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return def
	}
	return d.Duration
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// apiReason gives an API error's reason without echoing request content.
func apiReason(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok {
		return string(s.Status().Reason) + ": " + s.Status().Message
	}
	return err.Error()
}
