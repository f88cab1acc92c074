package providersim_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/openai/openai-go/v3"

	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

type sseEvent struct{ event, data string }

// readSSE parses a whole event stream, checking the framing as it goes.
func readSSE(t *testing.T, res *http.Response) []sseEvent {
	t.Helper()
	var events []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data == "" {
				t.Errorf("empty event %+v", cur)
			}
			events = append(events, cur)
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		default:
			t.Errorf("unexpected SSE line %q", line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != (sseEvent{}) {
		t.Errorf("unterminated event %+v", cur)
	}
	return events
}

func post(t *testing.T, url, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func TestAnthropicRequestValidation(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{})
	version := map[string]string{"anthropic-version": "2023-06-01"}
	tests := []struct {
		name   string
		body   string
		header map[string]string
		status int
		msg    string
	}{
		{"no version header", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, nil, 400, "anthropic-version"},
		{"no max_tokens", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, version, 400, "max_tokens"},
		{"no model", `{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, version, 400, "model"},
		{"no messages", `{"model":"m","max_tokens":5,"messages":[]}`, version, 400, "messages"},
		{"bad role", `{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"hi"}]}`, version, 400, "role"},
		{"bad json", `{"model":`, version, 400, "request body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := post(t, url+"/v1/messages", tt.body, tt.header)
			var e struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if res.StatusCode != tt.status || e.Type != "error" || e.Error.Type != "invalid_request_error" || !strings.Contains(e.Error.Message, tt.msg) {
				t.Errorf("%d %s", res.StatusCode, body)
			}
			if e.RequestID == "" || e.RequestID != res.Header.Get("request-id") {
				t.Errorf("request_id %q header %q", e.RequestID, res.Header.Get("request-id"))
			}
		})
	}
}

func TestOpenAIRequestValidation(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{APIKey: testKey})
	auth := map[string]string{"Authorization": "Bearer " + testKey}
	tests := []struct {
		name   string
		body   string
		header map[string]string
		status int
		param  any
	}{
		{"no key", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, nil, 401, nil},
		{"no messages", `{"model":"m"}`, auth, 400, "messages"},
		{"stream_options without stream", `{"model":"m","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, auth, 400, "stream_options"},
		{"bad role", `{"model":"m","messages":[{"role":"robot","content":"hi"}]}`, auth, 400, "messages[0].role"},
		{"bad json", `[`, auth, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := post(t, url+"/v1/chat/completions", tt.body, tt.header)
			var e struct {
				Error map[string]any `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if res.StatusCode != tt.status || e.Error["message"] == "" || e.Error["type"] != "invalid_request_error" || e.Error["param"] != tt.param {
				t.Errorf("%d %s", res.StatusCode, body)
			}
			for _, k := range []string{"message", "type", "param", "code"} {
				if _, ok := e.Error[k]; !ok {
					t.Errorf("error lacks %q: %s", k, body)
				}
			}
		})
	}
}

func TestModels(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{APIKey: testKey, Models: []string{claudeModel, gptModel}})
	ctx := context.Background()

	claude := anthropicClient(url)
	page, err := claude.Models.List(ctx, anthropic.ModelListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 2 || page.Data[0].ID != claudeModel || page.Data[0].Type != "model" || page.HasMore {
		t.Errorf("anthropic models %s", page.RawJSON())
	}
	info, err := claude.Models.Get(ctx, claudeModel, anthropic.ModelGetParams{})
	if err != nil || info.ID != claudeModel {
		t.Errorf("anthropic model get: %v %+v", err, info)
	}

	gpt := openaiClient(url)
	list, err := gpt.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Data) != 2 || list.Data[1].ID != gptModel || list.Object != "list" {
		t.Errorf("openai models %s", list.RawJSON())
	}
	if _, err := gpt.Models.Get(ctx, "gpt-nope"); asOpenAIError(t, err).StatusCode != 404 {
		t.Errorf("unknown model: %v", err)
	}
}

func TestControlEndpoints(t *testing.T) {
	sim, url := providersim.Start(t, providersim.Options{})
	ctx := context.Background()

	// JSON fault, twice, only for OpenAI; then a spec string.
	res, body := post(t, url+"/_sim/faults", `{"status":503,"retry_after":"1","provider":"openai","times":2}`, nil)
	if res.StatusCode != 200 || !strings.Contains(string(body), `"queued":2`) {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	res, body = post(t, url+"/_sim/faults", `[{"overloaded":true,"delay_first_byte":"10ms"}]`, nil)
	if res.StatusCode != 200 || !strings.Contains(string(body), `"queued":3`) {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	if res, body := post(t, url+"/_sim/faults", `nonsense=1`, nil); res.StatusCode != 400 {
		t.Fatalf("bad spec accepted: %d %s", res.StatusCode, body)
	}

	// The Anthropic request skips the OpenAI faults and takes the third.
	claude := anthropicClient(url)
	params := anthropic.MessageNewParams{Model: claudeModel, MaxTokens: 10, Messages: []anthropic.MessageParam{userMsg("hi")}}
	_, err := claude.Messages.New(ctx, params)
	if e := asAnthropicError(t, err); e.StatusCode != 529 {
		t.Errorf("anthropic got %d", e.StatusCode)
	}
	gpt := openaiClient(url)
	oparams := openai.ChatCompletionNewParams{Model: gptModel, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	for range 2 {
		_, err := gpt.Chat.Completions.New(ctx, oparams)
		if e := asOpenAIError(t, err); e.StatusCode != 503 || e.Response.Header.Get("Retry-After") != "1" {
			t.Errorf("openai got %d", e.StatusCode)
		}
	}
	if _, err := gpt.Chat.Completions.New(ctx, oparams); err != nil {
		t.Errorf("queue should be empty: %v", err)
	}

	res, err = http.Get(url + "/_sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats map[string]int
	_ = json.NewDecoder(res.Body).Decode(&stats)
	res.Body.Close()
	if stats["served"] != 4 || stats["queued"] != 0 || sim.Served() != 4 {
		t.Errorf("stats %v", stats)
	}

	res, err = http.Get(url + "/_sim/requests")
	if err != nil {
		t.Fatal(err)
	}
	var recs []providersim.Recorded
	if err := json.NewDecoder(res.Body).Decode(&recs); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if len(recs) != 4 || recs[0].Path != "/v1/messages" || recs[3].Path != "/v1/chat/completions" || recs[0].Method != "POST" {
		t.Fatalf("recorded %+v", recs)
	}
	var first struct {
		Model string `json:"model"`
	}
	if err := recs[0].JSON(&first); err != nil || first.Model != claudeModel || recs[0].Header.Get("Anthropic-Version") == "" {
		t.Errorf("recorded body %q header %v (%v)", recs[0].Body, recs[0].Header, err)
	}

	if res, _ := post(t, url+"/_sim/reset", "", nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("reset: %d", res.StatusCode)
	}
	if len(sim.Requests()) != 0 || sim.Served() != 0 {
		t.Errorf("after reset: %d requests, %d served", len(sim.Requests()), sim.Served())
	}
}

// TestHangReleased proves a hung handler ends when its client goes away
// or the simulator closes, so test servers shut down without waiting.
func TestHangReleased(t *testing.T) {
	sim, ts := providersim.NewHTTPTest(providersim.Options{})
	sim.Enqueue(providersim.Fault{HangUntilCancel: true}, providersim.Fault{HangUntilCancel: true})

	client := openaiClient(ts.URL)
	// First: the client gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: gptModel, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	if err == nil {
		t.Fatal("hung request answered")
	}

	// Second: the client waits forever, and Close releases the handler.
	done := make(chan error, 1)
	go func() {
		_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: gptModel, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		})
		done <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); sim.Served() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("second request never arrived")
		}
	}
	sim.Close()
	closed := make(chan struct{})
	go func() { ts.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("httptest server still waiting on a hung handler")
	}
	if err := <-done; err == nil {
		t.Error("released request reported success")
	}
}

func TestAnthropicAuthHeaders(t *testing.T) {
	_, url := providersim.Start(t, providersim.Options{APIKey: testKey})
	body := `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	version := "2023-06-01"
	for _, tt := range []struct {
		header map[string]string
		status int
	}{
		{map[string]string{"anthropic-version": version, "x-api-key": testKey}, 200},
		{map[string]string{"anthropic-version": version, "Authorization": "Bearer " + testKey}, 200},
		{map[string]string{"anthropic-version": version, "x-api-key": "sk-other"}, 401},
		{map[string]string{"anthropic-version": version, "Authorization": "Basic " + testKey}, 401},
		{map[string]string{"anthropic-version": version}, 401},
	} {
		res, b := post(t, url+"/v1/messages", body, tt.header)
		if res.StatusCode != tt.status || (tt.status == 401 && !strings.Contains(string(b), "authentication_error")) {
			t.Errorf("%v: %d %s", tt.header, res.StatusCode, b)
		}
	}
}
