package activity_test

// The headless Chromium that TestIDEExtensionReportsUse drives.

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

// browser starts a headless Chromium in a fresh profile, stopped after timeout.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	// not a t.TempDir: Chromium's helpers may still write to it for a moment after it exits
	profile, err := os.MkdirTemp("", "hyperbola-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if os.RemoveAll(profile) == nil {
				return
			}
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// keys types each of ks (text or a kb key) into the focused element, as a user's keyboard
// would: each key one keyDown carrying its text, then a keyUp (as Puppeteer does). chromedp's
// KeyEvent sends a separate char event too, which the terminal (xterm.js) types twice.
func keys(t *testing.T, ctx context.Context, ks ...string) {
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

// waitJS evaluates expr until it is true; each try is short and its errors are ignored.
func waitJS(ctx context.Context, expr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
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
		return fmt.Errorf("%s still false after %s", expr, timeout)
	}
	return fmt.Errorf("%s still false after %s (last error %w)", expr, timeout, last)
}

// screenshot saves the page under the test's artifact directory (go test -artifacts keeps it)
// and, when HYPERBOLA_ARTIFACTS is set, there too.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	step, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(step, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv("HYPERBOLA_ARTIFACTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if err := errors.Join(os.MkdirAll(dir, 0o755), os.WriteFile(p, png, 0o644)); err != nil {
			t.Logf("screenshot: %v", err)
			continue
		}
		t.Logf("screenshot: %s", p)
	}
}
