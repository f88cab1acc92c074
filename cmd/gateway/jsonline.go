package main

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// jsonLines writes what slog's JSONHandler writes, byte for byte, but
// formats the common records itself: the request log is a line per
// request, and JSONHandler encodes each float (duration_ms, ttft_ms) with
// encoding/json and each record through its general handleState, several
// times the cost of appending the few kinds these lines hold. A record
// with any other kind of value (a group, an Any, a LogValuer, a float
// JSON cannot hold, a year JSON's time cannot), and every logger derived
// with With or WithGroup, goes to the JSONHandler itself.
type jsonLines struct {
	std *slog.JSONHandler // on the same writer, at the same level
	w   io.Writer
}

func newJSONLines(w io.Writer, opts *slog.HandlerOptions) *jsonLines {
	return &jsonLines{std: slog.NewJSONHandler(w, opts), w: w}
}

func (h *jsonLines) Enabled(ctx context.Context, l slog.Level) bool { return h.std.Enabled(ctx, l) }

func (h *jsonLines) WithAttrs(as []slog.Attr) slog.Handler { return h.std.WithAttrs(as) }

func (h *jsonLines) WithGroup(name string) slog.Handler { return h.std.WithGroup(name) }

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (h *jsonLines) Handle(ctx context.Context, r slog.Record) error {
	bp := linePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 16<<10 { // one huge line does not stay pinned
			linePool.Put(bp)
		}
	}()
	b, ok := appendLine((*bp)[:0], r)
	*bp = b
	if !ok {
		return h.std.Handle(ctx, r)
	}
	_, err := h.w.Write(b)
	return err
}

// appendLine appends r as JSONHandler (without options beyond the level)
// formats it; ok is false when r holds something only JSONHandler formats.
func appendLine(b []byte, r slog.Record) (_ []byte, ok bool) {
	b = append(b, '{')
	if !r.Time.IsZero() {
		t := r.Time.Round(0)
		if y := t.Year(); y < 0 || y >= 10000 {
			return b, false
		}
		b = append(b, `"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	b = appendString(b, r.Level.String())
	b = append(b, `,"msg":`...)
	b = appendString(b, r.Message)
	ok = true
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "" {
			ok = false // an empty attr is skipped, a group inlined: JSONHandler's rules
			return false
		}
		n := len(b)
		b = append(b, ',')
		b = appendString(b, a.Key)
		b = append(b, ':')
		v := a.Value
		switch v.Kind() {
		case slog.KindString:
			b = appendString(b, v.String())
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindUint64:
			b = strconv.AppendUint(b, v.Uint64(), 10)
		case slog.KindBool:
			b = strconv.AppendBool(b, v.Bool())
		case slog.KindDuration:
			b = strconv.AppendInt(b, int64(v.Duration()), 10)
		case slog.KindFloat64:
			b, ok = appendFloat(b, v.Float64())
		default:
			ok = false
		}
		if !ok {
			b = b[:n]
		}
		return ok
	})
	return append(b, "}\n"...), ok
}

// appendFloat formats f as encoding/json does (which JSONHandler calls).
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	abs, format := math.Abs(f), byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as JSONHandler does: ", \ and control characters
// escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped, HTML not.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
