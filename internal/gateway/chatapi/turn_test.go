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
	turns, _, dropped, fits := boundContext(history, "now", nil, routing.Window{MaxOutput: 100})
	if !fits || dropped != 0 || roles(turns) != "user assistant user assistant user" || turns[2].Text != words(10)+"\n\n"+words(10) {
		t.Fatalf("unbounded: %v %d %+v", fits, dropped, turns)
	}
	// Each message estimates as its text plus 4 (the joined one 28, the
	// new 5): 50 tokens of room keep the last three; the two oldest go,
	// and the skipped reply counts as dropped once anything is.
	turns, _, dropped, fits = boundContext(history, "now", nil, routing.Window{Context: 100, MaxOutput: 50})
	if !fits || roles(turns) != "user assistant user" || dropped != 3 || turns[2].Text != "now" {
		t.Fatalf("bounded: %v %d %q", fits, dropped, roles(turns))
	}
	if _, _, _, fits := boundContext(nil, words(60), nil, routing.Window{Context: 100, MaxOutput: 50}); fits {
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

// Pictures count toward the window at their estimate, travel with their
// message (joined ones too), and are named for loading only when kept.
func TestBoundContextPictures(t *testing.T) {
	pic := func(id string, w, h int) store.Attachment {
		return store.Attachment{ID: id, MediaType: "image/png", Width: w, Height: h}
	}
	history := []store.Message{
		{Role: store.RoleUser, Content: "old", Attachments: []store.Attachment{pic("a", 1000, 1000)}}, // 1334 tokens
		{Role: store.RoleAssistant, Content: "seen"},
		{Role: store.RoleUser, Content: "failed", Attachments: []store.Attachment{pic("b", 75, 10)}}, // 1 token
	}
	newPic := []store.NewAttachment{{MediaType: "image/jpeg", Width: 30, Height: 25, Data: []byte{1}}} // 1 token
	turns, refs, dropped, fits := boundContext(history, "now", newPic, routing.Window{MaxOutput: 10})
	if !fits || dropped != 0 || len(turns) != 3 {
		t.Fatalf("unbounded: %v %d %+v", fits, dropped, turns)
	}
	if last := turns[2]; len(last.Pictures) != 2 || last.Pictures[0].MediaType != "image/png" || string(last.Pictures[1].Data) != "\x01" {
		t.Errorf("joined turn's pictures: %+v", last.Pictures)
	}
	if len(refs) != 2 || refs[0] != (pictureRef{0, 0, "a"}) || refs[1] != (pictureRef{2, 0, "b"}) {
		t.Errorf("refs %+v", refs)
	}
	// Room for all but the first picture: its message goes, and with it
	// the reply after it; the kept picture is the only one to load.
	turns, refs, dropped, fits = boundContext(history, "now", newPic, routing.Window{Context: 1000, MaxOutput: 10})
	if !fits || dropped != 2 || len(turns) != 1 || len(refs) != 1 || refs[0] != (pictureRef{0, 0, "b"}) {
		t.Fatalf("bounded: %v %d %+v %+v", fits, dropped, turns, refs)
	}
	if pictureTokens(4000, 3000) != 1600 || pictureTokens(0, 0) != 1600 || pictureTokens(1, 1) != 1 {
		t.Error("pictureTokens bounds")
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{900: "900 bytes", 1024: "1 KiB", 1536: "1.5 KiB", 256 << 20: "256 MiB", 3 << 29: "1.5 GiB", 5 << 40: "5 TiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}
