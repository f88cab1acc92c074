package translate

import (
	"errors"
	"io"
	"strings"
)

// readConversation feeds a provider stream through a Conversation's
// translator and returns the reply text and whether (and after how many
// events) the reply began.
func readConversation(st Stream, upstream string) (text string, begunAt int, err error) {
	rd := NewReader(strings.NewReader(upstream))
	out := NewWriter()
	var ev Event
	begunAt = -1
	for i := 0; ; i++ {
		err := rd.Next(&ev)
		if errors.Is(err, io.EOF) {
			return text, begunAt, st.EOF(out)
		}
		if err != nil {
			return text, begunAt, err
		}
		if err := st.Event(&ev, out); err != nil {
			return text, begunAt, err
		}
		if out.Begun() && begunAt < 0 {
			begunAt = i
		}
		if out.Len() > 0 {
			return text, begunAt, errors.New("a conversation's stream wrote client events")
		}
		text += strings.Join(out.Texts(), "")
		out.Reset()
	}
}

var conversation = Conversation{MaxTokens: 64, Messages: []Message{{Role: "user", Text: "hi <b> & \"you\""}, {Role: "assistant", Text: "hello"}, {Role: "user", Text: "again"}}}
