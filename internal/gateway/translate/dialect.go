package translate

// Dialect is an API wire format: the caller's (the front) or a provider's.
type Dialect uint8

// The dialects.
const (
	// OpenAI is chat completions (OpenAI, LiteLLM, vLLM, Ollama …).
	OpenAI Dialect = iota
	// Anthropic is the Messages API.
	Anthropic
)

func (d Dialect) String() string {
	if d == Anthropic {
		return "anthropic"
	}
	return "openai"
}
