package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An info line waits for the next flush; a warning goes out at once, with
// the lines before it, in order; Close writes the rest.
func TestLogBuffer(t *testing.T) {
	var sink lockedBuffer
	out := newLogBuffer(&sink, time.Hour) // no flush by the clock in this test
	log := slog.New(logHandler{slog.NewJSONHandler(out, nil), out}).With("k", "v")
	log.Info("first")
	if got := sink.String(); got != "" {
		t.Fatalf("an info line was written at once: %q", got)
	}
	log.Warn("second")
	if got := sink.String(); strings.Count(got, "\n") != 2 || strings.Index(got, "first") > strings.Index(got, "second") || !strings.Contains(got, `"k":"v"`) {
		t.Fatalf("after a warning: %q", got)
	}
	log.Info("third")
	out.Close()
	if !strings.Contains(sink.String(), "third") {
		t.Fatal("Close did not write the last line")
	}
}

// The clock flushes an info line within its interval.
func TestLogBufferTicks(t *testing.T) {
	var sink lockedBuffer
	out := newLogBuffer(&sink, 10*time.Millisecond)
	defer out.Close()
	slog.New(logHandler{slog.NewJSONHandler(out, nil), out}).Info("line")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(sink.String(), "line") {
		if time.Now().After(deadline) {
			t.Fatal("an info line was never flushed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
