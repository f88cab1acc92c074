package controllers

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// secretMemo remembers what reading a Secret told a reconcile, by the
// Secret's resourceVersion: the length of each key's value and, for a token
// Secret, its times and the rotation request it handled. Never a value.
// While the metadata cache (Secrets are watched metadata-only) shows the
// same resourceVersion, the Secret has not changed and is not read again;
// any write moves the resourceVersion, and its watch event brings the
// reconcile back to read it.
type secretMemo struct {
	mu sync.Mutex
	m  map[types.NamespacedName]secretFacts
}

type secretFacts struct {
	resourceVersion string
	keyLen          map[string]int
	token           tokenFacts
}

// tokenFacts is a token Secret without its tokens.
type tokenFacts struct {
	hasCurrent, hasPrevious      bool
	rotatedAt, previousExpiresAt time.Time
	handled                      string
}

func newSecretMemo() *secretMemo { return &secretMemo{m: map[types.NamespacedName]secretFacts{}} }

// lookup returns the facts of a Secret and its metadata. From the memo when
// the cache shows the resourceVersion they were learned at (secret is then
// nil); else read from the API server (secret is what was read). found is
// false when the Secret does not exist.
func (sm *secretMemo) lookup(ctx context.Context, cache client.Reader, live client.Reader, key types.NamespacedName) (
	facts secretFacts, meta client.Object, secret *corev1.Secret, found bool, err error) {
	pom := &metav1.PartialObjectMetadata{}
	pom.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := cache.Get(ctx, key, pom); err == nil {
		sm.mu.Lock()
		f, ok := sm.m[key]
		sm.mu.Unlock()
		if ok && f.resourceVersion == pom.ResourceVersion {
			return f, pom, nil, true, nil
		}
	} else if !apierrors.IsNotFound(err) {
		return secretFacts{}, nil, nil, false, err
	}
	// Not in the cache, or changed since: the API server has the truth.
	s := &corev1.Secret{}
	if err := live.Get(ctx, key, s); err != nil {
		if apierrors.IsNotFound(err) {
			return secretFacts{}, nil, nil, false, nil
		}
		return secretFacts{}, nil, nil, false, err
	}
	f := factsOf(s)
	sm.remember(key, f)
	return f, s, s, true, nil
}

func (sm *secretMemo) remember(key types.NamespacedName, f secretFacts) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if len(sm.m) > 100000 { // bounded: a memo, not a second cache
		clear(sm.m)
	}
	sm.m[key] = f
}

func factsOf(s *corev1.Secret) secretFacts {
	f := secretFacts{resourceVersion: s.ResourceVersion, keyLen: make(map[string]int, len(s.Data))}
	for k, v := range s.Data {
		f.keyLen[k] = len(v)
	}
	parse := func(key string) time.Time {
		t, _ := time.Parse(time.RFC3339, string(s.Data[key]))
		return t
	}
	f.token = tokenFacts{
		hasCurrent:        len(s.Data[gc.TokenKey]) > 0,
		hasPrevious:       len(s.Data[gc.PreviousTokenKey]) > 0,
		rotatedAt:         parse(gc.TokenRotatedAtKey),
		previousExpiresAt: parse(gc.PreviousExpiresAtKey),
		handled:           s.Annotations[handledRotationAnnotation],
	}
	return f
}
