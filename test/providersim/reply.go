package providersim

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// segment is one piece of text the model reads, in prompt order.
type segment struct {
	role  string
	text  string
	cache bool // an Anthropic cache_control breakpoint sits on this block
}

// tool is a callable function the request declares.
type tool struct {
	name   string
	schema json.RawMessage
}

// prompt is what both dialects reduce a request to.
type prompt struct {
	model       string
	segments    []segment
	lastUser    string
	tools       []tool
	forcedTool  string // tool_choice naming one tool
	requireTool bool   // tool_choice "any" (Anthropic) or "required" (OpenAI)
	noTools     bool   // tool_choice "none"
	maxTokens   int    // 0: no limit
	stops       []string
	cacheAll    bool // top-level cache_control: the whole prompt is the prefix
	cacheSystem bool // cache_control only on tools: the system prompt is the prefix
	// pictures counts every picture, pictureTokens what they cost;
	// lastPictures are the last user message's (see pictures.go).
	pictures      int
	pictureTokens int
	lastPictures  []picture
}

func words(s string) int { return len(strings.Fields(s)) }

func (p *prompt) inputTokens() int {
	n := 0
	for _, s := range p.segments {
		n += words(s.text)
	}
	return max(n+p.pictureTokens, 1)
}

// reply is the planned answer, independent of dialect.
type reply struct {
	text       string
	tool       *toolCall
	stop       string // end_turn, max_tokens, stop_sequence, tool_use
	stopSeq    string
	outTokens  int
	inputTotal int
}

type toolCall struct {
	name string
	args string // JSON with ": " and ", " separators
}

var filler = strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")

// plan builds the deterministic reply described in the package doc.
// withPreamble puts a short text before a tool call, as Anthropic models do.
func plan(p *prompt, replyWords int, withPreamble bool) reply {
	r := reply{inputTotal: p.inputTokens(), stop: "end_turn"}
	if t, ok := p.pickTool(); ok {
		call := &toolCall{name: t.name, args: placeholderArgs(t.schema)}
		text := ""
		if withPreamble {
			text = "Calling tool " + t.name + "."
		}
		out := words(text) + words(call.args)
		if p.maxTokens == 0 || out <= p.maxTokens {
			r.text, r.tool, r.stop, r.outTokens = text, call, "tool_use", out
			return r
		}
		// The call does not fit: only the preamble, cut to max_tokens, remains.
		r.text = firstWords(text, p.maxTokens)
		r.stop = "max_tokens"
		r.outTokens = words(r.text)
		return r
	}

	if text, ok := echoed(p.lastUser); ok {
		r.text = text
	} else if strings.Contains(p.lastUser, picturesMarker) {
		r.text = describePictures(p.lastPictures)
	} else {
		w := strings.Fields(fmt.Sprintf("Simulated reply from %s to %d input tokens.", p.model, r.inputTotal))
		for i := 0; len(w) < replyWords; i++ {
			w = append(w, filler[i%len(filler)])
		}
		r.text = strings.Join(w, " ")
	}
	if seq, at := firstStop(r.text, p.stops); at >= 0 {
		r.text = r.text[:at]
		r.stop, r.stopSeq = "stop_sequence", seq
	}
	if p.maxTokens > 0 && words(r.text) > p.maxTokens {
		r.text = firstWords(r.text, p.maxTokens)
		r.stop, r.stopSeq = "max_tokens", ""
	}
	r.outTokens = words(r.text)
	return r
}

// pickTool decides whether the reply calls a tool: on a [[tool]] marker, or
// whenever tool_choice forces one, as the real APIs do.
func (p *prompt) pickTool() (tool, bool) {
	if len(p.tools) == 0 || p.noTools {
		return tool{}, false
	}
	m := toolMarkerRE.FindStringSubmatch(p.lastUser)
	if m == nil && p.forcedTool == "" && !p.requireTool {
		return tool{}, false
	}
	want := p.forcedTool
	if want == "" && m != nil {
		want = m[1]
	}
	for _, t := range p.tools {
		if want == "" || t.name == want {
			return t, true
		}
	}
	return p.tools[0], true
}

func firstStop(text string, stops []string) (string, int) {
	best, at := "", -1
	for _, s := range stops {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && (at < 0 || i < at) {
			best, at = s, i
		}
	}
	return best, at
}

// echoMarker makes the reply the text that follows it in the last user
// message, byte for byte: tests that drive a client (the chat page) ask
// for the exact reply they need, Markdown included.
const echoMarker = "[[echo]]"

// echoed returns what follows the echo marker, less one line break or
// space right after it.
func echoed(lastUser string) (string, bool) {
	_, after, ok := strings.Cut(lastUser, echoMarker)
	if !ok {
		return "", false
	}
	for _, sep := range []string{"\r\n", "\n", " "} {
		if rest, cut := strings.CutPrefix(after, sep); cut {
			return rest, true
		}
	}
	return after, true
}

// wordEnds returns the byte offset just past each word of s.
func wordEnds(s string) []int {
	var ends []int
	in := false
	for i, r := range s {
		space := unicode.IsSpace(r)
		if in && space {
			ends = append(ends, i)
		}
		in = !space
	}
	if in {
		ends = append(ends, len(s))
	}
	return ends
}

// firstWords keeps s up to the end of its n-th word, spacing and line
// breaks as they were.
func firstWords(s string, n int) string {
	ends := wordEnds(s)
	if n <= 0 || len(ends) == 0 {
		return ""
	}
	if len(ends) <= n {
		return strings.TrimRightFunc(s, unicode.IsSpace)
	}
	return s[:ends[n-1]]
}

// placeholderArgs renders one placeholder per schema property, keys sorted,
// with the ": " and ", " separators real models tend to emit.
func placeholderArgs(schema json.RawMessage) string {
	var s struct {
		Properties map[string]struct {
			Type any `json:"type"`
		} `json:"properties"`
	}
	_ = json.Unmarshal(schema, &s)
	keys := make([]string, 0, len(s.Properties))
	for k := range s.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		kj, _ := json.Marshal(k)
		b.Write(kj)
		b.WriteString(": ")
		typ, _ := s.Properties[k].Type.(string)
		if list, ok := s.Properties[k].Type.([]any); ok && len(list) > 0 {
			typ, _ = list[0].(string)
		}
		switch typ {
		case "integer", "number":
			b.WriteString("1")
		case "boolean":
			b.WriteString("true")
		case "array":
			b.WriteString("[]")
		case "object":
			b.WriteString("{}")
		case "null":
			b.WriteString("null")
		default:
			b.WriteString(`"simulated"`)
		}
	}
	b.WriteString("}")
	return b.String()
}

// splitWords cuts text into at most n pieces on word boundaries, the
// whitespace before a word going with it; joined they give back text
// exactly, so streamed deltas accumulate to the same reply.
func splitWords(text string, n int) []string {
	ends := wordEnds(text)
	if len(ends) == 0 {
		return nil
	}
	n = max(1, min(n, len(ends)))
	pieces := make([]string, 0, n)
	start := 0
	for i := range n {
		end := ends[(i+1)*len(ends)/n-1]
		if i == n-1 {
			end = len(text)
		}
		pieces = append(pieces, text[start:end])
		start = end
	}
	return pieces
}

// splitBytes cuts s into at most n pieces on rune boundaries, for partial JSON.
func splitBytes(s string, n int) []string {
	if s == "" {
		return nil
	}
	n = max(1, min(n, utf8.RuneCountInString(s)))
	var pieces []string
	size := (len(s) + n - 1) / n
	for len(s) > 0 {
		end := min(size, len(s))
		for end < len(s) && !utf8.RuneStart(s[end]) {
			end++
		}
		pieces = append(pieces, s[:end])
		s = s[end:]
	}
	return pieces
}

// prefixHash identifies a prompt prefix for the simulated caches.
func prefixHash(model string, segs []segment) [32]byte {
	h := sha256.New()
	h.Write([]byte(model))
	for _, s := range segs {
		fmt.Fprintf(h, "\x00%s\x00%d:%s", s.role, len(s.text), s.text)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}
