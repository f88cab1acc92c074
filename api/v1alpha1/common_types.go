package v1alpha1

// USD is an amount of money in US dollars written as a decimal string, such as
// "0.30" or "15". Money is never a float: the gateway does exact decimal
// arithmetic on these values.
// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?$`
// +kubebuilder:validation:MaxLength=16
type USD string

// Fraction is a share written as a decimal string greater than 0 and at
// most 1, such as "0.05" for 5%.
// +kubebuilder:validation:MaxLength=8
// +kubebuilder:validation:XValidation:rule="self.matches('^(0(\\\\.[0-9]{1,6})?|1(\\\\.0{1,6})?)$')",message="must be a decimal fraction from 0 to 1 with at most 6 decimals, such as 0.05 for 5%"
// +kubebuilder:validation:XValidation:rule="!self.matches('^0(\\\\.0*)?$')",message="must be more than 0, such as 0.05 for 5%"
type Fraction string

// SecretKeyRef points at one key of a Secret in the resource's namespace.
type SecretKeyRef struct {
	// name of the Secret, in the same namespace as the resource.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key within the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// LocalRef names another resource in the same namespace.
type LocalRef struct {
	// name of the resource.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// DailyQuota is a per-day spend limit in USD. Spend above the soft limit
// notifies; spend at the hard limit is refused until the day ends.
// +kubebuilder:validation:XValidation:rule="!has(self.dailySoftUSD) || !has(self.dailyHardUSD) || double(self.dailySoftUSD) <= double(self.dailyHardUSD)",message="dailySoftUSD must not be above dailyHardUSD"
type DailyQuota struct {
	// dailySoftUSD is the spend per day after which the user (and the admins)
	// are notified. Requests still go through. "0" sends no notification;
	// unset on a user inherits the ChatGateway's.
	// +optional
	DailySoftUSD *USD `json:"dailySoftUSD,omitempty"`

	// dailyHardUSD is the spend per day at which further requests are refused
	// with HTTP 429 until the day ends. "0" refuses every model request (how
	// an admin stops someone spending); unset means no hard limit on a
	// ChatGateway, and on a user inherits the ChatGateway's.
	// +optional
	DailyHardUSD *USD `json:"dailyHardUSD,omitempty"`
}
