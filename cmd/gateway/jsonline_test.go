package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// sameAsJSONHandler logs r through jsonLines and slog's JSONHandler and
// fails unless they wrote the same bytes.
func sameAsJSONHandler(t *testing.T, r slog.Record) {
	t.Helper()
	var got, want bytes.Buffer
	if err := newJSONLines(&got, nil).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if err := slog.NewJSONHandler(&want, nil).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("jsonLines wrote\n%s\nJSONHandler\n%s", got.Bytes(), want.Bytes())
	}
}

var oddStrings = []string{
	"", "plain", `quote " and \ backslash`, "new\nline\r\ttab", "\x00\x01\x1f\x7f", "<b>&amp;</b>",
	"é ünïcödé 😀", "\u2028 \u2029", "bad \xff utf-8 \xc3", "\xe2\x80", "user@exämple.com",
}

func TestJSONLinesMatchesJSONHandler(t *testing.T) {
	at := time.Date(2026, 12, 1, 5, 37, 4, 38624772, time.UTC)
	// The request log line, as completion.logServed writes it.
	r := slog.NewRecord(at, slog.LevelInfo, "Served request", 0)
	r.AddAttrs(slog.String("request_id", "01JXYZ"), slog.String("user", "3f2a"), slog.String("api", "openai"),
		slog.String("model", "gpt"), slog.String("provider", "sim"), slog.Int("status", 200), slog.Int("attempts", 1),
		slog.Int64("input_tokens", 17), slog.Int64("output_tokens", 64), slog.Int64("cache_read_tokens", 0),
		slog.Int64("cache_write_tokens", 0), slog.String("cost_usd", "0.000269600"),
		slog.Float64("duration_ms", 1.234), slog.Float64("ttft_ms", 0), slog.String("client_request_id", "c-1"))
	sameAsJSONHandler(t, r)

	for _, s := range oddStrings {
		r := slog.NewRecord(at.In(time.FixedZone("X", 3600)), slog.LevelWarn+2, s, 0)
		r.AddAttrs(slog.String(s, s), slog.Bool("b", true), slog.Uint64("u", math.MaxUint64), slog.Duration("d", -time.Second))
		sameAsJSONHandler(t, r)
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 123456789.125, -3.5e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1 + 0.2} {
		r := slog.NewRecord(time.Time{}, slog.LevelDebug, "f", 0)
		r.AddAttrs(slog.Float64("f", f))
		sameAsJSONHandler(t, r)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		r := slog.NewRecord(at, slog.LevelInfo, "f", 0)
		r.AddAttrs(slog.Float64("f", math.Float64frombits(rnd.Uint64())), slog.Float64("ms", float64(rnd.Int64N(1e9))/1000))
		sameAsJSONHandler(t, r)
	}
	// What only JSONHandler formats goes to it: the same line all the same.
	for _, a := range []slog.Attr{
		slog.Float64("nan", math.NaN()), slog.Float64("inf", math.Inf(-1)), slog.Any("err", errors.New("x")),
		slog.Group("g", slog.Int("a", 1)), slog.Group("", slog.Int("inlined", 1)), {}, slog.String("", "empty key"),
		slog.Time("t", at), slog.Any("m", map[string]int{"a": 1}), slog.Any("v", slog.IntValue(3)),
	} {
		r := slog.NewRecord(at, slog.LevelError, "fallback", 0)
		r.AddAttrs(slog.String("before", "x"), a, slog.Int("after", 2))
		sameAsJSONHandler(t, r)
	}
	sameAsJSONHandler(t, slog.NewRecord(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "far", 0))
}

func FuzzJSONLines(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s, s, 1.5, int64(-1))
	}
	f.Fuzz(func(t *testing.T, msg, s string, fl float64, n int64) {
		r := slog.NewRecord(time.Unix(0, n).UTC(), slog.Level(n%13), msg, 0)
		r.AddAttrs(slog.String(s, s), slog.Float64("f", fl), slog.Int64("n", n))
		sameAsJSONHandler(t, r)
	})
}

// Derived loggers are JSONHandler's, at the handler's level.
func TestJSONLinesWithAttrs(t *testing.T) {
	var got, want bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelWarn}
	r := slog.NewRecord(time.Unix(1, 2), slog.LevelWarn, "m", 0)
	r.AddAttrs(slog.Float64("a", 1.5))
	_ = newJSONLines(&got, opts).WithAttrs([]slog.Attr{slog.String("k", "v")}).WithGroup("g").Handle(context.Background(), r)
	_ = slog.NewJSONHandler(&want, opts).WithAttrs([]slog.Attr{slog.String("k", "v")}).WithGroup("g").Handle(context.Background(), r)
	if got.String() != want.String() {
		t.Errorf("got %s want %s", got.Bytes(), want.Bytes())
	}
	l := slog.New(newJSONLines(&got, opts))
	l.Info("dropped")
	if l.Enabled(context.Background(), slog.LevelInfo) || bytes.Contains(got.Bytes(), []byte("dropped")) {
		t.Error("an info line passed a warn-level handler")
	}
}

func BenchmarkRequestLine(b *testing.B) {
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "Served request", 0)
	r.AddAttrs(slog.String("request_id", "01JXYZABCDEFGHJKMNPQRSTVWX"), slog.String("user", "3f2a9c0d1e2f3a4b"), slog.String("api", "openai"),
		slog.String("model", "gpt"), slog.String("provider", "sim"), slog.Int("status", 200), slog.Int("attempts", 1),
		slog.Int64("input_tokens", 17), slog.Int64("output_tokens", 64), slog.Int64("cache_read_tokens", 0),
		slog.Int64("cache_write_tokens", 0), slog.String("cost_usd", "0.000269600"),
		slog.Float64("duration_ms", 1.234), slog.Float64("ttft_ms", 0.5))
	for _, c := range []struct {
		name string
		h    slog.Handler
	}{{"jsonLines", newJSONLines(discard{}, nil)}, {"JSONHandler", slog.NewJSONHandler(discard{}, nil)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = c.h.Handle(context.Background(), r)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
