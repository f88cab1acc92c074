package translate

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Money paths never trust the body's spelling. Providers decode member
// names case-insensitively and let the last duplicate win, so a body the
// gateway read one way could reach them meaning another: {"max_tokens":1,
// "MAX_TOKENS":64000} admitted for one token and billed for 64,000. A
// caller's body is therefore decoded once, strictly, into the typed form
// of its dialect, and every attempt is built from that form:
//
//   - a duplicate member name, at any depth, is refused;
//   - names match exactly: a case variant of a known member is unknown;
//   - an unknown member is refused, naming it: the typed forms are the
//     allow-list of what the gateway forwards (anthropic_types.go,
//     openai_types.go), and validate refuses the values of known members
//     that the configured prices cannot cover;
//   - numbers must fit their field: 2.0 is not a count, "2" is not a number;
//   - invalid UTF-8 is refused.
//
// The decoder is github.com/go-json-experiment/json, the code that
// encoding/json/v2 is built from, with its defaults and
// RejectUnknownMembers.
var strictOptions = jsonv2.JoinOptions(jsonv2.RejectUnknownMembers(true))

func decodeAnthropic(body []byte) (*anthropicRequest, *Error) {
	var a anthropicRequest
	if err := jsonv2.Unmarshal(body, &a, strictOptions); err != nil {
		return nil, strictError("the Messages API", err)
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	return &a, nil
}

func decodeOpenAI(body []byte) (*openaiRequest, *Error) {
	var o openaiRequest
	if err := jsonv2.Unmarshal(body, &o, strictOptions); err != nil {
		return nil, strictError("the chat completions API", err)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &o, nil
}

// strictError turns a decode error into the caller's 400, naming the
// member by its path (messages[0].content[1].type), never quoting a value
// the caller sent beyond the member's name.
func strictError(api string, err error) *Error {
	bad := func(msg string) *Error { return Errorf(http.StatusBadRequest, msg) }
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		if errors.Is(syn.Err, jsontext.ErrDuplicateName) {
			return bad(fmt.Sprintf("the request body has the member %s more than once; send each member once", memberPath(syn.JSONPointer)))
		}
		return bad(fmt.Sprintf("the request body must be a JSON object, and it is not valid JSON (at byte %d): %v", syn.ByteOffset, syn.Err))
	}
	var sem *jsonv2.SemanticError
	if errors.As(err, &sem) {
		path := memberPath(sem.JSONPointer)
		if errors.Is(sem.Err, jsonv2.ErrUnknownName) {
			name := sem.JSONPointer.LastToken()
			if known := knownCaseVariant(sem.GoType, name); known != "" {
				return bad(fmt.Sprintf("%s is not a member of %s: member names are case-sensitive, and the gateway refuses case variants rather than guess which one a provider would read; use %q", path, api, known))
			}
			return bad(fmt.Sprintf("%s is not a member of %s that this gateway forwards: it forwards only what it can bill for; remove it", path, api))
		}
		if path == "" {
			return bad(fmt.Sprintf("the request body must be a JSON object following %s", api))
		}
		want := ""
		if sem.GoType != nil {
			want = " (want " + kindOf(sem.GoType) + ")"
		}
		return bad(fmt.Sprintf("%s has a value of the wrong type%s", path, want))
	}
	return bad(fmt.Sprintf("the request does not follow %s: %v", api, err))
}

// memberPath writes a JSON pointer as a path a person reads.
func memberPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Quote(tok)[1 : len(strconv.Quote(tok))-1])
	}
	return b.String()
}

// knownCaseVariant is the member of struct t that name spells in another
// case, if any.
func knownCaseVariant(t reflect.Type, name string) string {
	for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice) {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if tag != "" && tag != name && strings.EqualFold(tag, name) {
			return tag
		}
	}
	return ""
}

func kindOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return kindOf(t.Elem())
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

func badRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, fmt.Sprintf(format, args...))
}

// validCap refuses an output cap below one token.
func validCap(name string, v *int64) *Error {
	if v != nil && *v < 1 {
		return badRequest("%s must be at least 1", name)
	}
	return nil
}

// validate refuses what the Messages API allows but the gateway cannot
// bill for: server tools (billed per use), a one-hour cache (written at
// twice the input price, which the configured prices do not say),
// documents (a PDF's pages cost image tokens its bytes do not bound), the
// priority tier, and the Files API's sources.
func (a *anthropicRequest) validate() *Error {
	// null decodes as 0: no cap, and the model's limit is sent.
	if a.MaxTokens < 0 {
		return badRequest("max_tokens must be at least 1")
	}
	if a.ServiceTier != "" && a.ServiceTier != "standard_only" {
		return badRequest("service_tier %q may use the priority tier, which this gateway cannot price; send \"standard_only\" or leave it out", a.ServiceTier)
	}
	if t := a.Thinking; t != nil && t.Type != "enabled" && t.Type != "disabled" {
		return badRequest("thinking.type must be \"enabled\" or \"disabled\"")
	}
	for i, tool := range a.Tools {
		if tool.Type != "" && tool.Type != "custom" {
			return badRequest("tools[%d].type %q is a tool Anthropic defines (a server tool billed per use, or one with a hidden system prompt), which this gateway cannot price; use custom tools", i, tool.Type)
		}
		if err := validCache(fmt.Sprintf("tools[%d]", i), tool.CacheControl); err != nil {
			return err
		}
	}
	if err := validBlocks("system", a.System, false); err != nil {
		return err
	}
	for i, m := range a.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return badRequest("messages[%d].role must be \"user\" or \"assistant\"", i)
		}
		if err := validBlocks(fmt.Sprintf("messages[%d].content", i), m.Content, false); err != nil {
			return err
		}
	}
	return nil
}

func validBlocks(path string, c anthropicContent, inToolResult bool) *Error {
	for j, b := range c {
		at := fmt.Sprintf("%s[%d]", path, j)
		switch b.Type {
		case "text":
		case "image":
			if s := b.Source; s == nil || s.Type != "base64" && s.Type != "url" {
				return badRequest("%s.source must be a base64 or url image source", at)
			}
		case "tool_use", "tool_result", "thinking", "redacted_thinking":
			if inToolResult {
				return badRequest("%s.type %q is not allowed in a tool result", at, b.Type)
			}
		default:
			return badRequest("%s.type %q is not a content block this gateway forwards (it forwards text, image, tool_use, tool_result, thinking and redacted_thinking)", at, b.Type)
		}
		if err := validCache(at, b.CacheControl); err != nil {
			return err
		}
		if b.Content != nil {
			if err := validBlocks(at+".content", *b.Content, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func validCache(at string, cc *anthropicCacheControl) *Error {
	if cc == nil {
		return nil
	}
	if cc.Type != "ephemeral" {
		return badRequest("%s.cache_control.type must be \"ephemeral\"", at)
	}
	if cc.TTL != "" && cc.TTL != "5m" {
		return badRequest("%s.cache_control.ttl %q: a cache that lives longer than five minutes is written at a price the gateway's configuration does not have; leave ttl out or send \"5m\"", at, cc.TTL)
	}
	return nil
}

// validate refuses what chat completions allow but the gateway cannot
// bill for, and output caps it cannot read one way only.
func (o *openaiRequest) validate() *Error {
	if err := validCap("max_tokens", o.MaxTokens); err != nil {
		return err
	}
	if err := validCap("max_completion_tokens", o.MaxCompletionTokens); err != nil {
		return err
	}
	if o.MaxTokens != nil && o.MaxCompletionTokens != nil && *o.MaxTokens != *o.MaxCompletionTokens {
		return badRequest("max_tokens and max_completion_tokens differ; send one of them")
	}
	if o.N != nil && *o.N < 1 {
		return badRequest("n must be at least 1")
	}
	switch o.ServiceTier {
	case "", "default", "flex":
	default:
		return badRequest("service_tier %q may cost more than the configured prices; send \"default\" or \"flex\", or leave it out", o.ServiceTier)
	}
	for _, m := range o.Modalities {
		if m != "text" {
			return badRequest("modalities %q: audio output is priced apart from text, which this gateway cannot bill for; send [\"text\"] or leave it out", m)
		}
	}
	if stop := bytes.TrimSpace(o.Stop); len(stop) > 0 && string(stop) != "null" {
		var one string
		var many []string
		if jsonv2.Unmarshal(stop, &one) != nil && jsonv2.Unmarshal(stop, &many) != nil {
			return badRequest("stop must be a string or a list of strings")
		}
	}
	if tc := bytes.TrimSpace(o.ToolChoice); len(tc) > 0 && string(tc) != "null" {
		var mode string
		var named struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		switch {
		case jsonv2.Unmarshal(tc, &mode) == nil:
			if mode != "auto" && mode != "required" && mode != "none" {
				return badRequest("tool_choice %q is not one of auto, required, none", mode)
			}
		case jsonv2.Unmarshal(tc, &named, strictOptions) == nil && named.Type == "function" && named.Function.Name != "":
		default:
			return badRequest(`tool_choice must be "auto", "required", "none" or {"type":"function","function":{"name":...}}`)
		}
	}
	for i, t := range o.Tools {
		if t.Type != "function" {
			return badRequest("tools[%d].type %q is not a function tool; other tools (web search, custom grammars) are priced apart, which this gateway cannot bill for", i, t.Type)
		}
	}
	for i, m := range o.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			return badRequest("messages[%d].role %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
		for j, p := range m.Content.Parts {
			switch p.Type {
			case "text", "refusal":
			case "image_url":
				if p.ImageURL == nil || p.ImageURL.URL == "" {
					return badRequest("messages[%d].content[%d].image_url.url is required", i, j)
				}
			default:
				return badRequest("messages[%d].content[%d].type %q is not a content part this gateway forwards (it forwards text, image_url and refusal)", i, j, p.Type)
			}
		}
	}
	return nil
}
