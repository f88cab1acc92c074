package providersim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

type openaiRequest struct {
	Model         string          `json:"model"`
	Messages      []openaiMessage `json:"messages"`
	Stream        bool            `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	Tools               []struct {
		Type     string `json:"type"`
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
}

type openaiMessage struct {
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	ToolCalls []struct {
		Function struct {
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

// contentText reads content that is a string, null, or a list of parts.
func (m openaiMessage) contentText() (string, error) {
	raw := bytes.TrimSpace(m.Content)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", err
	}
	var texts []string
	for _, p := range parts {
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n"), nil
}

func (req *openaiRequest) lastUserText() string {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == "user" {
			t, _ := req.Messages[i].contentText()
			return t
		}
	}
	return ""
}

func (req *openaiRequest) includeUsage() bool {
	return req.StreamOptions != nil && req.StreamOptions.IncludeUsage
}

var openaiRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

// toPrompt validates the request the way the chat completions API does; one
// segment per message, since OpenAI caches on message prefixes.
func (req *openaiRequest) toPrompt() (*prompt, *apiError) {
	bad := func(param, msg string) (*prompt, *apiError) {
		return nil, &apiError{status: http.StatusBadRequest, param: param, msg: msg}
	}
	switch {
	case req.Model == "":
		return bad("", "you must provide a model parameter")
	case len(req.Messages) == 0:
		return nil, &apiError{status: http.StatusBadRequest, param: "messages", code: "missing_required_parameter", msg: "Missing required parameter: 'messages'."}
	case req.StreamOptions != nil && !req.Stream:
		return bad("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	}
	p := &prompt{model: req.Model}
	if req.MaxCompletionTokens != nil {
		p.maxTokens = *req.MaxCompletionTokens
	} else if req.MaxTokens != nil {
		p.maxTokens = *req.MaxTokens
	}
	if (req.MaxCompletionTokens != nil || req.MaxTokens != nil) && p.maxTokens < 1 {
		return bad("max_tokens", fmt.Sprintf("Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got %d instead.", p.maxTokens))
	}
	if stop := bytes.TrimSpace(req.Stop); len(stop) > 0 && string(stop) != "null" {
		var one string
		if json.Unmarshal(stop, &one) == nil {
			p.stops = []string{one}
		} else if json.Unmarshal(stop, &p.stops) != nil {
			return bad("stop", "Invalid type for 'stop': expected a string or an array of strings.")
		}
	}
	for i, m := range req.Messages {
		if !openaiRoles[m.Role] {
			return bad(fmt.Sprintf("messages[%d].role", i), fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.", m.Role))
		}
		text, err := m.contentText()
		if err != nil {
			return bad(fmt.Sprintf("messages[%d].content", i), "Invalid type for content: expected a string or an array of content parts.")
		}
		pics, perr := m.pictures()
		if perr != nil {
			return bad(fmt.Sprintf("messages[%d].content", i), perr.Error())
		}
		for _, pic := range pics {
			p.pictures++
			p.pictureTokens += pic.tokens
		}
		for _, tc := range m.ToolCalls {
			text += " " + tc.Function.Arguments
		}
		p.segments = append(p.segments, segment{role: m.Role, text: text})
		if m.Role == "user" {
			p.lastUser = text
			p.lastPictures = pics
		}
	}
	if req.Messages[len(req.Messages)-1].Role != "user" {
		p.lastUser = "" // answering a tool result: the [[tool]] marker is spent
	}
	for _, t := range req.Tools {
		if t.Function.Name != "" {
			p.tools = append(p.tools, tool{name: t.Function.Name, schema: t.Function.Parameters})
		}
	}
	if tc := bytes.TrimSpace(req.ToolChoice); len(tc) > 0 {
		var mode string
		var named struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if json.Unmarshal(tc, &mode) == nil {
			p.noTools = mode == "none"
			p.requireTool = mode == "required"
		} else if json.Unmarshal(tc, &named) == nil {
			p.forcedTool = named.Function.Name
		}
	}
	return p, nil
}

type openaiUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
		AudioTokens  int `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens          int `json:"reasoning_tokens"`
		AudioTokens              int `json:"audio_tokens"`
		AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

// cachedTokens is the longest message prefix seen before with at least
// OpenAICacheMinTokens words; it records this prompt's prefixes for later.
func (s *Server) openaiCachedTokens(p *prompt, toolSig string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cached, total := 0, 0
	for i := range p.segments {
		total += words(p.segments[i].text)
		if total < s.opts.OpenAICacheMinTokens {
			continue
		}
		key := prefixHash(p.model+"\x00"+toolSig, p.segments[:i+1])
		if s.oaiCache[key] {
			cached = total
		}
		s.oaiCache[key] = true
	}
	return cached
}

type openaiToolCall struct {
	Index    *int   `json:"index,omitempty"` // streaming only
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type openaiCompletion struct {
	ID                string         `json:"id"`
	Object            string         `json:"object"`
	Created           int64          `json:"created"`
	Model             string         `json:"model"`
	Choices           []openaiChoice `json:"choices"`
	Usage             openaiUsage    `json:"usage"`
	ServiceTier       string         `json:"service_tier"`
	SystemFingerprint string         `json:"system_fingerprint"`
}

type openaiChoice struct {
	Index   int `json:"index"`
	Message struct {
		Role        string           `json:"role"`
		Content     *string          `json:"content"`
		Refusal     *string          `json:"refusal"`
		ToolCalls   []openaiToolCall `json:"tool_calls,omitempty"`
		Annotations []any            `json:"annotations"`
	} `json:"message"`
	Logprobs     any    `json:"logprobs"`
	FinishReason string `json:"finish_reason"`
}

var finishReasons = map[string]string{"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}

func (s *Server) handleOpenAI(w http.ResponseWriter, r *http.Request, body []byte) {
	d := openaiDialect{}
	if !d.authorized(w, r, s) {
		return
	}
	var req openaiRequest
	parseErr := json.Unmarshal(body, &req)

	f, err := s.nextFault(ProviderOpenAI, req.lastUserText())
	if err != nil {
		d.writeError(w, s, apiError{status: http.StatusBadRequest, msg: err.Error()})
		return
	}
	var (
		cc      *openaiCompletion
		planErr *apiError
	)
	planned := func() (*openaiCompletion, *apiError) {
		if cc == nil && planErr == nil {
			cc, planErr = s.planOpenAI(&req, parseErr)
		}
		return cc, planErr
	}
	fullBody := func() []byte {
		c, e := planned()
		if e != nil {
			c = &openaiCompletion{ID: "chatcmpl-siminvalid", Object: "chat.completion", Model: req.Model, Choices: []openaiChoice{}}
		}
		b, _ := json.Marshal(c)
		return b
	}
	if s.applyFault(w, r, d, f, req.Stream, fullBody) {
		return
	}
	c, e := planned()
	if e != nil {
		d.writeError(w, s, *e)
		return
	}
	if !req.Stream {
		d.setRequestID(w, s)
		writeJSON(w, http.StatusOK, c)
		return
	}
	s.streamOpenAI(s.newSSE(w, r, d, f), c, req.includeUsage())
}

func (s *Server) planOpenAI(req *openaiRequest, parseErr error) (*openaiCompletion, *apiError) {
	if parseErr != nil {
		return nil, &apiError{status: http.StatusBadRequest, msg: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"}
	}
	p, e := req.toPrompt()
	if e != nil {
		return nil, e
	}
	if e := s.refusePictures(p, true); e != nil {
		return nil, e
	}
	if !s.modelAllowed(p.model) {
		err := openaiDialect{}.modelNotFound(p.model)
		return nil, &err
	}
	toolSig, _ := json.Marshal(req.Tools)
	cached := s.openaiCachedTokens(p, string(toolSig))
	rep := plan(p, s.opts.ReplyWords, false)

	n := s.nextID()
	c := &openaiCompletion{
		ID:                fmt.Sprintf("chatcmpl-sim%06d", n),
		Object:            "chat.completion",
		Created:           time.Now().Unix(),
		Model:             p.model,
		ServiceTier:       "default",
		SystemFingerprint: "fp_providersim",
	}
	c.Usage.PromptTokens = rep.inputTotal
	c.Usage.PromptTokensDetails.CachedTokens = cached
	c.Usage.CompletionTokens = rep.outTokens
	c.Usage.TotalTokens = rep.inputTotal + rep.outTokens

	var ch openaiChoice
	ch.Message.Role = "assistant"
	ch.Message.Annotations = []any{}
	ch.FinishReason = finishReasons[rep.stop]
	if rep.tool != nil {
		var tc openaiToolCall
		tc.ID = fmt.Sprintf("call_sim%06d", n)
		tc.Type = "function"
		tc.Function.Name = rep.tool.name
		tc.Function.Arguments = rep.tool.args
		ch.Message.ToolCalls = []openaiToolCall{tc}
	} else {
		ch.Message.Content = strPtr(rep.text)
	}
	c.Choices = []openaiChoice{ch}
	return c, nil
}

// streamOpenAI replays c as chat.completion.chunk events.
func (s *Server) streamOpenAI(e *sseWriter, c *openaiCompletion, includeUsage bool) {
	chunk := func(delta map[string]any, finish *string) map[string]any {
		m := map[string]any{
			"id": c.ID, "object": "chat.completion.chunk", "created": c.Created, "model": c.Model,
			"service_tier": c.ServiceTier, "system_fingerprint": c.SystemFingerprint,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
		}
		if includeUsage {
			m["usage"] = nil
		}
		return m
	}
	msg := c.Choices[0].Message
	var deltas []map[string]any
	if len(msg.ToolCalls) > 0 {
		tc := msg.ToolCalls[0]
		zero := 0
		head := openaiToolCall{Index: &zero, ID: tc.ID, Type: tc.Type}
		head.Function.Name = tc.Function.Name
		deltas = append(deltas, map[string]any{"role": "assistant", "content": nil, "refusal": nil, "tool_calls": []openaiToolCall{head}})
		for _, piece := range splitBytes(tc.Function.Arguments, s.opts.Chunks) {
			var d openaiToolCall
			d.Index = &zero
			d.Function.Arguments = piece
			deltas = append(deltas, map[string]any{"tool_calls": []openaiToolCall{d}})
		}
	} else {
		deltas = append(deltas, map[string]any{"role": "assistant", "content": "", "refusal": nil})
		for _, piece := range splitWords(*msg.Content, s.opts.Chunks) {
			deltas = append(deltas, map[string]any{"content": piece})
		}
	}
	for _, d := range deltas {
		if !e.send("", chunk(d, nil)) {
			return
		}
	}
	if !e.send("", chunk(map[string]any{}, &c.Choices[0].FinishReason)) {
		return
	}
	if includeUsage {
		last := chunk(nil, nil)
		last["choices"] = []any{}
		last["usage"] = c.Usage
		if !e.send("", last) {
			return
		}
	}
	e.sendRaw("", []byte("[DONE]"))
}

type openaiDialect struct{}

func (openaiDialect) provider() string      { return ProviderOpenAI }
func (openaiDialect) overloadedStatus() int { return http.StatusServiceUnavailable }

func (openaiDialect) setRequestID(w http.ResponseWriter, s *Server) {
	setRequestIDHeader(w, s, "x-request-id")
}

func (d openaiDialect) authorized(w http.ResponseWriter, r *http.Request, s *Server) bool {
	if s.opts.APIKey == "" {
		return true
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || key == "":
		d.writeError(w, s, apiError{status: http.StatusUnauthorized, msg: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."})
		return false
	case key != s.opts.APIKey:
		d.writeError(w, s, apiError{status: http.StatusUnauthorized, code: "invalid_api_key", msg: "Incorrect API key provided: " + maskKey(key) + "."})
		return false
	}
	return true
}

// maskKey shows only the ends of a key, as OpenAI's error message does.
func maskKey(k string) string {
	if len(k) <= 8 {
		return "****"
	}
	return k[:3] + "****" + k[len(k)-4:]
}

func openaiErrorDefaults(status int) (typ, code, msg string) {
	switch status {
	case 401:
		return "invalid_request_error", "invalid_api_key", "Incorrect API key provided."
	case 403:
		return "invalid_request_error", "permission_denied", "You are not allowed to access this resource."
	case 404:
		return "invalid_request_error", "", "The requested resource was not found."
	case 429:
		return "requests", "rate_limit_exceeded", "Rate limit reached for requests (simulated). Please try again later."
	case 503:
		return "server_error", "", "The server is overloaded or not ready yet."
	}
	if status >= 500 {
		return "server_error", "", "The server had an error while processing your request. Sorry about that!"
	}
	return "invalid_request_error", "", http.StatusText(status)
}

func (openaiDialect) errorBody(e apiError) map[string]any {
	typ, code, msg := openaiErrorDefaults(e.status)
	if e.typ != "" {
		typ = e.typ
	}
	if e.code != "" || e.msg != "" {
		code = e.code // an explicit message comes with its own code, or none
	}
	if e.msg != "" {
		msg = e.msg
	}
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	return map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nullable(e.param), "code": nullable(code)}}
}

func (d openaiDialect) writeError(w http.ResponseWriter, s *Server, e apiError) {
	d.setRequestID(w, s)
	writeJSON(w, e.status, d.errorBody(e))
}

func (d openaiDialect) writeStreamError(e *sseWriter, status int) {
	b, _ := json.Marshal(d.errorBody(apiError{status: status}))
	e.write("", b)
}

func (openaiDialect) writeMalformedStream(e *sseWriter) {
	first := map[string]any{
		"id": "chatcmpl-simmalformed", "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": "simulated",
		"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": ""}, "logprobs": nil, "finish_reason": nil}},
	}
	if e.send("", first) {
		e.sendRaw("", []byte(`{"id":"chatcmpl-simmalformed","object":"chat.compl`))
	}
}

func (openaiDialect) modelNotFound(id string) apiError {
	return apiError{status: http.StatusNotFound, code: "model_not_found", msg: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", id)}
}

func (openaiDialect) modelObject(id string) any {
	return map[string]any{"id": id, "object": "model", "created": 1735689600, "owned_by": "providersim"}
}

func (d openaiDialect) modelList(ids []string) any {
	data := make([]any, 0, len(ids))
	for _, id := range ids {
		data = append(data, d.modelObject(id))
	}
	return map[string]any{"object": "list", "data": data}
}

// pictures reads a message's image_url parts: data URLs are checked and
// measured, http(s) URLs taken unread.
func (m openaiMessage) pictures() ([]picture, error) {
	raw := bytes.TrimSpace(m.Content)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, nil
	}
	var parts []struct {
		Type     string `json:"type"`
		ImageURL *struct {
			URL    string `json:"url"`
			Detail string `json:"detail"`
		} `json:"image_url"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, nil // contentText reports it
	}
	var out []picture
	for _, part := range parts {
		if part.Type != "image_url" {
			continue
		}
		if part.ImageURL == nil {
			return nil, fmt.Errorf("Missing required parameter: 'image_url'.")
		}
		u := part.ImageURL.URL
		if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
			out = append(out, picture{tokens: openaiPictureTokens(2048, 768, part.ImageURL.Detail)})
			continue
		}
		meta, data, ok := strings.Cut(strings.TrimPrefix(u, "data:"), ",")
		mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
		if !strings.HasPrefix(u, "data:") || !ok || !isBase64 {
			return nil, fmt.Errorf("Invalid 'image_url': expected a URL or a base64 data URL.")
		}
		pic, err := readPicture(mediaType, data)
		if err != nil {
			return nil, fmt.Errorf("Invalid image in 'image_url': %v", err)
		}
		pic.tokens = openaiPictureTokens(pic.width, pic.height, part.ImageURL.Detail)
		out = append(out, pic)
	}
	return out, nil
}
