package e2e

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"testing"
)

var webuiBench = flag.Bool("webui.bench", false, "measure the chat page's Markdown rendering in Chromium (TestChatPageRenderCost)")

// TestChatPageRenderCost measures, in Chromium, what rendering a reply
// costs the page: one render of a finished reply of a given size, and a
// whole streamed reply drawn after every delta as the page draws it (at
// most once a frame in the page, so every delta is the worst case), then
// drawn whole at the end. The reply mixes paragraphs, a list, a table and
// a code block, as chat answers do.
//
//	go test ./test/e2e -run TestChatPageRenderCost -webui.bench -v
func TestChatPageRenderCost(t *testing.T) {
	if !*webuiBench {
		t.Skip("benchmark: run with -webui.bench")
	}
	needChromium(t)
	fd := startFrontDoor(t)
	b := newChromium(t)
	signInBrowser(t, b, fd.oidc, fd.base, "alice@example.com")
	section := "### A section\n\nSome prose with **bold**, `code` and a [link](https://example.com). " +
		strings.Repeat("More words to read. ", 12) + "\n\n- one\n- two\n- three\n\n" +
		"| a | b |\n|---|---|\n| 1 | 2 |\n\n```go\nfunc f(x int) int {\n\treturn x * 2\n}\n```\n\n"
	for _, kb := range []int{2, 20, 100} {
		text := strings.Repeat(section, kb*1024/len(section)+1)
		src, _ := json.Marshal(text)
		raw := js[string](t, b, fmt.Sprintf(`import("/static/js/markdown.js").then(async ({ render, Streamed }) => {
			const text = %s;
			const box = document.createElement("div");
			document.body.append(box);
			box.replaceChildren(render(text)); // warm up, and load highlight.js
			await new Promise((r) => setTimeout(r, 300));
			let t0 = performance.now();
			const n = 20;
			for (let i = 0; i < n; i++) box.replaceChildren(render(text));
			const once = (performance.now() - t0) / n;
			// Streamed in pieces of about 40 bytes, drawn after each as the page does.
			const deltas = Math.ceil(text.length / 40);
			box.replaceChildren();
			const view = new Streamed(box);
			t0 = performance.now();
			for (let i = 1; i <= deltas; i++) view.update(text.slice(0, i * 40));
			view.finish(text);
			const streamed = performance.now() - t0;
			box.remove();
			return JSON.stringify({ bytes: text.length, once, deltas, streamed });
		})`, src))
		var r struct {
			Bytes    int     `json:"bytes"`
			Once     float64 `json:"once"`
			Deltas   int     `json:"deltas"`
			Streamed float64 `json:"streamed"`
		}
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			t.Fatal(err)
		}
		t.Logf("%6d bytes: one render %.2f ms; streamed in %d deltas, drawn after each and whole at the end: %.0f ms in all (%.2f ms a delta)",
			r.Bytes, r.Once, r.Deltas, r.Streamed, r.Streamed/float64(r.Deltas))
	}
}
