package gateway

// dialect is an API wire format: the caller's (the front) or a provider's.
type dialect uint8

const (
	dialectOpenAI dialect = iota
	dialectAnthropic
)

func (d dialect) String() string {
	if d == dialectAnthropic {
		return "anthropic"
	}
	return "openai"
}
