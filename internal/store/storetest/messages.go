package storetest

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/store"
)

func testMessages(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, h, store.WithClock(clk.Now))
	sess := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet"})).must(t)
	empty := r(s.ListMessages(ctx, alice, sess.ID)).must(t)
	if len(empty) != 0 {
		t.Fatalf("new session has %d messages", len(empty))
	}
	inputs := []store.NewMessage{
		{Role: store.RoleUser, Content: "What is 2+2?", InputTokens: 12},
		{Role: store.RoleAssistant, Content: "4", InputTokens: 12, OutputTokens: 1},
		{Role: store.RoleUser, Content: ""},
		{Role: store.RoleAssistant, Content: "partial", OutputTokens: 3, Status: store.StatusIncomplete},
		{Role: store.RoleAssistant, Content: "", Status: store.StatusError},
		{Role: store.RoleUser, Content: strings.Repeat("long ✓ ", 20000)},
	}
	for i, in := range inputs {
		clk.Advance(time.Second)
		m := r(s.AppendMessage(ctx, alice, sess.ID, in)).must(t)
		if m.Seq != int64(i+1) || m.ID == "" || m.SessionID != sess.ID || !m.CreatedAt.Equal(clk.Now()) {
			t.Fatalf("append %d returned %+v", i, m)
		}
	}
	got := r(s.ListMessages(ctx, alice, sess.ID)).must(t)
	if len(got) != len(inputs) {
		t.Fatalf("%d messages, want %d", len(got), len(inputs))
	}
	for i, m := range got {
		in := inputs[i]
		if in.Status == "" {
			in.Status = store.StatusComplete
		}
		if m.Seq != int64(i+1) || m.Role != in.Role || m.Content != in.Content || m.Status != in.Status ||
			m.InputTokens != in.InputTokens || m.OutputTokens != in.OutputTokens {
			t.Fatalf("message %d = %+v, want %+v", i, m, in)
		}
	}
	if ss := r(s.GetSession(ctx, alice, sess.ID)).must(t); !ss.LastActivityAt.Equal(clk.Now()) {
		t.Fatalf("last activity %v, want %v", ss.LastActivityAt, clk.Now())
	}

	for name, bad := range map[string]store.NewMessage{
		"role":      {Role: "system", Content: "x"},
		"status":    {Role: store.RoleUser, Status: store.StatusStreaming},
		"bogus":     {Role: store.RoleUser, Status: "bogus"},
		"negative":  {Role: store.RoleUser, InputTokens: -1},
		"no role":   {Content: "x"},
		"uppercase": {Role: "User"},
	} {
		_, err := s.AppendMessage(ctx, alice, sess.ID, bad)
		wantErr(t, err, store.ErrInvalid, "append with bad "+name)
	}
	_, err := s.AppendMessage(ctx, alice, "nope", store.NewMessage{Role: store.RoleUser})
	wantErr(t, err, store.ErrNotFound, "append to missing session")
}

func testStreaming(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	s := open(t, h, store.WithClock(clk.Now))
	sess := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet"})).must(t)
	user := r(s.AppendMessage(ctx, alice, sess.ID, store.NewMessage{Role: store.RoleUser, Content: "Tell me a story"})).must(t)
	clk.Advance(time.Second)
	m := r(s.BeginAssistantMessage(ctx, alice, sess.ID)).must(t)
	if m.Status != store.StatusStreaming || m.Role != store.RoleAssistant || m.Seq != 2 || m.Content != "" {
		t.Fatalf("begin = %+v", m)
	}
	clk.Advance(time.Second)
	noErr(t, s.UpdateAssistantMessage(ctx, alice, sess.ID, m.ID, "Once upon"))
	clk.Advance(time.Second)
	noErr(t, s.UpdateAssistantMessage(ctx, alice, sess.ID, m.ID, "Once upon a time"))
	msgs := r(s.ListMessages(ctx, alice, sess.ID)).must(t)
	if msgs[1].Content != "Once upon a time" || msgs[1].Status != store.StatusStreaming || !msgs[1].UpdatedAt.Equal(clk.Now()) {
		t.Fatalf("after update: %+v", msgs[1])
	}
	clk.Advance(time.Second)
	noErr(t, s.FinishAssistantMessage(ctx, alice, sess.ID, m.ID, store.Finish{
		Content: "Once upon a time, the end.", InputTokens: 10, OutputTokens: 7, Status: store.StatusComplete,
	}))
	msgs = r(s.ListMessages(ctx, alice, sess.ID)).must(t)
	want := store.Message{
		ID: m.ID, SessionID: sess.ID, Seq: 2, Role: store.RoleAssistant, Content: "Once upon a time, the end.",
		InputTokens: 10, OutputTokens: 7, Status: store.StatusComplete, CreatedAt: m.CreatedAt, UpdatedAt: clk.Now(),
	}
	if len(msgs) != 2 || msgs[0].ID != user.ID || !reflect.DeepEqual(msgs[1], want) {
		t.Fatalf("after finish:\n got %+v\nwant %+v", msgs[1], want)
	}
	if ss := r(s.GetSession(ctx, alice, sess.ID)).must(t); !ss.LastActivityAt.Equal(clk.Now()) {
		t.Fatalf("finish did not count as activity: %v", ss.LastActivityAt)
	}

	wantErr(t, s.UpdateAssistantMessage(ctx, alice, sess.ID, m.ID, "more"), store.ErrConflict, "update after finish")
	wantErr(t, s.FinishAssistantMessage(ctx, alice, sess.ID, m.ID, store.Finish{Status: store.StatusComplete}),
		store.ErrConflict, "finish twice")
	wantErr(t, s.FinishAssistantMessage(ctx, alice, sess.ID, user.ID, store.Finish{Status: store.StatusComplete}),
		store.ErrConflict, "finish a user message")
	wantErr(t, s.UpdateAssistantMessage(ctx, alice, sess.ID, "missing", "x"), store.ErrNotFound, "update missing message")
	wantErr(t, s.FinishAssistantMessage(ctx, alice, sess.ID, m.ID, store.Finish{Status: store.StatusStreaming}),
		store.ErrInvalid, "finish as streaming")

	// A message of one session cannot be updated through another.
	other := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet"})).must(t)
	m2 := r(s.BeginAssistantMessage(ctx, alice, sess.ID)).must(t)
	wantErr(t, s.UpdateAssistantMessage(ctx, alice, other.ID, m2.ID, "x"), store.ErrNotFound, "update via another session")

	// Cut short by the client: finish as incomplete, keeping what was said.
	noErr(t, s.FinishAssistantMessage(ctx, alice, sess.ID, m2.ID, store.Finish{Content: "Once", OutputTokens: 1, Status: store.StatusIncomplete}))
	msgs = r(s.ListMessages(ctx, alice, sess.ID)).must(t)
	if last := msgs[len(msgs)-1]; last.Status != store.StatusIncomplete || last.Content != "Once" {
		t.Fatalf("incomplete finish: %+v", last)
	}
}

func testRecoverIncomplete(t *testing.T, h Harness) {
	ctx := context.Background()
	clk := newClock()
	db := h.NewDB(t)
	s := r(db.Open(t, MasterKey, store.WithClock(clk.Now))).must(t)
	sess := r(s.CreateSession(ctx, alice, store.NewSession{Model: "sonnet"})).must(t)
	r(s.AppendMessage(ctx, alice, sess.ID, store.NewMessage{Role: store.RoleUser, Content: "q"})).must(t)
	cut := r(s.BeginAssistantMessage(ctx, alice, sess.ID)).must(t)
	noErr(t, s.UpdateAssistantMessage(ctx, alice, sess.ID, cut.ID, "half an ans"))
	done := r(s.BeginAssistantMessage(ctx, alice, sess.ID)).must(t)
	noErr(t, s.FinishAssistantMessage(ctx, alice, sess.ID, done.ID, store.Finish{Content: "full", Status: store.StatusComplete}))
	// The process dies here: the store is never told the stream ended.
	noErr(t, s.Close())

	clk.Advance(time.Minute)
	s = r(db.Open(t, MasterKey, store.WithClock(clk.Now))).must(t)
	// A stream another replica is writing right now (saved after
	// staleBefore) is left alone.
	live := r(s.BeginAssistantMessage(ctx, alice, sess.ID)).must(t)
	n := r(s.RecoverIncomplete(ctx, clk.Now().Add(-time.Second))).must(t)
	if n != 1 {
		t.Fatalf("recovered %d messages, want 1", n)
	}
	msgs := r(s.ListMessages(ctx, alice, sess.ID)).must(t)
	byID := map[string]store.Message{}
	for _, m := range msgs {
		byID[m.ID] = m
	}
	if m := byID[cut.ID]; m.Status != store.StatusIncomplete || m.Content != "half an ans" {
		t.Fatalf("cut message after recovery: %+v", m)
	}
	if m := byID[done.ID]; m.Status != store.StatusComplete || m.Content != "full" {
		t.Fatalf("finished message after recovery: %+v", m)
	}
	if m := byID[live.ID]; m.Status != store.StatusStreaming {
		t.Fatalf("live stream after recovery: %+v", m)
	}
	if n := r(s.RecoverIncomplete(ctx, clk.Now().Add(-time.Second))).must(t); n != 0 {
		t.Fatalf("second recovery changed %d rows", n)
	}
	// A writer that was alive after all may still finish its message.
	noErr(t, s.FinishAssistantMessage(ctx, alice, sess.ID, cut.ID, store.Finish{Content: "half an answer", Status: store.StatusComplete}))
}
