package e2e

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"
)

// chromium is Debian's Chromium, which `make test` installs.
const chromium = "/usr/bin/chromium"

// axeSource is axe-core, vendored for this test only (hack/webui-vendor.lock):
// the page never serves it.
//
//go:embed testdata/axe-core/axe.min.js
var axeSource string

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Chromium is missing at %s: `make test` installs Debian's chromium package", chromium)
		}
		t.Skipf("Chromium is not installed at %s (apt-get install chromium)", chromium)
	}
}

// download is a file the browser finished saving, and the name the page gave it.
type download struct{ path, name string }

// tab is a browser tab and what the test saw happen in it.
type tab struct {
	ctx context.Context

	downloadDir string
	downloaded  chan download

	mu       sync.Mutex
	requests []string // every URL the page asked for
	dialogs  []string // alert, confirm, prompt: none is expected
	errors   []string // uncaught exceptions and console errors
}

func newChromium(t *testing.T) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // the tests run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser on this long-lived context: a browser started by a
	// step's shorter-lived context would close when that step ends.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	b := &tab{ctx: ctx, downloaded: make(chan download, 8)}
	names := map[string]string{} // GUID → the name the page suggested; touched only by the listener
	err := chromedp.ListenBrowser(ctx, func(ev any) {
		switch e := ev.(type) {
		case *browser.EventDownloadWillBegin:
			names[e.GUID] = e.SuggestedFilename
		case *browser.EventDownloadProgress:
			if e.State != browser.DownloadProgressStateCompleted {
				return
			}
			p := e.FilePath
			if p == "" {
				p = filepath.Join(b.downloadDir, e.GUID) // allowAndName names the file by its GUID
			}
			select {
			case b.downloaded <- download{p, names[e.GUID]}:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.requests = append(b.requests, e.Request.URL)
		case *page.EventJavascriptDialogOpening:
			b.dialogs = append(b.dialogs, string(e.Type)+": "+e.Message)
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			b.errors = append(b.errors, "exception: "+msg)
		case *cdplog.EventEntryAdded:
			// Failed requests (a 404 while the page probes for a route, a
			// 429 the test provokes) are the page's business; a refused
			// script, style or Trusted Types sink is a defect.
			if e.Entry.Level == cdplog.EntryLevelError && e.Entry.Source != cdplog.EntrySourceNetwork {
				b.errors = append(b.errors, fmt.Sprintf("%s: %s", e.Entry.Source, e.Entry.Text))
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, strings.Trim(string(a.Value), `"`)+a.Description)
				}
				b.errors = append(b.errors, "console."+string(e.Type)+": "+strings.Join(parts, " "))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.errors) > 0 {
			t.Errorf("the page logged errors:\n%s", strings.Join(b.errors, "\n"))
		}
		if len(b.dialogs) > 0 {
			t.Errorf("the page opened dialogs: %q", b.dialogs)
		}
	})
	return b
}

// seen returns the request URLs so far that contain s.
func (b *tab) seen(s string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, u := range b.requests {
		if strings.Contains(u, s) {
			out = append(out, u)
		}
	}
	return out
}

// do runs browser steps, bounded in time.
func do(t *testing.T, b *tab, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// result runs one browser action that yields a value.
func result[T any](t *testing.T, b *tab, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// pageSummary says where the page is, for a failure message.
const pageSummary = `JSON.stringify({url: location.href, title: document.getElementById("title")?.textContent,
	notice: document.getElementById("notice")?.hidden ? "" : document.getElementById("notice-text")?.textContent,
	messages: [...document.querySelectorAll("#messages > li")].map(li => li.className + " [" + (li.dataset.status || "") + "] " + li.textContent.slice(0, 60))})`

// helpers are names the test's expressions may use.
const helpers = `const lastReply = () => [...document.querySelectorAll("#messages li.assistant")].pop();`

// js evaluates an expression in the page (awaiting a promise) and decodes its value.
func js[T any](t *testing.T, b *tab, expr string) T {
	t.Helper()
	return result(t, b, chromedp.Evaluate[T]("(() => { "+helpers+" return ("+expr+"); })()", chromedp.EvalAwaitPromise))
}

// waitJS waits until the expression is truthy. It polls from the test:
// chromedp's Poll compiles its predicate with new Function, which the page's
// Content-Security-Policy rightly refuses.
func waitJS(t *testing.T, b *tab, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := js[bool](t, b, "!!("+expr+")")
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still false after 20s: %s\nthe page: %s", expr, js[string](t, b, pageSummary))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text is the visible text of the first element the selector matches.
func text(t *testing.T, b *tab, sel string) string {
	t.Helper()
	return result(t, b, chromedp.Text(chromedp.CSS(sel)))
}

// textContent is the text of an element that may be empty or hidden.
func textContent(t *testing.T, b *tab, sel string) string {
	t.Helper()
	return result(t, b, chromedp.TextContent(chromedp.CSS(sel)))
}

// emulate sets the viewport and the colour scheme the page sees.
func emulate(t *testing.T, b *tab, width, height int64, scheme string) {
	t.Helper()
	do(t, b, chromedp.EmulateViewport(width, height))
	if _, err := chromedp.Call(b.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
	}); err != nil {
		t.Fatal(err)
	}
}

// setTimeZone makes the page live in another time zone than the test's.
func setTimeZone(t *testing.T, b *tab, zone string) {
	t.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: zone}); err != nil {
		t.Fatal(err)
	}
}

// allowClipboard lets the page (and the test) use the clipboard, as a
// person's browser does after the first copy.
func allowClipboard(t *testing.T, b *tab, origin string) {
	t.Helper()
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(b.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name, AllowWithoutSanitization: true},
			Setting:    browser.PermissionSettingGranted, Origin: origin,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// downloadsTo saves the tab's downloads into dir.
func downloadsTo(t *testing.T, b *tab, dir string) {
	t.Helper()
	b.downloadDir = dir
	events := true
	_, err := chromedp.CallBrowser(b.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &events,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitForDownload returns the next download once the browser has finished
// writing it.
func waitForDownload(t *testing.T, b *tab) download {
	t.Helper()
	select {
	case d := <-b.downloaded:
		return d
	case <-time.After(15 * time.Second):
		t.Fatal("no download finished within 15 s")
		return download{}
	}
}

type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target         []any  `json:"target"`
		FailureSummary string `json:"failureSummary"`
	} `json:"nodes"`
}

// checkA11y runs axe-core on the page as it is now and fails on any
// serious or critical violation.
func checkA11y(t *testing.T, b *tab, state string) {
	t.Helper()
	if !js[bool](t, b, `typeof window.axe === "object"`) {
		result(t, b, chromedp.Evaluate[chromedp.Void](axeSource))
	}
	raw := js[string](t, b, `axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`)
	var vs []axeViolation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Impact != "serious" && v.Impact != "critical" {
			continue
		}
		var where []string
		for _, n := range v.Nodes {
			where = append(where, fmt.Sprintf("%v: %s", n.Target, n.FailureSummary))
		}
		t.Errorf("axe, %s: %s (%s) %s\n  %s", state, v.ID, v.Impact, v.Help, strings.Join(where, "\n  "))
	}
}

// signInBrowser goes through the OpenID Connect login in the browser and
// lands on the chat page.
func signInBrowser(t *testing.T, b *tab, oidc *mockoidc.MockOIDC, base, who string) {
	t.Helper()
	oidc.QueueUser(&mockoidc.MockUser{Subject: who, Email: who, EmailVerified: true})
	do(t, b,
		chromedp.Navigate(base+"/oauth2/start?rd=%2F"),
		chromedp.WaitReady(chromedp.CSS(`body.ready`)),
	)
	url := result(t, b, chromedp.Location())
	if !strings.HasPrefix(url, base+"/") {
		t.Fatalf("sign-in as %s ended at %s", who, url)
	}
}

// screenshot keeps a picture of the page. With CHATGATEWAY_SCREENSHOTS
// naming a directory (`make screenshots` names docs/images) it is written
// there for people to look at; otherwise it is taken and dropped, so the
// step is exercised on every run.
func screenshot(t *testing.T, b *tab, name string) {
	t.Helper()
	png := result(t, b, chromedp.CaptureScreenshot())
	if len(png) < 1000 {
		t.Fatalf("screenshot %s is %d bytes", name, len(png))
	}
	dir := os.Getenv("CHATGATEWAY_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
