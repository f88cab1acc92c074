package render

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	gc "github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
)

// TokenState is the content of the token Secret. The controller mints
// tokens and keeps the times; this package only lays them out.
type TokenState struct {
	// Current is the token every request must carry. No trailing newline:
	// OAuth2 Proxy sends the file's bytes as a header value.
	Current string
	// Previous stays valid until PreviousExpiresAt; empty when revoked.
	Previous string
	// RotatedAt is when Current was minted.
	RotatedAt time.Time
	// PreviousExpiresAt is when Previous stops being accepted; zero with no Previous.
	PreviousExpiresAt time.Time
}

// TokenSecret is the token Secret: keys token, previous,
// previous-expires-at and rotated-at (times in RFC 3339, UTC). previous and
// previous-expires-at are absent when there is no previous token, which
// the gateway reads as "none".
func TokenSecret(gw *v1alpha1.ChatGateway, s TokenState) *corev1.Secret {
	data := map[string][]byte{gc.TokenKey: []byte(s.Current)}
	if !s.RotatedAt.IsZero() {
		data[gc.TokenRotatedAtKey] = []byte(s.RotatedAt.UTC().Format(time.RFC3339))
	}
	if s.Previous != "" {
		data[gc.PreviousTokenKey] = []byte(s.Previous)
		if !s.PreviousExpiresAt.IsZero() {
			data[gc.PreviousExpiresAtKey] = []byte(s.PreviousExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: objectMeta(gw, TokenSecretName(gw), ComponentToken),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// KeysSecret is the Secret holding the master key (32 random bytes the
// controller generates once and never rotates: it derives the keys that
// encrypt stored conversations).
func KeysSecret(gw *v1alpha1.ChatGateway, masterKey []byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: objectMeta(gw, KeysSecretName(gw), ComponentKeys),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{gc.MasterKeyKey: masterKey},
	}
}
