package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/chatgateway/chatgateway-operator/api/v1alpha1"
	"github.com/chatgateway/chatgateway-operator/internal/render"
)

// markdownReply is what the simulator is asked to answer (its [[echo]]
// marker): Markdown a model writes, with a script and an image whose
// onerror would run, a javascript: link and an image pointing at the
// page's own origin.
const markdownReply = "## Packing list\n\n" +
	"| Item | Count |\n|------|------:|\n| Socks | 3 |\n| Books | 2 |\n\n" +
	"- passport\n- charger\n  - the spare one\n\n" +
	"```go\nfunc main() {\n\tfmt.Println(\"hello\")\n}\n```\n\n" +
	"<script>window.__pwned = 'script'; fetch('/pwned-script')</script>\n\n" +
	"<img src=\"/pwned-img\" onerror=\"window.__pwned = 'img'\">\n\n" +
	"[a link](javascript:window.__pwned='link') and ![a picture](/pwned-md-image)\n"

// TestChatPageInChromium drives the chat page in a real headless Chromium,
// signed in through the real OAuth2 Proxy in front of the real gateway,
// through what a family member does with it, and runs axe-core in every
// state it reaches.
func TestChatPageInChromium(t *testing.T) {
	needChromium(t)
	fd := startFrontDoorWith(t, func(in *render.Inputs) {
		mp := &in.Providers[0]
		// A second model with a small context window, so that a long
		// conversation leaves older turns out; and a routing rule, so
		// that the gateway offers "auto".
		// sonnet reads pictures; haiku does not.
		mp.Spec.Models[0].Input = []v1alpha1.ModelInput{v1alpha1.InputText, v1alpha1.InputImage}
		mp.Spec.Models = append(mp.Spec.Models, v1alpha1.ModelSpec{Name: "haiku", ID: "claude-haiku-4-5-20251001",
			Pricing: v1alpha1.ModelPricing{InputPerMTok: "1.00", OutputPerMTok: "5.00"}, ContextWindow: 400, MaxOutputTokens: 64})
		in.Gateway.Spec.Routing = &v1alpha1.RoutingSpec{Rules: []v1alpha1.RoutingRule{{Name: "short", When: v1alpha1.RoutingCondition{MaxInputTokens: ptr.To[int32](800)}, Model: "haiku"}}}
		// A picture model, as the seed's nova-canvas: Bedrock through an
		// OpenAI-compatible LiteLLM (here the simulator's OpenAI route).
		in.Gateway.Spec.Providers = append(in.Gateway.Spec.Providers, v1alpha1.LocalRef{Name: "litellm"})
		in.Providers = append(in.Providers, v1alpha1.ModelProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "family", Name: "litellm"},
			Spec: v1alpha1.ModelProviderSpec{Type: v1alpha1.ProviderOpenAICompatible, BaseURL: mp.Spec.BaseURL + "/v1",
				APIKeySecretRef: &v1alpha1.SecretKeyRef{Name: "litellm-api-key", Key: "api-key"},
				Models: []v1alpha1.ModelSpec{{Name: "nova-canvas", ID: "amazon.nova-canvas-v1:0", Kind: v1alpha1.ModelImage,
					Pricing: v1alpha1.ModelPricing{PerImage: []v1alpha1.ImagePrice{
						{Size: "1024x1024", Quality: "standard", USD: "0.04"}, {Size: "1024x1024", Quality: "premium", USD: "0.06"}}}}},
			}})
		// Admins may read chats here, so "Who opened my chats" has
		// something to show.
		in.Gateway.Spec.Privacy.AdminChatAccess = true
		// Carol's daily limit is too small for any request.
		in.Allowlist.Spec.Users = append(in.Allowlist.Spec.Users, v1alpha1.AllowedUser{Email: "carol@example.com", Role: v1alpha1.RoleUser,
			Quota: &v1alpha1.DailyQuota{DailyHardUSD: ptr.To[v1alpha1.USD]("0.01")}})
	})

	alice := newChromium(t)
	allowClipboard(t, alice, fd.base)
	signInBrowser(t, alice, fd.oidc, fd.base, "alice@example.com")
	checkA11y(t, alice, "a new chat")
	if who := textContent(t, alice, "#who"); who != "alice@example.com" {
		t.Errorf("the page says it is signed in as %q", who)
	}
	if auto := textContent(t, alice, `#model option[value="auto"]`); !strings.Contains(auto, "picks a model for each message") {
		t.Errorf("the model picker does not explain auto: %q", auto)
	}
	// The gateway says what it can do (GET /api/me's features, GET
	// /api/models), and the page offers it: pictures for sonnet, the
	// default, with the limit said before anything is uploaded.
	waitJS(t, alice, `!document.getElementById("attach").hidden && !document.getElementById("attach").disabled`)
	if hint := textContent(t, alice, "#attach-hint"); hint != "Pictures up to 5 MB" {
		t.Errorf("the attach button says %q", hint)
	}

	t.Run("a streamed conversation, Enter sends and Shift+Enter breaks the line", func(t *testing.T) {
		do(t, alice,
			chromedp.SendKeys(chromedp.CSS(`#input`), "Hello from Chromium"),
			chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift)),
			chromedp.SendKeys(chromedp.CSS(`#input`), "second line"+kb.Enter),
		)
		waitDone(t, alice)
		if got := textContent(t, alice, `#messages li.user .body`); got != "Hello from Chromium\nsecond line" {
			t.Errorf("the message sent is %q", got)
		}
		reply := textContent(t, alice, `#messages li.assistant .body`)
		meta := textContent(t, alice, `#messages li.assistant .meta`)
		if !strings.Contains(reply, "Simulated reply") || !strings.Contains(meta, "tokens in") || !strings.Contains(meta, "$") {
			t.Errorf("the reply reads %q with %q", reply, meta)
		}
		waitJS(t, alice, `document.querySelector("#sessions a")?.textContent === "Hello from Chromium second line"`)
		waitJS(t, alice, `/^\$0\.\d+ spent of \$5\.00 · \$4\.\d\d left$/.test(document.getElementById("usage-text").textContent)`)
	})

	t.Run("a Markdown reply renders, its payloads stay inert, its code copies", func(t *testing.T) {
		do(t, alice, chromedp.Click(chromedp.CSS(`#new-chat`)))
		typeMessage(t, alice, "Show me a packing list.\n[[echo]]\n"+markdownReply)
		waitDone(t, alice)
		waitJS(t, alice, `lastReply().querySelector("pre code .hljs-keyword")`)
		var got struct {
			Heading     string   `json:"heading"`
			Cells       []string `json:"cells"`
			Items       int      `json:"items"`
			Code        string   `json:"code"`
			Scripts     int      `json:"scripts"`
			Images      int      `json:"images"`
			UnsafeLinks []string `json:"unsafeLinks"`
			Handlers    []string `json:"handlers"`
			Pwned       any      `json:"pwned"`
			Text        string   `json:"text"`
		}
		raw := js[string](t, alice, `JSON.stringify((() => {
			const b = lastReply().querySelector(".body");
			const handlers = [];
			for (const e of document.querySelectorAll("*"))
				for (const a of e.attributes) if (/^on/i.test(a.name)) handlers.push(e.tagName + " " + a.name);
			return {
				heading: b.querySelector("h4")?.textContent,
				cells: [...b.querySelectorAll("table td")].map((td) => td.textContent),
				items: b.querySelectorAll("ul li").length,
				code: b.querySelector("pre code")?.textContent,
				scripts: document.querySelectorAll("#messages script, #messages iframe, #messages object").length,
				images: document.querySelectorAll("#messages img").length,
				unsafeLinks: [...document.querySelectorAll("#messages a[href]")].map((a) => a.getAttribute("href")).filter((h) => !/^(https?:|mailto:)/.test(h)),
				handlers,
				pwned: window.__pwned ?? null,
				text: b.textContent,
			};
		})())`)
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatal(err)
		}
		if got.Heading != "Packing list" || strings.Join(got.Cells, ",") != "Socks,3,Books,2" || got.Items != 3 {
			t.Errorf("not rendered as Markdown: heading %q, cells %q, %d list items", got.Heading, got.Cells, got.Items)
		}
		if got.Code != "func main() {\n\tfmt.Println(\"hello\")\n}\n" {
			t.Errorf("code block %q", got.Code)
		}
		if got.Scripts != 0 || got.Images != 0 || len(got.UnsafeLinks) != 0 || len(got.Handlers) != 0 || got.Pwned != nil {
			t.Errorf("the payload was not inert: %d scripts, %d images, links %q, handlers %q, window.__pwned=%v", got.Scripts, got.Images, got.UnsafeLinks, got.Handlers, got.Pwned)
		}
		if !strings.Contains(got.Text, "<script>window.__pwned") || !strings.Contains(got.Text, `<img src="/pwned-img"`) {
			t.Errorf("the raw HTML the model wrote is not shown as text: %q", got.Text)
		}
		if reqs := alice.seen("pwned"); len(reqs) > 0 {
			t.Errorf("the reply made the browser ask for %q", reqs)
		}

		do(t, alice, chromedp.Click(chromedp.CSS(`#messages li.assistant:last-of-type .copy-code`)))
		waitJS(t, alice, `lastReply().querySelector(".copy-code").textContent === "Copied"`)
		if clip := js[string](t, alice, `navigator.clipboard.readText()`); clip != got.Code {
			t.Errorf("Copy code put %q on the clipboard, want the code", clip)
		}
		do(t, alice, chromedp.Click(chromedp.CSS(`#messages li.assistant:last-of-type .copy-msg`)))
		waitJS(t, alice, `lastReply().querySelector(".copy-msg").textContent === "Copied"`)
		// The page sends what was typed less surrounding space.
		if clip := js[string](t, alice, `navigator.clipboard.readText()`); clip != strings.TrimSpace(markdownReply) {
			t.Errorf("Copy reply put %q on the clipboard, want the reply's Markdown", clip)
		}
		checkA11y(t, alice, "a Markdown reply")

		// While it streams, the page redraws only the last block; at every
		// length the result must be what drawing the whole text gives.
		doc, _ := json.Marshal(markdownReply + "\n1. first\n2. second\n\n   continued\n\n> a quote\n> that goes on\n\nSetext title\n---\n\n    indented code\n\n~~~\nopen fence\n")
		if bad := js[string](t, alice, `import("/static/js/markdown.js").then(({ render, Streamed }) => {
			const text = `+string(doc)+`;
			const box = document.createElement("div");
			const view = new Streamed(box);
			for (let i = 1; i <= text.length; i++) {
				view.update(text.slice(0, i));
				const whole = document.createElement("div");
				whole.append(render(text.slice(0, i)));
				if (!box.isEqualNode(whole)) return JSON.stringify(text.slice(0, i));
			}
			return "";
		})`); bad != "" {
			t.Errorf("streamed, the reply drawn up to %s differs from drawing that text whole", bad)
		}
	})

	t.Run("Esc stops a reply mid-stream; what it cost is still counted", func(t *testing.T) {
		before := requestsToday(t, alice)
		typeMessage(t, alice, "Now write slowly. [[fault:stall=5]]\n[[echo]]\n## Streaming now\n\nThis answer has a first half that arrives and a second half that never does, because the stream stalls.")
		waitJS(t, alice, `lastReply().querySelector(".body h4")?.textContent === "Streaming now" && !document.getElementById("stop").hidden`)
		checkA11y(t, alice, "a reply streaming")
		do(t, alice, chromedp.KeyEvent(kb.Escape))
		waitJS(t, alice, `lastReply().dataset.status === "stopped" && !document.getElementById("send").hidden`)
		if b := textContent(t, alice, `#messages li.assistant:last-of-type .badge`); b != "Stopped" {
			t.Errorf("the stopped reply is marked %q", b)
		}
		waitJSValue(t, alice, `fetch("/api/me/usage").then(r => r.json()).then(u => u.days.reduce((n, d) => n + d.requests, 0))`, before+1)

		// The gateway kept what was streamed, and says it was cut short.
		do(t, alice, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS(`body.ready`)))
		waitJS(t, alice, `lastReply()?.dataset.status === "incomplete"`)
		if b := textContent(t, alice, `#messages li.assistant:last-of-type .body`); !strings.Contains(b, "Streaming now") || strings.Contains(b, "never does") {
			t.Errorf("after a reload the stopped reply reads %q", b)
		}
	})

	t.Run("a failed request says so and tries again", func(t *testing.T) {
		typeMessage(t, alice, "Are you there? [[fault:500,times=1]]")
		waitJS(t, alice, `!document.getElementById("notice").hidden`)
		if !js[bool](t, alice, `!document.getElementById("retry").hidden`) {
			t.Fatal("the error offers no retry")
		}
		checkA11y(t, alice, "an error with a retry")
		n := js[int](t, alice, `document.querySelectorAll("#messages li.assistant").length`)
		do(t, alice, chromedp.Click(chromedp.CSS(`#retry`)))
		waitJS(t, alice, `document.querySelectorAll("#messages li.assistant").length === `+strconv.Itoa(n+1)+` && lastReply().querySelector(".meta").textContent.includes("tokens in")`)
		if !js[bool](t, alice, `document.getElementById("notice").hidden`) {
			t.Error("the error stays after a successful retry")
		}
		// The retry ran the failed message again in place (replace): one
		// copy of it, in the page and in the gateway's history.
		do(t, alice, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS(`body.ready`)))
		waitJS(t, alice, `lastReply()?.querySelector(".meta")`)
		if n := js[int](t, alice, `[...document.querySelectorAll("#messages li.user")].filter(li => li.dataset.text.startsWith("Are you there?")).length`); n != 1 {
			t.Errorf("after the retry the conversation holds the failed message %d times", n)
		}
	})

	t.Run("the model picker shows prices and marks auto", func(t *testing.T) {
		got := js[[]string](t, alice, `[...document.querySelectorAll("#model option")].map(o => o.value + " | " + o.textContent)`)
		for _, want := range []string{
			"sonnet | sonnet — $3.00 in, $15.00 out per million tokens",
			"haiku | haiku — $1.00 in, $5.00 out per million tokens",
			"auto | auto — picks a model for each message",
		} {
			if !slices.Contains(got, want) {
				t.Errorf("the picker lacks %q: %q", want, got)
			}
		}
	})

	// The next two subtests make conversations of their own and delete
	// them after, leaving the page where it was for the ones after.
	back := js[string](t, alice, `location.hash`)
	backModel := js[string](t, alice, `document.getElementById("model").value`)
	var extra []string
	t.Run("regenerate the last reply; edit a message and send it again", func(t *testing.T) {
		do(t, alice, chromedp.Click(chromedp.CSS(`#new-chat`)))
		typeMessage(t, alice, "Name a colour.\n[[echo]]\nBlue")
		waitDone(t, alice)
		waitJS(t, alice, `lastReply().querySelector(".regenerate") && document.querySelector("#messages li.user .edit")`)
		checkA11y(t, alice, "a reply that can be regenerated")
		before := requestsToday(t, alice)
		do(t, alice, chromedp.Click(chromedp.CSS(`#messages .regenerate`)))
		waitJSValue(t, alice, `fetch("/api/me/usage").then(r => r.json()).then(u => u.days.reduce((n, d) => n + d.requests, 0))`, before+1)
		waitDone(t, alice)
		if n := js[int](t, alice, `document.querySelectorAll("#messages li.msg").length`); n != 2 {
			t.Errorf("after regenerating the conversation has %d messages, want the question and one reply", n)
		}

		do(t, alice, chromedp.Click(chromedp.CSS(`#messages li.user .edit`)))
		waitJS(t, alice, `document.querySelector("#messages .edit-area") === document.activeElement`)
		checkA11y(t, alice, "editing a message")
		setValue(t, alice, "#messages .edit-area", "Name another colour.\n[[echo]]\nGreen")
		do(t, alice, chromedp.Click(chromedp.CSS(`#messages .edit-form button[type=submit]`)))
		waitJS(t, alice, `lastReply()?.dataset.text === "Green" && lastReply().querySelector(".meta").textContent.includes("tokens in")`)

		// The gateway has the edited conversation, not the old one.
		do(t, alice, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS(`body.ready`)))
		waitJS(t, alice, `lastReply()?.dataset.text === "Green"`)
		if got := js[[]string](t, alice, `[...document.querySelectorAll("#messages li.msg")].map(li => li.dataset.text)`); len(got) != 2 || !strings.HasPrefix(got[0], "Name another colour.") {
			t.Errorf("after a reload the conversation is %q", got)
		}
		extra = append(extra, js[string](t, alice, `location.hash.split("/").pop()`))
	})

	t.Run("a picture goes to a model that reads pictures and is refused for one that does not", func(t *testing.T) {
		do(t, alice, chromedp.Click(chromedp.CSS(`#new-chat`)))
		js[bool](t, alice, `(() => { const s = document.getElementById("model"); s.value = "sonnet"; s.dispatchEvent(new Event("change")); return true; })()`)
		waitJS(t, alice, `!document.getElementById("attach").disabled`)
		pic := filepath.Join(t.TempDir(), "dot.png")
		if err := os.WriteFile(pic, pngBytes(t, 32, 24), 0o600); err != nil {
			t.Fatal(err)
		}
		do(t, alice, chromedp.SetUploadFiles(chromedp.CSS(`#attach-file`), []string{pic}, chromedp.NodeReady))
		waitJS(t, alice, `!document.getElementById("attached").hidden && document.getElementById("attached").textContent.includes("dot.png")`)
		checkA11y(t, alice, "a picture attached")
		typeMessage(t, alice, "What is in this picture? [[pictures]]")
		waitDone(t, alice)
		if got := js[string](t, alice, `lastReply().dataset.text`); got != "Pictures: image/png 32x24." {
			t.Errorf("the model read %q", got)
		}
		// Stored with the message: after a reload the page shows it from
		// the gateway, with a link to download it.
		do(t, alice, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS(`body.ready`)))
		waitJS(t, alice, `document.querySelector("#messages li.user figure img")?.complete && document.querySelector("#messages li.user figure img").naturalWidth === 32`)
		if dl := js[string](t, alice, `document.querySelector("#messages li.user figure a[download]")?.getAttribute("download") || ""`); dl != "dot.png" {
			t.Errorf("the download link saves %q", dl)
		}
		checkA11y(t, alice, "a message with its picture")

		// haiku does not read pictures: the page says so before anything
		// is attached, and the gateway refuses one sent anyway.
		js[bool](t, alice, `(() => { const s = document.getElementById("model"); s.value = "haiku"; s.dispatchEvent(new Event("change")); return true; })()`)
		waitJS(t, alice, `document.getElementById("attach").disabled && document.getElementById("attach-hint").textContent === "haiku does not take pictures"`)
		checkA11y(t, alice, "a model that does not take pictures")
		refused := js[string](t, alice, `fetch("/api/sessions/" + location.hash.split("/").pop() + "/messages", {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify({content: "and this?", model: "haiku", attachments: [{type: "image", mediaType: "image/png", name: "dot.png", data: `+jsString(base64.StdEncoding.EncodeToString(pngBytes(t, 32, 24)))+`}]})})
			.then(async r => r.status + " " + (await r.json()).error.message)`)
		if refused != "400 model haiku does not take pictures" {
			t.Errorf("a picture sent to haiku: %q", refused)
		}
		extra = append(extra, js[string](t, alice, `location.hash.split("/").pop()`))
	})
	t.Run("a picture asked for on the page, shown, downloadable and priced per picture", func(t *testing.T) {
		if got := textContent(t, alice, `#model option[value="nova-canvas"]`); got != "nova-canvas — pictures, from $0.04 each" {
			t.Errorf("the picker offers the picture model as %q", got)
		}
		do(t, alice, chromedp.Click(chromedp.CSS(`#new-chat`)))
		js[bool](t, alice, `(() => { const s = document.getElementById("model"); s.value = "nova-canvas"; s.dispatchEvent(new Event("change")); return true; })()`)
		waitJS(t, alice, `document.getElementById("input").placeholder === "Describe a picture"`)
		spent := js[string](t, alice, `fetch("/api/me/usage").then(r => r.json()).then(u => u.quota.spentUSD)`)
		typeMessage(t, alice, "A lighthouse at dusk")
		waitJS(t, alice, `lastReply()?.querySelector("figure img")?.complete && lastReply().querySelector("figure img").naturalWidth === 1024 && lastReply().querySelector(".meta").textContent.includes("$0.04")`)
		if dl := js[string](t, alice, `lastReply().querySelector("figure a[download]")?.getAttribute("download") || ""`); dl != "picture-1.png" {
			t.Errorf("the download link saves %q", dl)
		}
		checkA11y(t, alice, "a picture made on the page")
		// The spend grows by exactly the price of one standard picture.
		waitJS(t, alice, `fetch("/api/me/usage").then(r => r.json()).then(u => Math.round((Number(u.quota.spentUSD) - Number(`+jsString(spent)+`)) * 1e6) === 40000)`)
		extra = append(extra, js[string](t, alice, `location.hash.split("/").pop()`))
	})
	for _, id := range extra {
		js[bool](t, alice, `fetch("/api/sessions/`+id+`", {method: "DELETE"}).then(r => r.ok)`)
	}
	js[bool](t, alice, `(() => { localStorage.setItem("model", `+jsString(backModel)+`); location.hash = `+jsString(back)+`; return true; })()`)
	do(t, alice, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS(`body.ready`)))
	waitJS(t, alice, `location.hash === `+jsString(back)+` && lastReply() && document.getElementById("model").value === `+jsString(backModel))

	t.Run("conversations are found by title and renamed in place", func(t *testing.T) {
		do(t, alice, chromedp.SendKeys(chromedp.CSS(`#search`), "HELLO"))
		waitJS(t, alice, `document.querySelectorAll("#sessions a").length === 1`)
		if got := textContent(t, alice, `#sessions a`); got != "Hello from Chromium second line" {
			t.Errorf("searching for hello lists %q", got)
		}
		do(t, alice, chromedp.SendKeys(chromedp.CSS(`#search`), "zebra"))
		waitJS(t, alice, `document.querySelectorAll("#sessions a").length === 0 && !document.getElementById("sessions-empty").hidden`)
		setValue(t, alice, "#search", "")
		waitJS(t, alice, `document.querySelectorAll("#sessions a").length === 2`)

		do(t, alice,
			chromedp.Click(chromedp.CSS(`#rename`)),
			chromedp.WaitVisible(chromedp.CSS(`#title-input`)),
			chromedp.SendKeys(chromedp.CSS(`#title-input`), "Packing list"+kb.Enter),
		)
		waitJS(t, alice, `document.getElementById("title").textContent === "Packing list" && [...document.querySelectorAll("#sessions a")].some(a => a.textContent === "Packing list")`)

		// A title is text, whatever it holds.
		hostile := `<img src=/pwned-title onerror="window.__pwned='title'"> & 🧳`
		do(t, alice, chromedp.Click(chromedp.CSS(`#rename`)), chromedp.WaitVisible(chromedp.CSS(`#title-input`)))
		setValue(t, alice, "#title-input", hostile)
		do(t, alice, chromedp.SendKeys(chromedp.CSS(`#title-input`), kb.Enter))
		waitJS(t, alice, `[...document.querySelectorAll("#sessions a")].some(a => a.textContent === `+jsString(hostile)+`)`)
		if js[bool](t, alice, `!!document.querySelector("#sessions img, #title img") || window.__pwned !== undefined`) || len(alice.seen("pwned-title")) > 0 {
			t.Error("a title was taken for HTML")
		}
		do(t, alice, chromedp.Click(chromedp.CSS(`#rename`)), chromedp.WaitVisible(chromedp.CSS(`#title-input`)))
		setValue(t, alice, "#title-input", "Packing list")
		do(t, alice, chromedp.SendKeys(chromedp.CSS(`#title-input`), kb.Enter))
		waitJS(t, alice, `document.getElementById("title").textContent === "Packing list"`)
		do(t, alice, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS(`body.ready`)))
		waitJS(t, alice, `document.getElementById("title").textContent === "Packing list" && document.querySelector("#messages pre code .hljs-keyword")`)
		// The picture for README shows the Markdown reply.
		waitJS(t, alice, `(() => { const li = document.querySelector("#messages li.assistant table").closest("li"); li.scrollIntoView();
			const top = li.getBoundingClientRect().top; return top >= 0 && top < 120; })()`)
		time.Sleep(200 * time.Millisecond)
		if top := js[float64](t, alice, `document.querySelector("#messages li.assistant table").closest("li").getBoundingClientRect().top`); top < 0 || top > 120 {
			t.Logf("the Markdown reply moved before the screenshot (top %.0f px)", top)
		}
		screenshot(t, alice, "chat-desktop-light.png")
	})

	t.Run("a long conversation shows where older turns were left out", func(t *testing.T) {
		do(t, alice, chromedp.Click(chromedp.CSS(`#new-chat`)))
		js[bool](t, alice, `(() => { const s = document.getElementById("model"); s.value = "haiku"; s.dispatchEvent(new Event("change")); return true; })()`)
		long := strings.Repeat("word ", 140)
		typeMessage(t, alice, "[[echo]] "+long)
		waitDone(t, alice)
		if js[bool](t, alice, `!!document.querySelector("#messages .dropped")`) {
			t.Fatal("the first turn says messages were left out")
		}
		typeMessage(t, alice, "And another thing: "+long)
		waitDone(t, alice)
		note := textContent(t, alice, `#messages .dropped`)
		if !strings.Contains(note, "2 messages above") {
			t.Errorf("the note says %q", note)
		}
		// The note sits after the two messages left out.
		if pos := js[int](t, alice, `[...document.getElementById("messages").children].findIndex(li => li.classList.contains("dropped"))`); pos != 2 {
			t.Errorf("the note is at position %d, want 2", pos)
		}
		checkA11y(t, alice, "messages left out of the context")
	})

	t.Run("the usage view shows today and the last days by model", func(t *testing.T) {
		do(t, alice, chromedp.Click(chromedp.CSS(`a[data-view="usage"]`)))
		waitJS(t, alice, `document.querySelectorAll("#usage-body .chart rect").length > 0`)
		rows := js[[]string](t, alice, `[...document.querySelectorAll("#usage-body .usage-table tbody th")].map(th => th.textContent)`)
		if strings.Join(rows, ",") != "nova-canvas,sonnet,haiku" {
			t.Errorf("the usage table lists %q, want nova-canvas (the picture, $0.04), sonnet, then haiku", rows)
		}
		// The picture made on the page is counted in a Pictures column.
		pics := js[string](t, alice, `(() => { const h = [...document.querySelectorAll("#usage-body .usage-table thead th")].map(th => th.textContent);
			const i = h.indexOf("Pictures"); const row = document.querySelector("#usage-body .usage-table tbody tr");
			return i < 0 ? "no Pictures column" : row.children[i].textContent; })()`)
		if pics != "1" {
			t.Errorf("nova-canvas's pictures read %q", pics)
		}
		facts := js[string](t, alice, `document.querySelector("#usage-body .facts").textContent`)
		if !strings.Contains(facts, "Spent today") || !strings.Contains(facts, "Daily limit$5.00") {
			t.Errorf("today's figures read %q", facts)
		}
		checkA11y(t, alice, "the usage view")
		screenshot(t, alice, "usage-desktop-light.png")
	})

	bob := newChromium(t)
	signInBrowser(t, bob, fd.oidc, fd.base, "bob@example.com")

	t.Run("who opened my chats", func(t *testing.T) {
		if bobs := textContent(t, bob, `#sessions`); strings.Contains(bobs, "Packing") || strings.Contains(bobs, "Hello") {
			t.Fatalf("alice's conversations are listed on bob's page: %q", bobs)
		}
		typeMessage(t, bob, "Bob's own question")
		waitDone(t, bob)
		// Alice is an admin and admin access is on: she reads bob's chats.
		id := js[string](t, alice, `fetch("/api/admin/users/bob@example.com/sessions").then(r => r.json()).then(l => l.sessions[0].id)`)
		js[int](t, alice, `fetch("/api/admin/users/bob@example.com/sessions/`+id+`").then(r => r.status)`)
		do(t, bob, chromedp.Click(chromedp.CSS(`a[data-view="data"]`)))
		waitJS(t, bob, `document.querySelectorAll("#data-body .audit li").length === 2`)
		entries := js[[]string](t, bob, `[...document.querySelectorAll("#data-body .audit li")].map(li => li.textContent)`)
		joined := strings.Join(entries, "\n")
		if !strings.Contains(joined, "alice@example.com looked at the list of your conversations") ||
			!strings.Contains(joined, "alice@example.com opened a conversation of yours: “Bob's own question”") {
			t.Errorf("bob's record reads:\n%s", joined)
		}
		checkA11y(t, bob, "your data")
	})

	t.Run("the privacy line follows the toggles and links to who can read what", func(t *testing.T) {
		// Admin access is on here, export and sharing are not.
		line := textContent(t, bob, "#privacy")
		if want := "This gateway's admins can read your conversations, and each time they do it is listed under Your data. Who can read them"; line != want {
			t.Errorf("the privacy line reads %q, want %q", line, want)
		}
		// Every combination of the toggles gets its own true sentence.
		sentences := js[[]string](t, bob, `import("/static/js/ui.js").then((m) => [0, 1, 2, 3, 4, 5, 6, 7].map((i) =>
			m.privacySentence({adminChatAccess: !!(i & 1), adminExport: !!(i & 2), communitySharing: !!(i & 4)})))`)
		want := []string{
			"Nobody else can read your conversations through this gateway: its admins see what you spend, never what you write.",
			"This gateway's admins can read your conversations, and each time they do it is listed under Your data.",
			"This gateway's admins can export your conversations, and each time they do it is listed under Your data.",
			"This gateway's admins can read and export your conversations, and each time they do it is listed under Your data.",
			"Nobody else can read your conversations through this gateway, except those you share with everyone signed in here: its admins see what you spend, never what you write.",
			"This gateway's admins can read your conversations, and each time they do it is listed under Your data; a conversation you share can be read by everyone signed in here.",
			"This gateway's admins can export your conversations, and each time they do it is listed under Your data; a conversation you share can be read by everyone signed in here.",
			"This gateway's admins can read and export your conversations, and each time they do it is listed under Your data; a conversation you share can be read by everyone signed in here.",
		}
		if strings.Join(sentences, "\n") != strings.Join(want, "\n") {
			t.Errorf("the privacy sentences:\n%s\nwant:\n%s", strings.Join(sentences, "\n"), strings.Join(want, "\n"))
		}
		do(t, bob, chromedp.Click(chromedp.CSS(`#privacy a`)))
		waitJS(t, bob, `document.querySelector("h1")?.textContent === "Who can read your conversations"`)
		if page := textContent(t, bob, "main"); !strings.Contains(page, "The gateway's admins") || !strings.Contains(page, "personal API keys") {
			t.Errorf("the threat-model page reads %q", page)
		}
		checkA11y(t, bob, "who can read your conversations")
		do(t, bob, chromedp.Navigate(fd.base+"/#/data"), chromedp.WaitReady(chromedp.CSS(`body.ready`)))
	})

	t.Run("a personal key: created, copied once, used with openai-go, revoked", func(t *testing.T) {
		allowClipboard(t, bob, fd.base)
		waitJS(t, bob, `!document.getElementById("keys").hidden`)
		setValue(t, bob, "#key-name", "laptop")
		do(t, bob, chromedp.Click(chromedp.CSS(`#keys form button[type="submit"]`)))
		waitJS(t, bob, `!!document.querySelector("#keys .fresh-key code.secret")`)
		key := textContent(t, bob, "#keys .fresh-key code.secret")
		if !strings.HasPrefix(key, "cgw_") || len(key) != 47 {
			t.Fatalf("the page shows the new key as %q", key)
		}
		do(t, bob, chromedp.Click(chromedp.CSS(`#keys .fresh-key button`)))
		if clip := js[string](t, bob, `navigator.clipboard.readText()`); clip != key {
			t.Errorf("Copy key put %q on the clipboard", clip)
		}
		if item := textContent(t, bob, "#keys ul.keys li"); !strings.Contains(item, "laptop") || !strings.Contains(item, key[:12]+"…") || !strings.Contains(item, "never used") {
			t.Errorf("the key is listed as %q", item)
		}
		checkA11y(t, bob, "a new personal key")

		// Shown once: after a reload the page has the prefix, never the key.
		do(t, bob, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS(`body.ready`)))
		waitJS(t, bob, `!document.getElementById("keys").hidden && document.querySelectorAll("#keys ul.keys li").length === 1`)
		if js[bool](t, bob, `document.documentElement.outerHTML.includes(`+jsString(key)+`)`) {
			t.Error("the key is on the page after a reload")
		}

		// A program uses it, as bob: his usage counts it.
		before := requestsToday(t, bob)
		client := openai.NewClient(ooption.WithBaseURL(fd.base+"/v1/"), ooption.WithAPIKey(key), ooption.WithMaxRetries(0))
		ask := func() error {
			_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model: "sonnet", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("from a program")}})
			return err
		}
		if err := ask(); err != nil {
			t.Fatalf("openai-go with bob's key: %v", err)
		}
		waitJSValue(t, bob, `fetch("/api/me/usage").then(r => r.json()).then(u => u.days.reduce((n, d) => n + d.requests, 0))`, before+1)

		// Revoked from the page (after confirming): the program is refused.
		do(t, bob, chromedp.Click(chromedp.CSS(`#keys ul.keys li button.danger`)))
		waitJS(t, bob, `document.getElementById("dialog").open`)
		do(t, bob, chromedp.Click(chromedp.CSS(`#dialog-confirm`)))
		waitJS(t, bob, `document.querySelector("#keys ul.keys li.empty")?.textContent === "No keys yet."`)
		var apiErr *openai.Error
		if err := ask(); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
			t.Fatalf("openai-go with the revoked key: %v, want 401", err)
		}
	})

	t.Run("export, delete everything, import: the conversations are back", func(t *testing.T) {
		dir := t.TempDir()
		downloadsTo(t, alice, dir)
		do(t, alice, chromedp.Click(chromedp.CSS(`a[data-view="data"]`)), chromedp.Click(chromedp.CSS(`#export`)))
		waitJS(t, alice, `document.querySelector("#data-body .result")?.textContent === "Downloaded 3 conversations."`)
		got := waitForDownload(t, alice)
		file := got.path
		if !regexp.MustCompile(`^conversations-\d{4}-\d\d-\d\d\.jsonl$`).MatchString(got.name) {
			t.Errorf("the archive is offered as %q", got.name)
		}
		lines := strings.Count(strings.TrimSpace(readFile(t, file)), "\n") + 1
		if lines != 3 {
			t.Fatalf("the downloaded archive has %d lines, want 3", lines)
		}

		do(t, alice, chromedp.Click(chromedp.CSS(`#delete-all`)), chromedp.WaitVisible(chromedp.CSS(`#dialog`)))
		body := textContent(t, alice, `#dialog`)
		for _, want := range []string{"your 3 conversations", "Packing list", "Hello from Chromium second line", "the key that encrypts them", "What stays"} {
			if !strings.Contains(body, want) {
				t.Errorf("the confirmation does not name %q: %q", want, body)
			}
		}
		checkA11y(t, alice, "the delete confirmation")
		do(t, alice, chromedp.Click(chromedp.CSS(`#dialog-confirm`)))
		waitJS(t, alice, `document.querySelectorAll("#sessions a").length === 0`)
		if n := js[int](t, alice, `fetch("/api/sessions").then(r => r.json()).then(l => l.sessions.length)`); n != 0 {
			t.Fatalf("after deleting everything the gateway still has %d sessions", n)
		}

		do(t, alice, chromedp.SetUploadFiles(chromedp.CSS(`#import-file`), []string{file}))
		waitJS(t, alice, `document.querySelector("#data-body .result")?.textContent === "Imported 3 conversations."`)
		waitJS(t, alice, `document.querySelectorAll("#sessions a").length === 3`)
		js[bool](t, alice, `(() => { [...document.querySelectorAll("#sessions a")].find(a => a.textContent === "Packing list").click(); return true; })()`)
		waitJS(t, alice, `document.getElementById("title").textContent === "Packing list" && document.querySelector("#messages li.assistant table")`)

		// The same archive again, and a file that is not one: each stops
		// with the gateway's reason, and nothing is duplicated.
		do(t, alice, chromedp.Click(chromedp.CSS(`a[data-view="data"]`)), chromedp.SetUploadFiles(chromedp.CSS(`#import-file`), []string{file}))
		waitJS(t, alice, `document.querySelector("#data-body .result")?.textContent.startsWith("The import stopped: line 1: session")`)
		if got := textContent(t, alice, `#data-body .result`); !strings.Contains(got, "already exists") {
			t.Errorf("importing the archive twice says %q", got)
		}
		notArchive := filepath.Join(t.TempDir(), "notes.txt")
		if err := os.WriteFile(notArchive, []byte("shopping: milk, eggs\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		do(t, alice, chromedp.SetUploadFiles(chromedp.CSS(`#import-file`), []string{notArchive}))
		waitJS(t, alice, `document.querySelector("#data-body .result")?.textContent === "The import stopped: line 1 is not an exported session"`)
		if n := js[int](t, alice, `fetch("/api/sessions").then(r => r.json()).then(l => l.sessions.length)`); n != 3 {
			t.Errorf("after the refused imports there are %d conversations, want 3", n)
		}
		js[bool](t, alice, `(() => { [...document.querySelectorAll("#sessions a")].find(a => a.textContent === "Packing list").click(); return true; })()`)
		waitJS(t, alice, `document.getElementById("title").textContent === "Packing list"`)
	})

	t.Run("phone width and dark mode", func(t *testing.T) {
		emulate(t, alice, 375, 740, "dark")
		do(t, alice, chromedp.Reload(), chromedp.WaitReady(chromedp.CSS(`body.ready`)))
		waitJS(t, alice, `document.querySelector("#messages pre code .hljs-keyword")`)
		var got struct {
			Width   int     `json:"width"`
			Light   float64 `json:"light"`
			Sidebar string  `json:"sidebar"`
			Menu    bool    `json:"menu"`
		}
		raw := js[string](t, alice, `JSON.stringify({
			width: document.documentElement.scrollWidth,
			light: (() => { const m = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number); return (m[0] + m[1] + m[2]) / 765; })(),
			sidebar: getComputedStyle(document.getElementById("sidebar")).visibility,
			menu: getComputedStyle(document.getElementById("menu")).display !== "none",
		})`)
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatal(err)
		}
		if got.Width > 375 || got.Light > 0.2 || got.Sidebar != "hidden" || !got.Menu {
			t.Errorf("at 375 px in dark mode: page width %d, background lightness %.2f, sidebar %s, menu button shown %v", got.Width, got.Light, got.Sidebar, got.Menu)
		}
		checkA11y(t, alice, "phone, dark, a conversation")
		screenshot(t, alice, "chat-phone-dark.png")

		do(t, alice, chromedp.Click(chromedp.CSS(`#menu`)))
		// Open, and done sliding in.
		waitJS(t, alice, `getComputedStyle(document.getElementById("sidebar")).visibility === "visible" && document.getElementById("sidebar").getBoundingClientRect().left === 0`)
		checkA11y(t, alice, "phone, dark, the menu open")
		do(t, alice, chromedp.Click(chromedp.CSS(`a[data-view="usage"]`)))
		waitJS(t, alice, `getComputedStyle(document.getElementById("sidebar")).visibility === "hidden" && document.querySelector("#usage-body .chart")`)
		if w := js[int](t, alice, `document.documentElement.scrollWidth`); w > 375 {
			t.Errorf("the usage view is %d px wide on a 375 px phone", w)
		}
		checkA11y(t, alice, "phone, dark, usage")
		screenshot(t, alice, "usage-phone-dark.png")
		do(t, alice, chromedp.Navigate(fd.base+"/#/data"), chromedp.WaitReady(chromedp.CSS(`body.ready`)))
		waitJS(t, alice, `document.querySelector("#data-body .audit, #data-body .empty")`)
		if w := js[int](t, alice, `document.documentElement.scrollWidth`); w > 375 {
			t.Errorf("the data view is %d px wide on a 375 px phone", w)
		}
		checkA11y(t, alice, "phone, dark, your data")
		emulate(t, alice, 1280, 800, "light")
	})

	t.Run("the daily limit says when it starts again, in the person's time zone", func(t *testing.T) {
		carol := newChromium(t)
		setTimeZone(t, carol, "Asia/Tokyo")
		signInBrowser(t, carol, fd.oidc, fd.base, "carol@example.com")
		typeMessage(t, carol, "Hello")
		waitJS(t, carol, `!document.getElementById("notice").hidden`)
		got := strings.NewReplacer("\u202f", " ", "\u00a0", " ").Replace(textContent(t, carol, `#notice`))
		tokyo, err := time.LoadLocation("Asia/Tokyo")
		if err != nil {
			t.Fatal(err)
		}
		// The family's quota day is UTC's; it starts again at the next UTC midnight.
		now := time.Now().In(tokyo)
		reset := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour).In(tokyo)
		want := "You have reached today's spending limit. You can send again at " + reset.Format("3:04 PM") + "."
		if reset.YearDay() != now.YearDay() {
			want = "You have reached today's spending limit. You can send again tomorrow at " + reset.Format("3:04 PM") + "."
		}
		// The gateway's own words follow, with the figures.
		if !strings.Contains(got, want) || !strings.Contains(got, "Daily spending limit reached: you have spent $0.00 of your $0.01 daily limit") {
			t.Errorf("the notice reads %q, want it to say %q", got, want)
		}
		checkA11y(t, carol, "the daily limit reached")
	})

	t.Run("sign out", func(t *testing.T) {
		do(t, bob, chromedp.Click(chromedp.CSS(`#sign-out`)))
		waitForLeaving(t, bob, fd.base+"/")
		resp := result(t, bob, chromedp.NavigateResponse(fd.base+"/api/sessions"))
		if resp.Status != 401 {
			t.Errorf("after signing out the API answers %d, want 401", resp.Status)
		}
	})
}

// typeMessage puts text in the message box and presses Enter.
func typeMessage(t *testing.T, b *tab, text string) {
	t.Helper()
	setValue(t, b, "#input", text)
	do(t, b, chromedp.SendKeys(chromedp.CSS(`#input`), kb.Enter))
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// setValue sets a field as typing would, firing its input event.
func setValue(t *testing.T, b *tab, sel, value string) {
	t.Helper()
	v, _ := json.Marshal(value)
	js[bool](t, b, `(() => { const e = document.querySelector("`+sel+`"); e.value = `+string(v)+`; e.dispatchEvent(new Event("input")); return true; })()`)
}

// waitDone waits for the reply being written to finish.
func waitDone(t *testing.T, b *tab) {
	t.Helper()
	waitJS(t, b, `!document.getElementById("send").hidden && lastReply() && !lastReply().classList.contains("live") && lastReply().querySelector(".meta").textContent.includes("tokens in")`)
}

// requestsToday counts the person's requests in the ledger, as /api/me/usage reports them.
func requestsToday(t *testing.T, b *tab) int {
	t.Helper()
	return js[int](t, b, `fetch("/api/me/usage").then(r => r.json()).then(u => u.days.reduce((n, d) => n + d.requests, 0))`)
}

// waitJSValue waits until a numeric expression reaches want.
func waitJSValue(t *testing.T, b *tab, expr string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := js[int](t, b, expr)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %d, want %d", expr, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitForLeaving waits until the tab is no longer on url.
func waitForLeaving(t *testing.T, b *tab, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if loc := result(t, b, chromedp.Location()); loc != url && !regexp.MustCompile(`^`+regexp.QuoteMeta(url)+`#`).MatchString(loc) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the tab is still on %s", url)
}

// pngBytes is a w×h PNG picture.
func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
