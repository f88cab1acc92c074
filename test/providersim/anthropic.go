package providersim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

type anthropicRequest struct {
	Model         string             `json:"model"`
	MaxTokens     *int               `json:"max_tokens"`
	Messages      []anthropicMessage `json:"messages"`
	System        json.RawMessage    `json:"system"`
	Stream        bool               `json:"stream"`
	StopSequences []string           `json:"stop_sequences"`
	Tools         []struct {
		Type         string          `json:"type"`
		Name         string          `json:"name"`
		InputSchema  json.RawMessage `json:"input_schema"`
		CacheControl json.RawMessage `json:"cache_control"`
	} `json:"tools"`
	ToolChoice *struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tool_choice"`
	CacheControl json.RawMessage `json:"cache_control"`
}

type anthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anthropicBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	Content      json.RawMessage `json:"content"` // tool_result: string or blocks
	Input        json.RawMessage `json:"input"`   // tool_use
	CacheControl json.RawMessage `json:"cache_control"`
	Source       *struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	} `json:"source"` // image
}

// anthropicBlocks reads content that is either a string or a block list.
func anthropicBlocks(raw json.RawMessage) ([]anthropicBlock, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []anthropicBlock{{Type: "text", Text: s}}, nil
	}
	var blocks []anthropicBlock
	err := json.Unmarshal(raw, &blocks)
	return blocks, err
}

func (b anthropicBlock) text() string {
	switch b.Type {
	case "tool_result":
		inner, err := anthropicBlocks(b.Content)
		if err != nil {
			return ""
		}
		parts := make([]string, 0, len(inner))
		for _, ib := range inner {
			parts = append(parts, ib.text())
		}
		return strings.Join(parts, " ")
	case "tool_use":
		return string(b.Input)
	default:
		return b.Text
	}
}

func hasCacheControl(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// toPrompt validates the request the way the Messages API does and reduces it.
func (req *anthropicRequest) toPrompt() (*prompt, *apiError) {
	bad := func(msg string) (*prompt, *apiError) {
		return nil, &apiError{status: http.StatusBadRequest, msg: msg}
	}
	switch {
	case req.Model == "":
		return bad("model: Field required")
	case req.MaxTokens == nil:
		return bad("max_tokens: Field required")
	case *req.MaxTokens < 1:
		return bad("max_tokens: Input should be greater than or equal to 1")
	case len(req.Messages) == 0:
		return bad("messages: at least one message is required")
	}
	p := &prompt{model: req.Model, maxTokens: *req.MaxTokens, stops: req.StopSequences, cacheAll: hasCacheControl(req.CacheControl)}
	system, err := anthropicBlocks(req.System)
	if err != nil {
		return bad("system: Input should be a valid string or list of text blocks")
	}
	for _, b := range system {
		p.segments = append(p.segments, segment{role: "system", text: b.text(), cache: hasCacheControl(b.CacheControl)})
	}
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return bad(fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i))
		}
		blocks, err := anthropicBlocks(m.Content)
		if err != nil {
			return bad(fmt.Sprintf("messages.%d.content: Input should be a valid string or list of content blocks", i))
		}
		var userText []string
		var pics []picture
		for j, b := range blocks {
			if b.Type == "image" {
				pic, err := anthropicPicture(b)
				if err != nil {
					return bad(fmt.Sprintf("messages.%d.content.%d.image.source.%v", i, j, err))
				}
				pics = append(pics, pic)
				p.pictures++
				p.pictureTokens += pic.tokens
			}
			p.segments = append(p.segments, segment{role: m.Role, text: b.text(), cache: hasCacheControl(b.CacheControl)})
			if b.Type == "text" {
				userText = append(userText, b.Text)
			}
		}
		if m.Role == "user" {
			p.lastUser = strings.Join(userText, "\n")
			p.lastPictures = pics
		}
	}
	if req.Messages[len(req.Messages)-1].Role != "user" {
		p.lastUser = "" // assistant prefill
	}
	for _, t := range req.Tools {
		if hasCacheControl(t.CacheControl) {
			p.cacheSystem = true
		}
		if t.Name != "" && (t.Type == "" || t.Type == "custom") {
			p.tools = append(p.tools, tool{name: t.Name, schema: t.InputSchema})
		}
	}
	if tc := req.ToolChoice; tc != nil {
		p.noTools = tc.Type == "none"
		p.requireTool = tc.Type == "any"
		if tc.Type == "tool" {
			p.forcedTool = tc.Name
		}
	}
	return p, nil
}

// lastUserText finds the marker text without full validation, so faults
// work even on requests the API would reject.
func (req *anthropicRequest) lastUserText() string {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role != "user" {
			continue
		}
		blocks, _ := anthropicBlocks(req.Messages[i].Content)
		var parts []string
		for _, b := range blocks {
			if b.Type == "text" {
				parts = append(parts, b.Text)
			}
		}
		return strings.Join(parts, "\n")
	}
	return ""
}

type anthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	CacheCreation            struct {
		Ephemeral5m int `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	OutputTokens int    `json:"output_tokens"`
	ServiceTier  string `json:"service_tier"`
}

// usage splits the input into uncached, cache-write and cache-read tokens.
func (s *Server) anthropicUsage(p *prompt, toolSig string) anthropicUsage {
	u := anthropicUsage{InputTokens: p.inputTokens(), ServiceTier: "standard"}
	end := 0
	for i, seg := range p.segments {
		if seg.cache {
			end = i + 1
		}
	}
	switch {
	case p.cacheAll:
		end = len(p.segments)
	case end == 0 && p.cacheSystem:
		for end < len(p.segments) && p.segments[end].role == "system" {
			end++
		}
	}
	cached := 0
	for _, seg := range p.segments[:end] {
		cached += words(seg.text)
	}
	if cached == 0 {
		return u
	}
	key := prefixHash(p.model+"\x00"+toolSig, p.segments[:end])
	s.mu.Lock()
	seen := s.anthCache[key]
	s.anthCache[key] = true
	s.mu.Unlock()
	if seen {
		u.CacheReadInputTokens = cached
	} else {
		u.CacheCreationInputTokens = cached
		u.CacheCreation.Ephemeral5m = cached
	}
	u.InputTokens = max(u.InputTokens-cached, 0)
	return u
}

type anthropicContent struct {
	Type  string          `json:"type"`
	Text  *string         `json:"text,omitempty"`
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
}

type anthropicMessageResp struct {
	ID           string             `json:"id"`
	Type         string             `json:"type"`
	Role         string             `json:"role"`
	Model        string             `json:"model"`
	Content      []anthropicContent `json:"content"`
	StopReason   *string            `json:"stop_reason"`
	StopSequence *string            `json:"stop_sequence"`
	Usage        anthropicUsage     `json:"usage"`
}

func strPtr(s string) *string { return &s }

func (s *Server) handleAnthropic(w http.ResponseWriter, r *http.Request, body []byte) {
	d := anthropicDialect{}
	if !d.authorized(w, r, s) {
		return
	}
	if r.Header.Get("anthropic-version") == "" {
		d.writeError(w, s, apiError{status: http.StatusBadRequest, msg: "anthropic-version: header is required"})
		return
	}
	var req anthropicRequest
	parseErr := json.Unmarshal(body, &req)

	f, err := s.nextFault(ProviderAnthropic, req.lastUserText())
	if err != nil {
		d.writeError(w, s, apiError{status: http.StatusBadRequest, msg: err.Error()})
		return
	}
	// Both a fault and the reply may need the planned message; plan it once.
	var (
		msg     *anthropicMessageResp
		planErr *apiError
	)
	planned := func() (*anthropicMessageResp, *apiError) {
		if msg == nil && planErr == nil {
			msg, planErr = s.planAnthropic(&req, parseErr)
		}
		return msg, planErr
	}
	fullBody := func() []byte {
		m, e := planned()
		if e != nil {
			m = &anthropicMessageResp{ID: "msg_sim_invalid", Type: "message", Role: "assistant", Model: req.Model}
		}
		b, _ := json.Marshal(m)
		return b
	}
	if s.applyFault(w, r, d, f, req.Stream, fullBody) {
		return
	}
	m, e := planned()
	if e != nil {
		d.writeError(w, s, *e)
		return
	}
	if !req.Stream {
		d.setRequestID(w, s)
		writeJSON(w, http.StatusOK, m)
		return
	}
	s.streamAnthropic(s.newSSE(w, r, d, f), m)
}

func (s *Server) planAnthropic(req *anthropicRequest, parseErr error) (*anthropicMessageResp, *apiError) {
	if parseErr != nil {
		return nil, &apiError{status: http.StatusBadRequest, msg: "There was an issue with the request body: " + parseErr.Error()}
	}
	p, e := req.toPrompt()
	if e != nil {
		return nil, e
	}
	if e := s.refusePictures(p, false); e != nil {
		return nil, e
	}
	if !s.modelAllowed(p.model) {
		err := anthropicDialect{}.modelNotFound(p.model)
		return nil, &err
	}
	toolSig, _ := json.Marshal(req.Tools)
	usage := s.anthropicUsage(p, string(toolSig))
	rep := plan(p, s.opts.ReplyWords, true)
	usage.OutputTokens = rep.outTokens

	n := s.nextID()
	m := &anthropicMessageResp{
		ID:         fmt.Sprintf("msg_sim_%06d", n),
		Type:       "message",
		Role:       "assistant",
		Model:      p.model,
		Content:    []anthropicContent{},
		StopReason: strPtr(rep.stop),
		Usage:      usage,
	}
	if rep.stopSeq != "" {
		m.StopSequence = strPtr(rep.stopSeq)
	}
	if rep.text != "" || rep.tool == nil {
		m.Content = append(m.Content, anthropicContent{Type: "text", Text: strPtr(rep.text)})
	}
	if rep.tool != nil {
		m.Content = append(m.Content, anthropicContent{
			Type:  "tool_use",
			ID:    fmt.Sprintf("toolu_sim_%06d", n),
			Name:  rep.tool.name,
			Input: json.RawMessage(rep.tool.args),
		})
	}
	return m, nil
}

// streamAnthropic replays m as the Messages API event sequence.
func (s *Server) streamAnthropic(e *sseWriter, m *anthropicMessageResp) {
	start := *m
	start.Content = []anthropicContent{}
	start.StopReason, start.StopSequence = nil, nil
	start.Usage.OutputTokens = 1 // the API reports a placeholder here
	if !e.send("message_start", map[string]any{"type": "message_start", "message": start}) {
		return
	}
	for i, c := range m.Content {
		block := c
		if c.Type == "text" {
			block.Text = strPtr("")
		} else {
			block.Input = json.RawMessage("{}")
		}
		if !e.send("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": block}) {
			return
		}
		if i == 0 && !e.send("ping", map[string]string{"type": "ping"}) {
			return
		}
		var deltas []map[string]string
		if c.Type == "text" {
			for _, piece := range splitWords(*c.Text, s.opts.Chunks) {
				deltas = append(deltas, map[string]string{"type": "text_delta", "text": piece})
			}
		} else {
			// The API opens tool input with an empty partial_json.
			deltas = append(deltas, map[string]string{"type": "input_json_delta", "partial_json": ""})
			for _, piece := range splitBytes(string(c.Input), s.opts.Chunks) {
				deltas = append(deltas, map[string]string{"type": "input_json_delta", "partial_json": piece})
			}
		}
		for _, delta := range deltas {
			if !e.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": delta}) {
				return
			}
		}
		if !e.send("content_block_stop", map[string]any{"type": "content_block_stop", "index": i}) {
			return
		}
	}
	u := m.Usage
	if !e.send("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": m.StopReason, "stop_sequence": m.StopSequence},
		"usage": map[string]int{
			"input_tokens":                u.InputTokens,
			"cache_creation_input_tokens": u.CacheCreationInputTokens,
			"cache_read_input_tokens":     u.CacheReadInputTokens,
			"output_tokens":               u.OutputTokens,
		},
	}) {
		return
	}
	e.send("message_stop", map[string]string{"type": "message_stop"})
}

type anthropicDialect struct{}

func (anthropicDialect) provider() string      { return ProviderAnthropic }
func (anthropicDialect) overloadedStatus() int { return 529 }

func (anthropicDialect) setRequestID(w http.ResponseWriter, s *Server) {
	setRequestIDHeader(w, s, "request-id")
}

// authorized accepts the key in x-api-key or as a Bearer token: the API
// documents both, and the current official SDK sends the Bearer form.
func (d anthropicDialect) authorized(w http.ResponseWriter, r *http.Request, s *Server) bool {
	if s.opts.APIKey == "" {
		return true
	}
	key := r.Header.Get("x-api-key")
	if key == "" {
		key, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	switch {
	case key == "":
		d.writeError(w, s, apiError{status: http.StatusUnauthorized, msg: "x-api-key header is required"})
		return false
	case key != s.opts.APIKey:
		d.writeError(w, s, apiError{status: http.StatusUnauthorized, msg: "invalid x-api-key"})
		return false
	}
	return true
}

func anthropicErrorDefaults(status int) (typ, msg string) {
	switch status {
	case 400:
		return "invalid_request_error", "Invalid request"
	case 401:
		return "authentication_error", "invalid x-api-key"
	case 402:
		return "billing_error", "Your credit balance is too low to access the Anthropic API."
	case 403:
		return "permission_error", "Your API key does not have permission to use the specified resource."
	case 404:
		return "not_found_error", "Not found"
	case 409:
		return "conflict_error", "Conflict"
	case 413:
		return "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case 429:
		return "rate_limit_error", "Number of requests has exceeded your per-minute rate limit (simulated)."
	case 504:
		return "timeout_error", "Request timed out"
	case 529:
		return "overloaded_error", "Overloaded"
	}
	if status >= 500 {
		return "api_error", "Internal server error"
	}
	return "invalid_request_error", http.StatusText(status)
}

func (anthropicDialect) errorBody(e apiError, requestID string) map[string]any {
	typ, msg := anthropicErrorDefaults(e.status)
	if e.typ != "" {
		typ = e.typ
	}
	if e.msg != "" {
		msg = e.msg
	}
	body := map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}}
	if requestID != "" {
		body["request_id"] = requestID
	}
	return body
}

func (d anthropicDialect) writeError(w http.ResponseWriter, s *Server, e apiError) {
	id := setRequestIDHeader(w, s, "request-id")
	writeJSON(w, e.status, d.errorBody(e, id))
}

func (d anthropicDialect) writeStreamError(e *sseWriter, status int) {
	b, _ := json.Marshal(d.errorBody(apiError{status: status}, ""))
	e.write("error", b)
}

func (anthropicDialect) writeMalformedStream(e *sseWriter) {
	if e.send("message_start", map[string]any{"type": "message_start", "message": anthropicMessageResp{
		ID: "msg_sim_malformed", Type: "message", Role: "assistant", Model: "simulated", Content: []anthropicContent{},
		Usage: anthropicUsage{InputTokens: 1, OutputTokens: 1, ServiceTier: "standard"},
	}}) {
		e.sendRaw("content_block_start", []byte(`{"type":"content_block_start","index":0,"content_bl`))
	}
}

func (anthropicDialect) modelNotFound(id string) apiError {
	return apiError{status: http.StatusNotFound, msg: "model: " + id}
}

func (anthropicDialect) modelObject(id string) any {
	return map[string]string{"type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"}
}

func (d anthropicDialect) modelList(ids []string) any {
	data := make([]any, 0, len(ids))
	for _, id := range ids {
		data = append(data, d.modelObject(id))
	}
	var first, last any
	if len(ids) > 0 {
		first, last = ids[0], ids[len(ids)-1]
	}
	return map[string]any{"data": data, "has_more": false, "first_id": first, "last_id": last}
}

// anthropicPicture reads an image block's source.
func anthropicPicture(b anthropicBlock) (picture, error) {
	switch {
	case b.Source == nil:
		return picture{}, fmt.Errorf("source: Field required")
	case b.Source.Type == "url" && (strings.HasPrefix(b.Source.URL, "https://") || strings.HasPrefix(b.Source.URL, "http://")):
		return picture{tokens: anthropicPictureTokens(1568, 728)}, nil // unread: counted as a large picture
	case b.Source.Type != "base64":
		return picture{}, fmt.Errorf("type: Input should be 'base64' or 'url'")
	}
	pic, err := readPicture(b.Source.MediaType, b.Source.Data)
	if err != nil {
		return picture{}, err
	}
	pic.tokens = anthropicPictureTokens(pic.width, pic.height)
	return pic, nil
}
