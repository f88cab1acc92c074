package routing

// Auto is the model name that asks the gateway to choose, by the ordered
// rules of routing.rules.
const Auto = "auto"

// EstimateTokens is the gateway's one token estimate: four bytes of text a
// token, close for English prose under the common BPE tokenizers and on
// the high side for code and most other languages' scripts. It is an
// estimate, not a bound: the quota reserves an upper bound instead.
func EstimateTokens(textBytes int) int64 { return int64(textBytes+3) / 4 }

// MessageOverheadTokens is what one message's framing (its role and
// separators) adds to the estimate of its text.
const MessageOverheadTokens = 4
