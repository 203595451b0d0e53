package activity_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv/browsertest"
)

const ideSession = "ab12cd34"

// The extension in the real code-server, in a real browser, without Kubernetes: installed as
// a built-in extension the way the image installs it (images/workspace/install-extension.sh
// into a copy of the cached code-server install), with the environment the Deployment gives
// the workspace, reporting to a recording stand-in for the control plane's activity routes.
// An open tab nobody touches reports nothing; typing in an editor and in a terminal reports
// input; a sleep_at 50 s away shows the notice, and its "Stay" reports stay.
func TestIDEExtensionReportsUse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts code-server and Chromium")
	}
	cs := cachedCodeServer(t)
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is missing")
	}
	browsertest.SkipIfMissing(t) // before code-server starts
	key := []byte(strings.Repeat("k", activity.MinKeyBytes))
	api := newFakeAPI(ideSession, activity.Token(key, ideSession))
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	folder := t.TempDir()
	if err := os.WriteFile(filepath.Join(folder, "notes.txt"), []byte("notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := t.TempDir()
	addr := startCodeServer(t, installBuiltIn(t, cs), folder, logs, []string{
		activity.EnvURL + "=" + srv.URL,
		activity.EnvToken + "=" + activity.Token(key, ideSession),
		activity.EnvSession + "=" + ideSession,
		activity.EnvSyncSeconds + "=3",
		activity.EnvCPUThreshold + "=1000",    // this host's CPU is not the test's
		"HYPERBOLA_ACTIVITY_REPORT_SECONDS=5", // not a minute apart, to keep the test short
	})
	ctx := browsertest.Start(t, browsertest.Options{Timeout: 8 * time.Minute})
	t.Cleanup(func() {
		if t.Failed() {
			browsertest.Screenshot(t, ctx, "ide-failed.png")
			dumpLogs(t, logs)
		}
	})
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/?folder="+folder)); err != nil {
		t.Fatal(err)
	}
	if err := browsertest.WaitJS(ctx, `!!document.querySelector('.monaco-workbench .part.editor')`, 3*time.Minute); err != nil {
		t.Fatalf("the workbench did not load: %v", err)
	}
	// the extension is loaded and activated: it reads its session's state
	api.waitFor(t, "the extension's first read", 3*time.Minute, func(r []record) bool { return slices.ContainsFunc(r, isGet) })

	// an open tab, nobody at it: reads, no report, also past the start-up grace in which VS
	// Code counts a freshly loaded window as active (the extension's WINDOW_GRACE_MS, 90 s)
	time.Sleep(100 * time.Second)
	if n := api.count("input") + api.count("cpu"); n != 0 {
		t.Fatalf("%d reports with nobody at the tab: %v", n, api.all())
	}

	// open notes.txt (Quick Open) and type: an input report
	mark := time.Now()
	browsertest.Keys(t, ctx, kb.F1) // the command palette, then Quick Open by deleting its ">"
	if err := browsertest.WaitJS(ctx, `!!document.querySelector('.quick-input-widget input') && document.activeElement === document.querySelector('.quick-input-widget input')`, time.Minute); err != nil {
		t.Fatalf("no command palette: %v", err)
	}
	browsertest.Keys(t, ctx, kb.Backspace, "notes.txt")
	if err := browsertest.WaitJS(ctx, `[...document.querySelectorAll('.quick-input-list .monaco-list-row')].some(r => r.textContent.includes('notes.txt'))`, time.Minute); err != nil {
		t.Fatalf("Quick Open does not find notes.txt: %v", err)
	}
	browsertest.Keys(t, ctx, kb.Enter)
	if err := browsertest.WaitJS(ctx, `!!document.querySelector('.editor-instance .monaco-editor textarea') && document.activeElement === document.querySelector('.editor-instance .monaco-editor textarea')`, time.Minute); err != nil {
		t.Fatalf("notes.txt is not open in a focused editor: %v", err)
	}
	browsertest.Keys(t, ctx, "typed by the test ")
	api.waitFor(t, "an input report after typing in an editor", 2*time.Minute, reportAfter("input", mark))
	waitReason(t, logs, mark, "selection", "edit")

	// a terminal, and typing in it: an input report
	time.Sleep(6 * time.Second) // past the report spacing
	browsertest.Keys(t, ctx, kb.F1)
	if err := browsertest.WaitJS(ctx, `!!document.querySelector('.quick-input-widget input') && document.activeElement === document.querySelector('.quick-input-widget input')`, time.Minute); err != nil {
		t.Fatalf("no command palette: %v", err)
	}
	browsertest.Keys(t, ctx, "Terminal: Create New Terminal")
	if err := browsertest.WaitJS(ctx, `[...document.querySelectorAll('.quick-input-list .monaco-list-row')].some(r => r.textContent.includes('Create New Terminal'))`, time.Minute); err != nil {
		t.Fatalf("the palette does not offer a new terminal: %v", err)
	}
	browsertest.Keys(t, ctx, kb.Enter)
	if err := browsertest.WaitJS(ctx, `!!document.activeElement && !!document.activeElement.closest('.terminal-wrapper, .xterm')`, time.Minute); err != nil {
		t.Fatalf("no focused terminal: %v", err)
	}
	// opening the terminal was use too: let that report go first
	time.Sleep(12 * time.Second)
	mark = time.Now()
	typed := filepath.Join(folder, "typed-in-the-terminal")
	browsertest.Keys(t, ctx, "touch "+typed, kb.Enter)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if _, err := os.Stat(typed); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the shell in the terminal did not run what was typed: %v", err)
		}
	}
	api.waitFor(t, "an input report after typing in a terminal", 2*time.Minute, reportAfter("input", mark))
	waitReason(t, logs, mark, "terminal") // not only the window's keys: the terminal's own signal

	// the cap is 50 s away by the server's clock: the notice, and Stay reports stay
	api.setSleepIn(50 * time.Second)
	if err := browsertest.WaitJS(ctx, `[...document.querySelectorAll('.notifications-toasts .notification-list-item')].some(n => n.textContent.includes('going to sleep'))`, 2*time.Minute); err != nil {
		t.Fatalf("no going-to-sleep notice: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('.notifications-toasts .notification-list-item')].find(n => n.textContent.includes('going to sleep')).textContent`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("notice: %q", text)
	if !strings.Contains(text, "because nobody is using it") {
		t.Errorf("notice %q", text)
	}
	mark = time.Now()
	// later reads about the same sleep_at show no second notice
	time.Sleep(8 * time.Second)
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll('.notifications-toasts .notification-list-item')].filter(n => n.textContent.includes('going to sleep')).length`))
	if err != nil || n != 1 {
		t.Fatalf("%d going-to-sleep notices (%v), want 1", n, err)
	}
	// a real click on Stay, in the middle of the button
	at, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(function(){
		const b = [...document.querySelectorAll('.notifications-toasts .monaco-button')].find(b => b.textContent.trim() === 'Stay');
		if (!b) return [];
		const r = b.getBoundingClientRect();
		return [r.x + r.width / 2, r.y + r.height / 2];
	})()`))
	if err != nil || len(at) != 2 {
		t.Fatalf("no Stay button (%v)", err)
	}
	if err := chromedp.Do(ctx, chromedp.MouseClickXY(at[0], at[1])); err != nil {
		t.Fatal(err)
	}
	api.waitFor(t, "a stay report after clicking Stay", time.Minute, reportAfter("stay", mark))
	if bad := api.unauthorized(); bad != 0 {
		t.Errorf("%d requests without the session's credential", bad)
	}
	t.Logf("requests: %v", api.all())
	logChannel(t, logs)
}

// waitReason waits until the extension's channel says it reported input for one of reasons
// after mark (the requests carry only the kind; the channel says which signal it was).
func waitReason(t *testing.T, dir string, mark time.Time, reasons ...string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		found, _ := filepath.Glob(filepath.Join(dir, "data", "logs", "*", "exthost*", "output_logging_*", "*Hyperbola.log"))
		for _, p := range found {
			b, _ := os.ReadFile(p)
			for line := range strings.Lines(string(b)) {
				at, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
				when, err := time.Parse(time.RFC3339Nano, at)
				if err != nil || when.Before(mark) {
					continue
				}
				for _, r := range reasons {
					if rest == "reported input ("+r+")" {
						return
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the extension's channel names none of %q after %s", reasons, mark.Format(time.RFC3339Nano))
		}
	}
}

// logChannel prints the extension's "Hyperbola" output channel: what it reported and why.
func logChannel(t *testing.T, dir string) {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(dir, "data", "logs", "*", "exthost*", "output_logging_*", "*Hyperbola.log"))
	for _, p := range found {
		b, _ := os.ReadFile(p)
		t.Logf("---- %s\n%s", p, b)
	}
}

// cachedCodeServer returns the code-server install images/build-local.sh caches, or skips.
func cachedCodeServer(t *testing.T) string {
	t.Helper()
	base := os.Getenv("HYPERBOLA_LOCALKUBE_CACHE")
	if base == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			t.Skipf("no cache directory: %v", err)
		}
		base = filepath.Join(c, "hyperbola", "localkube")
	}
	found, _ := filepath.Glob(filepath.Join(base, "code-server-4.100.3-*", ".complete"))
	if len(found) == 0 {
		t.Skipf("no cached code-server 4.100.3 under %s (images/build-local.sh or scripts/localkube/build-node.sh makes it)", base)
	}
	return filepath.Dir(found[len(found)-1])
}

// installBuiltIn makes a copy of the install cs (hard links: quick and no space, and nothing
// writes to them) and installs the extension into it with the image's own script.
func installBuiltIn(t *testing.T, cs string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cs")
	if out, err := exec.Command("cp", "-al", cs, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot hard-link %s into a temporary directory: %v: %s", cs, err, out)
	}
	script := filepath.Join(repoRoot(t), "images", "workspace", "install-extension.sh")
	if out, err := exec.Command("bash", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", script, err, out)
	}
	return dir
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// startCodeServer runs code-server from the install cs on a free loopback port, with its own
// home, data and extension directories, and returns its address once /healthz answers.
func startCodeServer(t *testing.T, cs, folder, logs string, env []string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	home := t.TempDir()
	out, err := os.Create(filepath.Join(logs, "code-server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(cs, "node_modules", "code-server", "out", "node", "entry.js"),
		"--auth", "none", "--bind-addr", addr,
		"--user-data-dir", filepath.Join(logs, "data"), "--extensions-dir", filepath.Join(home, "extensions"),
		"--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", folder)
	cmd.Env = append([]string{"HOME=" + home, "SHELL=/bin/sh", "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}, env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its extension host, pty host and shells go with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		out.Close()
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("code-server exited: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("code-server on %s does not answer /healthz: %v", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// dumpLogs prints code-server's output and the extension's "Hyperbola" output channel.
func dumpLogs(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, "Hyperbola.log") || strings.HasSuffix(p, "code-server.log") || strings.HasSuffix(p, "exthost.log")) {
			b, _ := os.ReadFile(p)
			t.Logf("---- %s\n%s", p, b)
		}
		return nil
	})
}
