package translate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// maxEventSize bounds one upstream event, so a broken upstream cannot make
// the gateway buffer without limit.
const maxEventSize = 16 << 20

var ErrEventTooLarge = errors.New("server-sent event larger than 16 MiB")

// Event is one server-sent event. Name and Data alias the reader's
// buffers and are valid until the next call to Next.
type Event struct {
	Name []byte
	Data []byte
}

// Reader parses a text/event-stream (the WHATWG format: "field: value"
// lines, events ending at a blank line, multi-line data joined with "\n").
// It keeps no per-event allocations once its buffers have grown.
type Reader struct {
	r    *bufio.Reader
	line []byte // a line longer than the bufio buffer, reassembled
	name []byte
	data []byte
}

// NewReader reads events from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 16<<10)}
}

// maxKeptEvent bounds the buffers Reset keeps: one huge event does not
// stay pinned in a reused Reader.
const maxKeptEvent = 1 << 20

// Reset makes s read from r, keeping its buffers (a stream's 16 KiB read
// buffer and its event buffers) for the next stream.
func (s *Reader) Reset(r io.Reader) {
	s.r.Reset(r)
	if cap(s.line) > maxKeptEvent {
		s.line = nil
	}
	if cap(s.data) > maxKeptEvent {
		s.data = nil
	}
	s.line, s.name, s.data = s.line[:0], s.name[:0], s.data[:0]
}

// Next reads the next event with data. It returns io.EOF at a clean end;
// a final event without its blank line is still delivered.
func (s *Reader) Next(ev *Event) error {
	s.name, s.data = s.name[:0], s.data[:0]
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && hasData {
				ev.Name, ev.Data = s.name, s.data
				return nil
			}
			return err
		}
		if len(line) == 0 {
			if hasData {
				ev.Name, ev.Data = s.name, s.data
				return nil
			}
			s.name = s.name[:0]
			continue
		}
		if line[0] == ':' {
			continue // comment, e.g. a keep-alive
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			s.name = append(s.name[:0], value...)
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			if len(s.data)+len(value) > maxEventSize {
				return ErrEventTooLarge
			}
			s.data = append(s.data, value...)
			hasData = true
		}
	}
}

// Buffered reports whether the next event with data is already buffered
// whole, so that Next returns it without reading from the stream (and so
// without waiting). The stream loop flushes the caller's events only when
// it is not: events that arrived together leave together, in one write.
func (s *Reader) Buffered() bool {
	n := s.r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := s.r.Peek(n) // what is buffered: no read
	hasData := false
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false // the rest is a partial line
		}
		line := trimEOL(b[:i+1])
		b = b[i+1:]
		switch {
		case len(line) == 0:
			if hasData {
				return true
			}
		case bytes.HasPrefix(line, []byte("data")) && (len(line) == 4 || line[4] == ':'):
			hasData = true
		}
	}
}

// readLine returns one line without its "\n" or "\r\n".
func (s *Reader) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		s.line = append(s.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(s.line) > maxEventSize {
				return nil, ErrEventTooLarge
			}
			line, err = s.r.ReadSlice('\n')
			s.line = append(s.line, line...)
		}
		line = s.line
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return trimEOL(line), nil // last line without a newline
		}
		return nil, err
	}
	return trimEOL(line), nil
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// Writer accumulates what one upstream event becomes for the caller: the
// client's events, which the stream loop writes together (one write per
// upstream event, and a flush per read of the upstream stream: see
// Reader.Buffered), or, for a Conversation, the text it carried.
type Writer struct {
	buf bytes.Buffer
	enc *json.Encoder
	// A Conversation's stream: its text deltas, and whether it has begun.
	texts []string
	began bool
}

// NewWriter returns an empty Writer; reuse it with Reset.
func NewWriter() *Writer {
	w := &Writer{}
	w.enc = json.NewEncoder(&w.buf)
	w.enc.SetEscapeHTML(false)
	return w
}

// Len is the size of the events written since the last Reset.
func (w *Writer) Len() int { return w.buf.Len() }

// Bytes are the events written since the last Reset.
func (w *Writer) Bytes() []byte { return w.buf.Bytes() }

// Reset drops what was written, keeping the buffer.
func (w *Writer) Reset() {
	w.buf.Reset()
	clear(w.texts)
	w.texts, w.began = w.texts[:0], false
}

// Text records a piece of a Conversation's reply.
func (w *Writer) Text(s string) {
	w.texts = append(w.texts, s)
	w.began = true
}

// Texts are the pieces of reply text recorded since the last Reset.
func (w *Writer) Texts() []string { return w.texts }

// Begin marks a Conversation's stream as begun: the provider's answer is
// good and on its way, even if it has no text yet.
func (w *Writer) Begin() { w.began = true }

// Begun reports whether anything since the last Reset is for the caller:
// events, text, or the start of a Conversation's reply.
func (w *Writer) Begun() bool { return w.began || w.buf.Len() > 0 }

// Raw writes an event whose data is already encoded. Data lines are split
// at newlines, as the format requires.
func (w *Writer) Raw(name string, data []byte) {
	if name != "" {
		w.buf.WriteString("event: ")
		w.buf.WriteString(name)
		w.buf.WriteByte('\n')
	}
	w.data(data)
}

// Forward writes an upstream event (a name as []byte spares converting
// it to a string for every event).
func (w *Writer) Forward(name, data []byte) {
	if len(name) > 0 {
		w.buf.WriteString("event: ")
		w.buf.Write(name)
		w.buf.WriteByte('\n')
	}
	w.data(data)
}

func (w *Writer) data(data []byte) {
	for {
		i := bytes.IndexByte(data, '\n')
		w.buf.WriteString("data: ")
		if i < 0 {
			w.buf.Write(data)
			break
		}
		w.buf.Write(data[:i])
		w.buf.WriteByte('\n')
		data = data[i+1:]
	}
	w.buf.WriteString("\n\n")
}

// JSON writes an event whose data is v encoded as JSON (which never holds
// a raw newline).
func (w *Writer) JSON(name string, v any) {
	if name != "" {
		w.buf.WriteString("event: ")
		w.buf.WriteString(name)
		w.buf.WriteByte('\n')
	}
	w.buf.WriteString("data: ")
	if err := w.enc.Encode(v); err != nil {
		// Our own event types always encode; keep the stream well-formed anyway.
		w.buf.WriteString("{}\n")
	}
	w.buf.WriteByte('\n') // Encode ended the data line; this ends the event
}
