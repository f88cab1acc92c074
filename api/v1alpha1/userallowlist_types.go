package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// UserRole is what a user may do. Neither role may read another person's
// conversations unless a ChatGateway's privacy toggles allow it.
// +kubebuilder:validation:Enum=Admin;User
type UserRole string

const (
	// RoleAdmin may see everyone's usage and cost (never content).
	RoleAdmin UserRole = "Admin"
	// RoleUser may chat and see their own usage.
	RoleUser UserRole = "User"
)

// UserAllowlistSpec lists who may use the gateways that reference it.
// +kubebuilder:validation:XValidation:rule="self.users.all(u, self.users.exists_one(v, v.email == u.email))",message="each email may appear only once in users"
type UserAllowlistSpec struct {
	// users are the people allowed in, keyed by email.
	// +required
	// +listType=map
	// +listMapKey=email
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	Users []AllowedUser `json:"users"`
}

// AllowedUser is one person allowed to use the gateway.
type AllowedUser struct {
	// email is the address the identity provider asserts, in lower case.
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=254
	// The gateway compares emails in plain ASCII, lower-cased in ASCII
	// only (gatewayconfig.CanonicalEmail): Unicode case folding would make
	// a look-alike such as the Kelvin sign pass for the letter k.
	// +kubebuilder:validation:XValidation:rule="self.matches('^[ -~]*$')",message="email must be written in plain ASCII: a look-alike character such as the Kelvin sign (U+212A) or a no-break space makes it a different address"
	// +kubebuilder:validation:XValidation:rule="self == self.lowerAscii()",message="email must be lower-case, as OAuth2 Proxy passes it on (write alice@example.com, not Alice@Example.com)"
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9.!#$%&*+/=?^_{|}~-]+@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$')",message="email must be a valid address such as alice@example.com"
	Email string `json:"email"`

	// displayName is how the chat page greets the user.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName,omitempty"`

	// role is Admin or User.
	// +optional
	// +kubebuilder:default=User
	Role UserRole `json:"role,omitempty"`

	// quota overrides the ChatGateway's default daily quota for this user.
	// +optional
	Quota *DailyQuota `json:"quota,omitempty"`
}

// UserAllowlistStatus is the observed state of a UserAllowlist.
type UserAllowlistStatus struct {
	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the status was computed from.
	// +optional
	// +kubebuilder:default=-1
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// userCount is the number of users allowed in.
	// +optional
	UserCount int32 `json:"userCount,omitempty"`

	// admins lists the emails with the Admin role, sorted.
	// +optional
	// +listType=atomic
	Admins []string `json:"admins,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ual,categories=chatgateway
// +kubebuilder:printcolumn:name="Users",type=integer,JSONPath=`.status.userCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// UserAllowlist lists the people allowed to use a ChatGateway, with their role
// and daily quota.
type UserAllowlist struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec lists the users.
	// +required
	Spec UserAllowlistSpec `json:"spec"`

	// status is the allowlist's observed state.
	// Until the operator has seen the object, observedGeneration reads -1,
	// so kstatus (Flux, Argo CD) sees a generation not yet observed, not a
	// resource without status that it would call Current.
	// +optional
	// +kubebuilder:default={}
	Status UserAllowlistStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// UserAllowlistList contains a list of UserAllowlist.
type UserAllowlistList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UserAllowlist `json:"items"`
}

func init() {
	SchemeBuilder.Register(&UserAllowlist{}, &UserAllowlistList{})
}
