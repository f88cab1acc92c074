package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"
)

// chromium is Debian's Chromium, which .ci/run installs.
const chromium = "/usr/bin/chromium"

// TestChatPageInChromium signs in through the front door in a real headless
// Chromium, has a streamed conversation on the chat page, and checks that it
// is kept for its owner and invisible to another person.
func TestChatPageInChromium(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Chromium is missing at %s: .ci/run installs Debian's chromium package", chromium)
		}
		t.Skipf("Chromium is not installed at %s (apt-get install chromium)", chromium)
	}
	fd := startFrontDoor(t)

	alice := newChromium(t)
	signInBrowser(t, alice, fd.oidc, fd.base, "alice@example.com")

	do(t, alice,
		chromedp.WaitReady(chromedp.CSS(`#model option`)),
		chromedp.SendKeys(chromedp.CSS(`#input`), "Hello from Chromium"),
		chromedp.Click(chromedp.CSS(`#send`)),
		chromedp.WaitVisible(chromedp.CSS(`#messages li.assistant .meta`)),
	)
	reply := text(t, alice, `#messages li.assistant .text`)
	meta := text(t, alice, `#messages li.assistant .meta`)
	sessions := text(t, alice, `#sessions`)
	if !strings.Contains(reply, "Simulated reply") || strings.Contains(meta, " 0 tokens in") {
		t.Fatalf("the streamed reply on the page is %q", reply)
	}
	if !strings.Contains(meta, "tokens in") || !strings.Contains(meta, "$") || !strings.Contains(sessions, "Hello from Chromium") {
		t.Fatalf("the page shows no cost (%q) or no session in the list (%q)", meta, sessions)
	}
	if usage := text(t, alice, `#usage-text`); !strings.Contains(usage, "of $5.00") || !strings.Contains(usage, "left") {
		t.Fatalf("the page does not show today's spend against the daily limit: %q", usage)
	}
	screenshot(t, alice, "chat-page.png")

	// After a reload the conversation is still there, read back from the store.
	do(t, alice,
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#sessions li`)),
		chromedp.Click(chromedp.CSS(`#sessions li`)),
		chromedp.WaitVisible(chromedp.CSS(`#messages li.assistant`)),
	)
	again := text(t, alice, `#messages`)
	if !strings.Contains(again, "Hello from Chromium") || !strings.Contains(again, "Simulated reply") {
		t.Fatalf("after a reload the conversation reads %q", again)
	}

	// Bob, signed in on his own browser, sees none of it.
	bob := newChromium(t)
	signInBrowser(t, bob, fd.oidc, fd.base, "bob@example.com")
	do(t, bob, chromedp.WaitReady(chromedp.CSS(`#model option`)))
	bobs := textContent(t, bob, `#sessions`)
	if strings.Contains(bobs, "Hello from Chromium") {
		t.Fatal("another person's conversation is listed on bob's page")
	}
}

func newChromium(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // the tests run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 760),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser on this long-lived context: a browser started by a
	// step's shorter-lived context would close when that step ends.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// do runs browser steps, bounded in time.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// result runs one browser action that yields a value.
func result[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// text is the visible text of the first element the selector matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return result(t, ctx, chromedp.Text(chromedp.CSS(sel)))
}

// textContent is the text of an element that may be empty or hidden.
func textContent(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return result(t, ctx, chromedp.TextContent(chromedp.CSS(sel)))
}

// signInBrowser goes through the OpenID Connect login in the browser and
// lands on the chat page.
func signInBrowser(t *testing.T, ctx context.Context, oidc *mockoidc.MockOIDC, base, who string) {
	t.Helper()
	oidc.QueueUser(&mockoidc.MockUser{Subject: who, Email: who, EmailVerified: true})
	do(t, ctx,
		chromedp.Navigate(base+"/oauth2/start?rd=%2F"),
		chromedp.WaitReady(chromedp.CSS(`#composer`)),
	)
	url := result(t, ctx, chromedp.Location())
	if url != base+"/" {
		t.Fatalf("sign-in as %s ended at %s", who, url)
	}
}

// screenshot keeps a picture of the page for a person to look at when
// CHATGATEWAY_SCREENSHOTS names a directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("CHATGATEWAY_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := result(t, ctx, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
