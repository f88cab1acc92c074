package controllers

import (
	"testing"
	"time"

	"github.com/chatgateway/chatgateway-operator/internal/render"
)

func TestPlanToken(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	interval, grace := 720*time.Hour, 10*time.Minute
	mint := func() string { return "new" }
	live := render.TokenState{Current: "old", RotatedAt: t0}
	inGrace := render.TokenState{Current: "cur", RotatedAt: t0, Previous: "prev", PreviousExpiresAt: t0.Add(grace)}

	cases := []struct {
		name             string
		cur              render.TokenState
		handled, request string
		now              time.Time
		wantCurrent      string
		wantPrevious     string
		wantRotated      string
		wantWake         time.Duration
	}{
		{"first token", render.TokenState{}, "", "", t0, "new", "", "created", interval},
		{"first token with the annotation already set", render.TokenState{}, "", "x", t0, "new", "", "created", interval},
		{"before the interval nothing changes", live, "", "", t0.Add(interval - time.Second), "old", "", "", time.Second},
		{"a restart an hour later does not rotate", live, "", "", t0.Add(time.Hour), "old", "", "", interval - time.Hour},
		{"at the interval it rotates and keeps the previous", live, "", "", t0.Add(interval), "new", "old", "scheduled", grace},
		{"the kill switch revokes the previous at once", inGrace, "", "now", t0.Add(time.Minute), "new", "", "requested", interval},
		{"a handled request does not rotate again", live, "now", "now", t0.Add(time.Hour), "old", "", "", interval - time.Hour},
		{"the previous is dropped after its grace", inGrace, "", "", t0.Add(grace), "cur", "", "", interval - grace},
		{"within grace the previous stays", inGrace, "", "", t0.Add(time.Minute), "cur", "prev", "", grace - time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := planToken(tc.cur, tc.handled, tc.request, interval, grace, tc.now, mint)
			if p.state.Current != tc.wantCurrent || p.state.Previous != tc.wantPrevious || p.rotated != tc.wantRotated {
				t.Fatalf("got current=%q previous=%q rotated=%q; want %q %q %q",
					p.state.Current, p.state.Previous, p.rotated, tc.wantCurrent, tc.wantPrevious, tc.wantRotated)
			}
			if p.rotated == "scheduled" && !p.state.PreviousExpiresAt.Equal(tc.now.Add(grace)) {
				t.Fatalf("previous expires at %s, want %s", p.state.PreviousExpiresAt, tc.now.Add(grace))
			}
			if w := p.nextWake(interval, tc.now); w != tc.wantWake {
				t.Fatalf("next wake in %s, want %s", w, tc.wantWake)
			}
		})
	}
}

func TestMintToken(t *testing.T) {
	a, b := mintToken(), mintToken()
	if len(a) != 43 || a == b {
		t.Fatalf("tokens must be 32 random bytes, URL-safe base64 without padding: %q %q", a, b)
	}
}
