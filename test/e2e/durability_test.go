package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/gatewayconfig"
	"github.com/chatgateway/chatgateway-operator/test/providersim"
)

// TestGatewayKilledMidStream SIGKILLs the gateway in the middle of a
// stateful streamed reply and restarts it on the same SQLite store: the
// finished turn is intact, the user's message that started the cut turn is
// there, the cut reply is marked incomplete with the text saved at its
// last checkpoint, and the ledger bills the cut request for what was
// streamed up to that checkpoint.
func TestGatewayKilledMidStream(t *testing.T) {
	bin := buildGateway(t)
	// 30 deltas 100 ms apart: a three-second reply to kill in the middle of.
	_, simURL := providersim.Start(t, providersim.Options{Chunks: 30, ReplyWords: 60, EventDelay: 100 * time.Millisecond})
	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(filepath.Join(dir, "master-key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	config := writeConfig(t, dir, simURL, simURL+"/v1", func(c *gatewayconfig.Config) {
		c.Keys.MasterKeyFile = filepath.Join(dir, "master-key")
		c.Sessions.Store.Path = filepath.Join(dir, "store.db")
	})

	p := start(t, bin, config)
	base := "http://" + p.addr
	first := chatTurn(t, base+"/api/chat", "first question", -1)
	if first.done == nil || first.done.Status != "complete" {
		t.Fatalf("first turn: %+v", first)
	}
	sid := first.done.SessionID

	// The second turn: read until the reply has been streaming for longer
	// than the checkpoint interval, then kill the process.
	cut := chatTurn(t, base+"/api/sessions/"+sid+"/messages", "second question", 15)
	if err := p.cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	if cut.done != nil || cut.text == "" {
		t.Fatalf("the turn was not cut: %+v", cut)
	}

	p = start(t, bin, config)
	base = "http://" + p.addr
	var s struct {
		Messages []struct {
			ID, Role, Content, Status string
			InputTokens, OutputTokens int64
		}
	}
	get(t, base+"/api/sessions/"+sid, &s)
	if len(s.Messages) != 4 {
		t.Fatalf("after restart: %+v", s.Messages)
	}
	m := s.Messages
	if m[0].Content != "first question" || m[1].Content != first.text || m[1].Status != "complete" || m[1].ID != first.done.MessageID {
		t.Errorf("the finished turn: %+v", m[:2])
	}
	if m[2].Role != "user" || m[2].Content != "second question" || m[2].Status != "complete" {
		t.Errorf("the cut turn's message: %+v", m[2])
	}
	if m[3].Role != "assistant" || m[3].Status != "incomplete" || m[3].ID != cut.messageID ||
		m[3].Content == "" || !strings.HasPrefix(cut.text, m[3].Content) {
		t.Errorf("the cut reply: %+v (client had %q)", m[3], cut.text)
	}

	var usage struct {
		Days []struct {
			Requests int64
			Tokens   struct{ Input, Output int64 }
			CostUSD  string
		}
	}
	get(t, base+"/api/me/usage", &usage)
	if len(usage.Days) != 1 || usage.Days[0].Requests != 2 {
		t.Fatalf("ledger: %+v", usage)
	}
	saved := int64(len(m[3].Content)+3) / 4
	if got := usage.Days[0].Tokens.Output - first.done.Usage.OutputTokens; got < saved || got == 0 {
		t.Errorf("the cut request is billed %d output tokens; the saved text is about %d", got, saved)
	}
	if got := usage.Days[0].Tokens.Input - first.done.Usage.InputTokens; got <= 0 {
		t.Errorf("the cut request is billed %d input tokens", got)
	}

	// The conversation goes on, with the cut reply in its history.
	next := chatTurn(t, base+"/api/sessions/"+sid+"/messages", "third question", -1)
	if next.done == nil || next.done.Status != "complete" {
		t.Fatalf("after restart: %+v", next)
	}
}

type turnOutcome struct {
	messageID string
	text      string
	deltas    int
	done      *struct {
		SessionID string `json:"sessionId"`
		MessageID string `json:"messageId"`
		Status    string `json:"status"`
		Usage     struct {
			InputTokens  int64 `json:"inputTokens"`
			OutputTokens int64 `json:"outputTokens"`
		} `json:"usage"`
	}
}

// chatTurn sends a streamed message and reads its events, stopping after
// stopAfter deltas (never, when negative).
func chatTurn(t *testing.T, url, content string, stopAfter int) turnOutcome {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"content": content})
	req, _ := http.NewRequest("POST", url, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-Email", email)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d", url, resp.StatusCode)
	}
	var out turnOutcome
	var name string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := []byte(strings.TrimPrefix(line, "data: "))
			switch name {
			case "session":
				var s struct {
					MessageID string `json:"messageId"`
				}
				_ = json.Unmarshal(data, &s)
				out.messageID = s.MessageID
			case "delta":
				var d struct{ Text string }
				_ = json.Unmarshal(data, &d)
				out.text += d.Text
				out.deltas++
				if stopAfter >= 0 && out.deltas >= stopAfter {
					return out
				}
			case "done":
				out.done = &struct {
					SessionID string `json:"sessionId"`
					MessageID string `json:"messageId"`
					Status    string `json:"status"`
					Usage     struct {
						InputTokens  int64 `json:"inputTokens"`
						OutputTokens int64 `json:"outputTokens"`
					} `json:"usage"`
				}{}
				_ = json.Unmarshal(data, out.done)
			}
		}
	}
	return out
}

func get(t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Forwarded-Email", email)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
