package activator_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activator"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv/browsertest"
)

// ideFile is the file the test writes from the IDE.
const ideFile = "/app/from-the-ide.txt"

// localDomain is make run's workspace domain: browsers send *.localhost to loopback.
const localDomain = "localhost"

// The real IDE, in a real browser, as make run serves it: a workspace created by the session
// Service runs the real code-server on the local cluster's real node; asleep, its address
// (http://vs-code-<id>.localhost:<port>/, through the local entry point internal/devingress,
// with the activator's production https URLs) asks for the password, wakes it, and ends in
// code-server's workbench, where a file is written from the editor (a new untitled file,
// typed, saved with code-server's own save dialog). The workspace then sleeps and wakes, the
// new pod reads the same bytes from the volume, and the IDE shows them again.
func TestRealIDEInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	rn := env.RealNodeKube(t).RealNode // newFixtureWith puts the test's namespace on its cluster
	f := newFixtureWith(t, func(o *kube.Options, so *session.Options) {
		o.Domain, o.BackupImage, so.Image = localDomain, rn.BackupImage, rn.WorkspaceImage
		o.StorageClass, o.NodeSelector, o.Tolerations = rn.StorageClass, rn.NodeSelector(), []corev1.Toleration{rn.Toleration()}
	}, func(o *activator.Options) { o.Scheme, o.PollInterval = "https", 500*time.Millisecond })
	steps := newTimeline(t)
	ctx := context.Background()

	s, err := f.svc.Create(ctx, session.CreateRequest{UserID: "owner@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	f.waitState(t, s.ID, session.StateRunning, 5*time.Minute)
	first := f.runningPod(t, s.ID)
	if first.Spec.NodeName != rn.NodeName {
		t.Fatalf("the workspace runs on %s, not on the real node %s", first.Spec.NodeName, rn.NodeName)
	}
	steps.done("create → running (real code-server, cold volume)")
	if _, err := f.svc.Sleep(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	f.waitNoPod(t, s.ID, 2*time.Minute)
	steps.done("sleep → pod gone")

	front := httptest.NewServer(f.ingress(t, nil))
	t.Cleanup(front.Close)
	_, port, _ := strings.Cut(strings.TrimPrefix(front.URL, "http://"), ":")
	b := browser(t, strings.TrimPrefix(front.URL, "http://"), 15*time.Minute)
	workspaceURL := "http://vs-code-" + s.ID + "." + localDomain + ":" + port + "/" // Chromium sends *.localhost to loopback

	// the asleep page, its password, the waking page
	if err := chromedp.Do(b, chromedp.Navigate(workspaceURL)); err != nil {
		t.Fatalf("opening the workspace: %v", err)
	}
	if err := waitText(b, "h1", "This workspace is asleep"); err != nil {
		t.Fatalf("no asleep page: %v\n%s", err, outerHTML(b))
	}
	browsertest.Screenshot(t, b, "real-ide-1-asleep.png")
	steps.done("open the address → asleep page")
	if err := chromedp.Do(b, chromedp.SendKeys("#password", s.Password), chromedp.Submit("#password")); err != nil {
		t.Fatalf("typing the password: %v", err)
	}
	const wakingOrLogin = `document.title === "Waking your workspace · Hyperbola" || !!document.querySelector("form.login-form input.password")`
	if err := browsertest.WaitJS(b, wakingOrLogin, 2*time.Minute); err != nil {
		t.Fatalf("neither the waking page nor the IDE after the password: %v\n%s", err, outerHTML(b))
	}
	if title, _ := chromedp.Run(b, chromedp.Title()); title == "Waking your workspace · Hyperbola" {
		browsertest.Screenshot(t, b, "real-ide-2-waking.png")
	}
	// code-server asks for its password itself: the activator's proof is not its login
	if err := browsertest.WaitJS(b, `!!document.querySelector("form.login-form input.password")`, 5*time.Minute); err != nil {
		t.Fatalf("code-server's login page never came: %v\nstate %s, Ingress to %s\n%s", err, f.state(t, s.ID), f.backend(t, s.ID), outerHTML(b))
	}
	browsertest.Screenshot(t, b, "real-ide-3-code-server-login.png")
	steps.done("password → waking page → code-server's login")
	if err := chromedp.Do(b, chromedp.SendKeys("input.password", s.Password), chromedp.Submit("input.password")); err != nil {
		t.Fatalf("logging in to code-server: %v", err)
	}
	waitWorkbench(t, b)
	browsertest.Screenshot(t, b, "real-ide-4-workbench.png")
	steps.done("login → workbench rendered")

	// a file, from the editor
	text := "Written in the real IDE for " + s.ID + " at " + time.Now().UTC().Format(time.RFC3339)
	writeFromEditor(t, b, text)
	steps.done("new file, typed, saved as " + ideFile)
	if got := f.exec(t, f.runningPod(t, s.ID).Name, "cat", ideFile); got != text {
		t.Fatalf("the pod reads %q, the editor typed %q", got, text)
	}

	// asleep and awake again: a new pod, the same bytes
	if _, err := f.svc.Sleep(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	f.waitNoPod(t, s.ID, 2*time.Minute)
	steps.done("sleep → pod gone")
	if _, err := f.svc.Wake(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	f.waitState(t, s.ID, session.StateRunning, 5*time.Minute)
	second := f.runningPod(t, s.ID)
	steps.done("wake → running")
	if second.UID == first.UID {
		t.Fatalf("the same pod %s after a sleep", second.Name)
	}
	if got := f.exec(t, second.Name, "cat", ideFile); got != text {
		t.Fatalf("after sleep and wake the new pod %s reads %q, want %q", second.Name, got, text)
	}
	steps.done("kubectl exec cat in the new pod: same bytes")

	// the IDE opens it again in a new tab, logged in already (code-server's cookie); the old
	// tab's workbench would hold a navigation with its "leave this page?" question
	tab, closeTab := chromedp.NewContext(b)
	defer closeTab()
	if err := chromedp.Do(tab, chromedp.Navigate(workspaceURL)); err != nil {
		t.Fatalf("reopening the workspace: %v", err)
	}
	waitWorkbench(t, tab)
	openFile(t, tab, "from-the-ide.txt")
	if err := waitIDE(tab, editorShows(text), 2*time.Minute); err != nil {
		browsertest.Screenshot(t, tab, "real-ide-reopen-failed.png")
		t.Fatalf("the reopened file does not show its text: %v", err)
	}
	browsertest.Screenshot(t, tab, "real-ide-8-reopened-after-wake.png")
	steps.done("reopen in the IDE → the text is there")
}

// timeline logs how long each step took.
type timeline struct {
	t     *testing.T
	start time.Time
	last  time.Time
}

func newTimeline(t *testing.T) *timeline {
	now := time.Now()
	return &timeline{t: t, start: now, last: now}
}

func (tl *timeline) done(step string) {
	now := time.Now()
	tl.t.Logf("step %-52s %8s (%s in all)", step, now.Sub(tl.last).Round(10*time.Millisecond), now.Sub(tl.start).Round(time.Second))
	tl.last = now
}

// waitState drives the session (Get moves its pending step) until it is in state want.
func (f *fixture) waitState(t testing.TB, id string, want session.State, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var s *session.Session
	var err error
	for time.Now().Before(deadline) {
		if s, err = f.svc.Get(context.Background(), id); err == nil && s.State == want {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	if s != nil {
		t.Fatalf("session %s: %s (%s) after %s, want %s (last error %v)", id, s.State, s.Reason, timeout, want, err)
	}
	t.Fatalf("session %s: not %s after %s: %v", id, want, timeout, err)
}

// pods lists the workspace's pods that are not being deleted.
func (f *fixture) pods(t testing.TB, id string) []corev1.Pod {
	t.Helper()
	list, err := f.kube.Client.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: "hyperbola.dev/session=" + id + ",app.kubernetes.io/component=workspace",
	})
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return p.DeletionTimestamp != nil })
}

// runningPod is the workspace's one running pod.
func (f *fixture) runningPod(t testing.TB, id string) corev1.Pod {
	t.Helper()
	pods := f.pods(t, id)
	if len(pods) != 1 || pods[0].Status.Phase != corev1.PodRunning {
		t.Fatalf("session %s: want one running pod, have %d", id, len(pods))
	}
	return pods[0]
}

// waitNoPod waits until the workspace has no pod at all (its volume released).
func (f *fixture) waitNoPod(t testing.TB, id string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		list, err := f.kube.Client.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "hyperbola.dev/session=" + id})
		if err == nil && len(list.Items) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("session %s still has a pod after %s", id, timeout)
}

// exec runs a command in the pod with kubectl and returns its output.
func (f *fixture) exec(t testing.TB, pod string, cmd ...string) string {
	t.Helper()
	args := append([]string{"--kubeconfig", f.kube.Kubeconfig, "-n", f.ns, "exec", pod, "--"}, cmd...)
	out, err := exec.Command(f.kube.Bin+"/kubectl", args...).Output()
	if err != nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("kubectl exec %s %v: %v\n%s", pod, cmd, err, stderr)
	}
	return string(out)
}

func outerHTML(ctx context.Context) string {
	step, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(step, chromedp.OuterHTML("html"))
	if len(s) > 4000 {
		s = s[:4000] + "..."
	}
	return s
}

// workbenchReady is true once code-server's workbench has rendered its parts, the explorer
// lists the folder's files (the workspace's /app holds .hyperbola at least) and the icon font
// has loaded.
const workbenchReady = `(function(){
  var wb = document.querySelector(".monaco-workbench");
  return !!wb && !!wb.querySelector(".part.editor") && !!wb.querySelector(".part.statusbar") &&
    wb.querySelectorAll(".explorer-folders-view .monaco-list-row").length > 0 &&
    document.fonts.status === "loaded" && document.fonts.check("16px codicon");
})()`

// trustDialog answers VS Code's workspace trust question, when it asks (it may, when a file
// opens), with yes: the workspace is its owner's own folder.
const trustDialog = `(function(){
  var bs = document.querySelectorAll(".monaco-dialog-box .monaco-button");
  for (var i = 0; i < bs.length; i++) {
    if (/yes, i trust/i.test(bs[i].textContent)) { bs[i].click(); return true; }
  }
  return false;
})()`

// waitIDE waits until cond is true in the workbench, answering the trust question on the way.
func waitIDE(b context.Context, cond string, timeout time.Duration) error {
	return browsertest.WaitJS(b, `(`+trustDialog+`, `+cond+`) && !document.querySelector(".monaco-dialog-box")`, timeout)
}

// editorShows is true when the active editor shows text (Monaco renders spaces as U+00A0).
func editorShows(text string) string {
	return fmt.Sprintf(`(function(){var e=document.querySelector(".editor-group-container.active .editor-instance .view-lines");return !!e && e.textContent.replace(/\u00a0/g, " ").indexOf(%q)>=0})()`, text)
}

// quickInput is true when a quick input (the command palette, Quick Open, the simple file
// dialog) has the keyboard and its value starts with prefix.
func quickInput(prefix string) string {
	return fmt.Sprintf(`(function(){var i=document.querySelector(".quick-input-widget .quick-input-box input");return !!i && i.offsetParent !== null && document.activeElement === i && i.value.indexOf(%q) === 0})()`, prefix)
}

// waitWorkbench waits for the workbench.
func waitWorkbench(t *testing.T, b context.Context) {
	t.Helper()
	if err := waitIDE(b, workbenchReady, 3*time.Minute); err != nil {
		browsertest.Screenshot(t, b, "real-ide-workbench-failed.png")
		t.Fatalf("code-server's workbench did not render: %v\n%s", err, outerHTML(b))
	}
}

// press presses k with modifiers until cond holds: a key pressed while the workbench was
// still busy (or behind a dialog) may be lost, so it is pressed again, at most 5 times. Only
// for keys that can be pressed twice without harm.
func press(t *testing.T, b context.Context, what, cond, k string, mods ...chromedp.Modifier) {
	t.Helper()
	var err error
	for range 5 {
		if err = chromedp.Do(b, chromedp.KeyEvent(k, chromedp.KeyModifiers(mods...))); err != nil {
			t.Fatal(err)
		}
		if err = waitIDE(b, cond, 30*time.Second); err == nil {
			return
		}
	}
	browsertest.Screenshot(t, b, "real-ide-failed-"+strings.ReplaceAll(what, " ", "-")+".png")
	t.Fatalf("%s: %v", what, err)
}

// writeFromEditor creates a file from the editor: a new untitled file (Ctrl+Alt+N, the web
// workbench's binding; Ctrl+N is the browser's), text typed into it, Ctrl+S, and ideFile typed
// into code-server's save dialog, then Enter.
func writeFromEditor(t *testing.T, b context.Context, text string) {
	t.Helper()
	press(t, b, "new untitled file", `(function(){var a=document.querySelector(".tabs-container .tab.active");return !!a && /Untitled/.test(a.textContent) && !!document.querySelector(".editor-instance .monaco-editor.focused")})()`,
		"n", chromedp.ModifierCtrl, chromedp.ModifierAlt)
	if err := chromedp.Do(b, chromedp.KeyEvent(text)); err != nil {
		t.Fatal(err)
	}
	if err := waitIDE(b, editorShows(text), time.Minute); err != nil {
		browsertest.Screenshot(t, b, "real-ide-typing-failed.png")
		t.Fatalf("the typed text is not in the editor: %v", err)
	}
	browsertest.Screenshot(t, b, "real-ide-5-typed.png")
	press(t, b, "save dialog", quickInput("/"), "s", chromedp.ModifierCtrl)
	if err := chromedp.Do(b, chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl))); err != nil {
		t.Fatal(err)
	}
	// the whole path at once: typed key by key, the dialog would complete names on the way
	if _, err := chromedp.Call(b, input.InsertText, input.InsertTextParams{Text: ideFile}); err != nil {
		t.Fatal(err)
	}
	if err := waitIDE(b, quickInput(ideFile), 30*time.Second); err != nil {
		t.Fatalf("the save dialog does not hold the path: %v", err)
	}
	browsertest.Screenshot(t, b, "real-ide-6-save-dialog.png")
	if err := chromedp.Do(b, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	saved := `(function(){var a=document.querySelector(".tabs-container .tab.active");return !!a && a.textContent.indexOf("from-the-ide.txt")>=0 && !a.classList.contains("dirty")})()`
	if err := waitIDE(b, saved, time.Minute); err != nil {
		browsertest.Screenshot(t, b, "real-ide-save-failed.png")
		t.Fatalf("the file was not saved: %v", err)
	}
	browsertest.Screenshot(t, b, "real-ide-7-saved.png")
}

// openFile opens a file of the workspace with Quick Open (Ctrl+P).
func openFile(t *testing.T, b context.Context, name string) {
	t.Helper()
	press(t, b, "quick open", quickInput(""), "p", chromedp.ModifierCtrl)
	if err := chromedp.Do(b, chromedp.KeyEvent(name)); err != nil {
		t.Fatal(err)
	}
	if err := waitIDE(b, fmt.Sprintf(`(function(){var r=document.querySelector(".quick-input-list .monaco-list-row.focused");return !!r && r.textContent.indexOf(%q)>=0})()`, name), time.Minute); err != nil {
		t.Fatalf("quick open does not find %s: %v", name, err)
	}
	if err := chromedp.Do(b, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
}
