// Package browsertest drives the headless Chromium that the end-to-end tests open pages in:
// it starts one per test in a fresh profile, waits for a page's state, types as a user's
// keyboard does, and saves screenshots as test artifacts. Only tests import it
// (.golangci.yml's depguard rule "tests-only").
//
//	ctx := browsertest.Start(t, browsertest.Options{Timeout: 3 * time.Minute})
//	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil { ... }
//	if err := browsertest.WaitJS(ctx, `document.title === "Ready"`, time.Minute); err != nil { ... }
//	browsertest.Screenshot(t, ctx, "ready.png")
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// ChromiumPath is Debian's chromium (CI installs it: .ci/run).
const ChromiumPath = "/usr/bin/chromium"

// Options say how Start opens the browser.
type Options struct {
	// Timeout stops the browser that long after Start (required).
	Timeout time.Duration
	// Width and Height are the window's size (the screenshots' too); 1280×800 when zero.
	Width, Height int
	// HostResolverRules is Chromium's --host-resolver-rules, e.g. "MAP vs-code-*.ws.test
	// 127.0.0.1:8080": the browser then sends the real host name to a local address.
	HostResolverRules string
}

// SkipIfMissing skips the test when Chromium is not installed: before starting anything the
// browser is for.
func SkipIfMissing(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Skipf("%s is missing (apt-get install chromium)", ChromiumPath)
	}
}

// Start starts a headless Chromium in a fresh profile (skipping the test when it is missing)
// and returns the context of its first tab. The browser is stopped after opts.Timeout, or
// when the test ends; its profile is removed then.
func Start(t testing.TB, opts Options) context.Context {
	t.Helper()
	SkipIfMissing(t)
	if opts.Timeout <= 0 {
		t.Fatal("browsertest: Options.Timeout is required")
	}
	if opts.Width == 0 || opts.Height == 0 {
		opts.Width, opts.Height = 1280, 800
	}
	// the profile is not a t.TempDir: Chromium's helper processes may still write to it for a
	// moment after the browser exits (seconds on a loaded machine), which would fail the
	// test's cleanup though every check passed
	profile, err := os.MkdirTemp("", "hyperbola-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	flags := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// plain http to the address the test gives: no QUIC, no upgrade to https
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-features", "HttpsUpgrades,HttpsFirstBalancedModeAutoEnable"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(opts.Width, opts.Height),
	}
	if opts.HostResolverRules != "" {
		flags = append(flags, chromedp.Flag("host-resolver-rules", opts.HostResolverRules))
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), flags...)
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, opts.Timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		removeProfile(t, profile)
	})
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		t.Fatalf("starting %s: %v", ChromiumPath, err)
	}
	return ctx
}

// removeProfile removes a browser profile once Chromium's last helper has let go of it: a
// removal that finds the directory refilled is tried again, for at most a minute; after that
// the directory is left and said so (a leftover profile is not a failed test).
func removeProfile(t testing.TB, dir string) {
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
	}
	t.Logf("the browser profile %s is left behind: %v", dir, err)
}

// WaitJS evaluates expr in the page until it is true, or timeout passes. Each try is short
// and its errors are ignored (the last one is in the returned error): a navigation on the way
// ends any evaluation inside the page.
func WaitJS(ctx context.Context, expr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		step, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(step, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	if last == nil {
		last = ctx.Err()
	}
	if last == nil {
		return fmt.Errorf("%s still false after %s", expr, timeout)
	}
	return fmt.Errorf("%s still false after %s (last error %w)", expr, timeout, last)
}

// Screenshot saves the page as name under the test's artifact directory (go test -artifacts
// keeps it) and, when HYPERBOLA_ARTIFACTS is set, there too. A page that cannot be saved
// fails the test but does not stop it: a screenshot is often taken just before the failure
// that explains it.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	// a page that has just navigated may have no layout yet ("0 width"): wait for it to load,
	// and try again for a while
	_ = WaitJS(ctx, `document.readyState === "complete"`, 30*time.Second)
	var png []byte
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		step, cancel := context.WithTimeout(ctx, 20*time.Second)
		png, err = chromedp.Run(step, chromedp.FullScreenshot(100))
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv("HYPERBOLA_ARTIFACTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, name)
		if err := errors.Join(os.MkdirAll(dir, 0o755), os.WriteFile(path, png, 0o644)); err != nil {
			t.Errorf("screenshot %s: %v", name, err)
			continue
		}
		t.Logf("screenshot: %s", path)
	}
}

// Keys types each of ks (text, or a key of package kb) into the focused element as a user's
// keyboard would: each key one keyDown carrying its text, then a keyUp (as Puppeteer does).
// chromedp's KeyEvent sends a separate char event too, which a terminal (xterm.js) types
// twice. After each of ks it waits a moment: the workbench handles a key such as F1 after it
// returns, and what is typed at once may go where the focus was.
func Keys(t testing.TB, ctx context.Context, ks ...string) {
	t.Helper()
	for _, k := range ks {
		for _, r := range k {
			var down, up *input.DispatchKeyEventParams
			for _, e := range kb.Encode(r) {
				switch e.Type {
				case kb.KeyDown:
					down = e
				case kb.KeyChar:
					down.Text, down.UnmodifiedText = e.Text, e.UnmodifiedText
				case kb.KeyUp:
					up = e
				}
			}
			err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
				if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, *down); err != nil {
					return err
				}
				_, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, *up)
				return err
			}))
			if err != nil {
				t.Fatalf("typing %q: %v", k, err)
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
}
