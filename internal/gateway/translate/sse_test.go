package translate

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

type parsedEvent struct{ name, data string }

func parseAll(t testing.TB, in string) ([]parsedEvent, error) {
	rd := NewReader(strings.NewReader(in))
	var out []parsedEvent
	var ev Event
	for {
		err := rd.Next(&ev)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, parsedEvent{string(ev.Name), string(ev.Data)})
	}
}

func TestSSEReader(t *testing.T) {
	long := strings.Repeat("x", 100<<10) // longer than the 16 KiB read buffer
	cases := []struct {
		name string
		in   string
		want []parsedEvent
	}{
		{"named events", "event: ping\ndata: {}\n\nevent: message_stop\ndata: {\"a\":1}\n\n", []parsedEvent{{"ping", "{}"}, {"message_stop", `{"a":1}`}}},
		{"data only", "data: one\n\ndata: [DONE]\n\n", []parsedEvent{{"", "one"}, {"", "[DONE]"}}},
		{"CRLF", "event: a\r\ndata: b\r\n\r\n", []parsedEvent{{"a", "b"}}},
		{"multi-line data", "data: a\ndata: b\n\n", []parsedEvent{{"", "a\nb"}}},
		{"no space after colon", "data:x\n\n", []parsedEvent{{"", "x"}}},
		{"comments and ids ignored", ": keep-alive\nid: 7\nretry: 10\ndata: x\n\n", []parsedEvent{{"", "x"}}},
		{"event without data is dropped", "event: a\n\ndata: b\n\n", []parsedEvent{{"", "b"}}},
		{"last event without blank line", "data: a\n\ndata: b", []parsedEvent{{"", "a"}, {"", "b"}}},
		{"line longer than the buffer", "data: " + long + "\n\n", []parsedEvent{{"", long}}},
		{"empty stream", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseAll(t, c.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d events %q, want %q", len(got), got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("event %d: %q, want %q", i, got[i], c.want[i])
				}
			}
		})
	}
}

// A reused Reader starts the next stream clean, whatever the last one left:
// an event cut off mid-line, a name without data, a line longer than the
// read buffer.
func TestSSEReaderReset(t *testing.T) {
	long := strings.Repeat("y", 40<<10)
	rd := NewReader(strings.NewReader("event: left\ndata: " + long + "\ndata: cut"))
	var ev Event
	if err := rd.Next(&ev); err != nil || string(ev.Name) != "left" || len(ev.Data) != len(long)+len("\ncut") {
		t.Fatalf("first stream: %v %q", err, ev.Name)
	}
	rd.Reset(strings.NewReader("event: ping\n\ndata: b\n\n"))
	if err := rd.Next(&ev); err != nil || string(ev.Name) != "" || string(ev.Data) != "b" {
		t.Fatalf("after Reset: %v %q %q", err, ev.Name, ev.Data)
	}
	if err := rd.Next(&ev); !errors.Is(err, io.EOF) {
		t.Fatalf("after the second stream: %v", err)
	}
}

func TestSSEWriterSplitsLines(t *testing.T) {
	w := NewWriter()
	w.Raw("x", []byte("a\nb"))
	if got := w.buf.String(); got != "event: x\ndata: a\ndata: b\n\n" {
		t.Errorf("%q", got)
	}
}

// FuzzSSEReader: any input parses without panicking, and what it yields
// survives a write-and-reparse round trip unchanged.
func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		"event: message_start\ndata: {\"type\":\"message_start\"}\n\n",
		"data: {\"choices\":[]}\n\ndata: [DONE]\n\n",
		"data: a\r\ndata: b\r\n\r\n: comment\n\n",
		"event:\ndata\n\n",
		"data: x",
		"\n\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		events, err := parseAll(t, string(in))
		if err != nil {
			return
		}
		w := NewWriter()
		for _, ev := range events {
			if strings.ContainsAny(ev.name, "\r\n") || strings.Contains(ev.data, "\r") {
				return // not representable after a round trip; the reader is what matters
			}
			w.Raw(ev.name, []byte(ev.data))
		}
		again, err := parseAll(t, w.buf.String())
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(events) {
			t.Fatalf("round trip: %q became %q", events, again)
		}
		for i := range again {
			if again[i] != events[i] {
				t.Fatalf("round trip: %q became %q", events[i], again[i])
			}
		}
	})
}

func BenchmarkSSEReader(b *testing.B) {
	var in bytes.Buffer
	for range 100 {
		in.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hello world\"}}\n\n")
	}
	b.SetBytes(int64(in.Len()))
	b.ReportAllocs()
	var ev Event
	for b.Loop() {
		rd := NewReader(bytes.NewReader(in.Bytes()))
		for rd.Next(&ev) == nil {
		}
	}
}

// TestReaderBuffered: Buffered says whether Next can return an event
// without reading from the stream: a whole event with data is buffered.
func TestReaderBuffered(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"data: a\n\ndata: b\n\n", true},
		{"data: a\n\nevent: x\r\ndata: b\r\n\r\n", true},
		{"data: a\n\ndata\n\n", true},
		{"data: a\n\ndata: b\n", false},       // the second has no end yet
		{"data: a\n\n: ping\n\n", false},      // a comment alone is no event
		{"data: a\n\nevent: x\n\n", false},    // nor a name without data
		{"data: a\n\ndatum: b\n\n", false},    // not the data field
		{"data: a\n\n", false},                // nothing after the first
		{"data: a\n\n\n\ndata: b\n\n", true},  // blank lines between
		{"data: a\n\n: ping\ndata: b", false}, // a last event without its end needs the EOF
	} {
		rd := NewReader(strings.NewReader(tc.in))
		var ev Event
		if err := rd.Next(&ev); err != nil || string(ev.Data) != "a" {
			t.Fatalf("%q: first event %q, %v", tc.in, ev.Data, err)
		}
		if got := rd.Buffered(); got != tc.want {
			t.Errorf("%q: Buffered() = %v, want %v", tc.in, got, tc.want)
		}
	}
}
