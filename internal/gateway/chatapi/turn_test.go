package chatapi

import (
	"strings"
	"testing"

	"github.com/chatgateway/chatgateway-operator/internal/gateway/routing"
	"github.com/chatgateway/chatgateway-operator/internal/gateway/translate"
	"github.com/chatgateway/chatgateway-operator/internal/store"
)

// TestBoundContext: the history is joined by role, replies without text
// are skipped, and the oldest turns go first until the estimate fits the
// window less the reply's room; the first message sent is the user's.
func TestBoundContext(t *testing.T) {
	msg := func(role store.Role, text string) store.Message { return store.Message{Role: role, Content: text} }
	words := func(n int) string { return strings.Repeat("abcd", n) } // n estimated tokens
	history := []store.Message{
		msg(store.RoleUser, words(10)), msg(store.RoleAssistant, words(10)),
		msg(store.RoleUser, words(10)), msg(store.RoleAssistant, ""), // a reply that failed
		msg(store.RoleUser, words(10)), msg(store.RoleAssistant, words(10)),
	}
	roles := func(ms []translate.Message) string {
		var r []string
		for _, m := range ms {
			r = append(r, m.Role)
		}
		return strings.Join(r, " ")
	}
	// Unbounded: everything, the two user messages around the failed reply joined.
	turns, dropped, fits := boundContext(history, "now", routing.Window{MaxOutput: 100})
	if !fits || dropped != 0 || roles(turns) != "user assistant user assistant user" || turns[2].Text != words(10)+"\n\n"+words(10) {
		t.Fatalf("unbounded: %v %d %+v", fits, dropped, turns)
	}
	// Each message estimates as its text plus 4 (the joined one 28, the
	// new 5): 50 tokens of room keep the last three; the two oldest go,
	// and the skipped reply counts as dropped once anything is.
	turns, dropped, fits = boundContext(history, "now", routing.Window{Context: 100, MaxOutput: 50})
	if !fits || roles(turns) != "user assistant user" || dropped != 3 || turns[2].Text != "now" {
		t.Fatalf("bounded: %v %d %q", fits, dropped, roles(turns))
	}
	if _, _, fits := boundContext(nil, words(60), routing.Window{Context: 100, MaxOutput: 50}); fits {
		t.Error("a message larger than the window fits")
	}
}

func TestTitleFrom(t *testing.T) {
	if got := titleFrom("  plan\n the   trip "); got != "plan the trip" {
		t.Errorf("%q", got)
	}
	long := strings.Repeat("é", 70)
	if got := titleFrom(long); got != strings.Repeat("é", 60)+"…" {
		t.Errorf("%q", got)
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{900: "900 bytes", 1024: "1 KiB", 1536: "1.5 KiB", 256 << 20: "256 MiB", 3 << 29: "1.5 GiB", 5 << 40: "5 TiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}
