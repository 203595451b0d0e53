package activator_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activator"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/podlink"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv/browsertest"
)

// activityReports records what reaches the API's activity routes, by whom.
type activityReports struct {
	mu   sync.Mutex
	seen []activityCall
}

type activityCall struct {
	at     time.Time // real time
	method string
	kind   string
	token  bool // carried an activity credential, not an API key
}

func (a *activityReports) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/activity") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var rep activity.Report
			_ = json.Unmarshal(body, &rep)
			auth := r.Header.Get("Authorization") + r.Header.Get(api.HeaderAPIKey)
			a.mu.Lock()
			a.seen = append(a.seen, activityCall{at: time.Now(), method: r.Method, kind: rep.Kind,
				token: strings.Contains(auth, activity.TokenPrefix)})
			a.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// count counts the calls by method ("" any) made with the credential.
func (a *activityReports) count(method string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.seen {
		if c.token && (method == "" || c.method == method) {
			n++
		}
	}
	return n
}

// reportsOf counts the POSTs of kind made with the credential.
func (a *activityReports) reportsOf(kind string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.seen {
		if c.token && c.method == http.MethodPost && c.kind == kind {
			n++
		}
	}
	return n
}

// lastReport is when the latest POST came (the zero time before any).
func (a *activityReports) lastReport() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	var last time.Time
	for _, c := range a.seen {
		if c.method == http.MethodPost {
			last = c.at
		}
	}
	return last
}

// The activity extension in the real code-server, in a real browser, on the real node,
// against the real API: the workspace reaches the control plane the way a deployment's does
// (here through internal/podlink, as make run), with its own credential from its Secret.
// Typing in the editor and in the terminal is use and keeps the workspace awake past its idle
// timeout; a tab left open without input is not: the IDE shows its notice a minute ahead,
// and the sweep puts the workspace to sleep at its idle_connected_max. The sweep, the API and
// the session core run on a test clock; code-server's heartbeat is mapped onto it.
func TestOpenTabInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	rn := env.RealNodeKube(t).RealNode
	clock := testenv.NewClock(time.Now().UTC().Truncate(time.Second))
	key := make([]byte, activity.MinKeyBytes)
	rand.Read(key)
	const linkAddr = "127.0.0.1:8099" // in every workspace pod's own network namespace
	f := newFixtureWith(t, func(o *kube.Options, so *session.Options) {
		o.Domain, o.BackupImage, so.Image = localDomain, rn.BackupImage, rn.WorkspaceImage
		o.StorageClass, o.NodeSelector, o.Tolerations = rn.StorageClass, rn.NodeSelector(), []corev1.Toleration{rn.Toleration()}
		o.ActivityURL, o.ActivityKey = "http://"+linkAddr, key
		o.ActivityCPUThreshold, o.ActivitySyncSeconds, o.ActivityReportSeconds = 0.3, 2, 5 // the defaults sync every 300 s and report once a minute
		so.Now = clock.Now
	}, func(o *activator.Options) { o.Scheme, o.PollInterval = "https", 500*time.Millisecond })
	steps := newTimeline(t)
	ctx := context.Background()

	calls := &activityReports{}
	apiSrv := httptest.NewServer(calls.wrap(api.New(api.Deps{Manager: f.svc, Now: clock.Now},
		api.Options{APIKeys: []string{"an-admin-key-for-this-test-only-0123456789"}, ActivityKey: key})))
	t.Cleanup(apiSrv.Close)
	linkCtx, stopLink := context.WithCancel(ctx)
	linkDone := make(chan error, 1)
	link, err := podlink.New(f.kube.Client, podlink.Options{Namespace: f.ns, NetnsDir: rn.NetnsDir,
		Selector: kube.LabelComponent + "=" + kube.ComponentWorkspace, Listen: linkAddr, Target: strings.TrimPrefix(apiSrv.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	go func() { linkDone <- link.Run(linkCtx) }()
	t.Cleanup(func() {
		stopLink()
		if err := <-linkDone; err != nil {
			t.Errorf("the pod link: %v", err)
		}
	})

	idle, connectedMax := session.Duration(15*time.Minute), session.Duration(2*time.Hour)
	s, err := f.svc.Create(ctx, session.CreateRequest{UserID: "owner@example.com", IdleTimeout: &idle, IdleConnectedMax: &connectedMax})
	if err != nil {
		t.Fatal(err)
	}
	f.waitState(t, s.ID, session.StateRunning, 5*time.Minute)
	steps.done("create → running (real code-server with the activity extension)")

	probe := sweep.ProberFunc(func(ctx context.Context, id string) (sweep.Heartbeat, error) {
		pods, err := f.kube.Client.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{LabelSelector: kube.LabelSession + "=" + id})
		if err != nil {
			return sweep.Heartbeat{}, err
		}
		addr := ""
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.PodIP != "" {
				addr = net.JoinHostPort(p.Status.PodIP, "8080")
			}
		}
		if addr == "" {
			return sweep.Heartbeat{}, fmt.Errorf("session %s has no pod with an address", id)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
		if err != nil {
			return sweep.Heartbeat{}, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return sweep.Heartbeat{}, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<14))
		if err != nil {
			return sweep.Heartbeat{}, err
		}
		hb, err := sweep.ParseHeartbeat(b)
		if err == nil && !hb.Last.IsZero() { // code-server beats on the real clock
			hb.Last = hb.Last.Add(time.Until(clock.Now()))
		}
		return hb, err
	})
	sw := sweep.New(sweep.Deps{Sessions: f.svc, Store: f.store, Now: clock.Now, Prober: probe}, sweep.Options{ReconcileEvery: -1})
	sweepAt := func(at time.Time) *sweep.Report {
		t.Helper()
		clock.Set(at)
		r, err := sw.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	lastUse := func() time.Time {
		t.Helper()
		got, err := f.svc.Get(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.LastActivity
	}
	// quiet waits until the extension has sent nothing for four report intervals, so that no
	// report is still due from earlier input, and a CPU average that was above the threshold
	// (reported every interval) has fallen below it
	quiet := func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for time.Since(calls.lastReport()) < 20*time.Second {
			if time.Now().After(deadline) {
				t.Fatal("the extension never went quiet")
			}
			time.Sleep(time.Second)
		}
	}
	reportedAfter := func(what string, since time.Time) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for !lastUse().After(since) {
			if time.Now().After(deadline) {
				t.Fatalf("%s was not recorded as use within 2 minutes", what)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}

	front := httptest.NewServer(f.ingress(t, nil))
	t.Cleanup(front.Close)
	_, port, _ := strings.Cut(strings.TrimPrefix(front.URL, "http://"), ":")
	b := browser(t, strings.TrimPrefix(front.URL, "http://"), 20*time.Minute)
	workspaceURL := "http://vs-code-" + s.ID + "." + localDomain + ":" + port + "/"
	if err := chromedp.Do(b, chromedp.Navigate(workspaceURL)); err != nil {
		t.Fatalf("opening the workspace: %v", err)
	}
	if err := browsertest.WaitJS(b, `!!document.querySelector("form.login-form input.password")`, 5*time.Minute); err != nil {
		t.Fatalf("code-server's login page never came: %v\n%s", err, outerHTML(b))
	}
	if err := chromedp.Do(b, chromedp.SendKeys("input.password", s.Password), chromedp.Submit("input.password")); err != nil {
		t.Fatalf("logging in to code-server: %v", err)
	}
	waitWorkbench(t, b)
	steps.done("login → workbench")
	// inPod logs what the workspace's side sees: its environment, the extension, the link,
	// its CPU accounting and the extension's own log
	inPod := func() {
		pod := f.runningPod(t, s.ID).Name
		t.Logf("in the pod:\n%s", f.exec(t, pod, "sh", "-c", `env | grep HYPERBOLA_ | sed 's/TOKEN=.*/TOKEN=<set>/'; `+
			`ls /opt/code-server/node_modules/code-server/lib/vscode/extensions | grep -i hyperbola; `+
			`wget -qO- http://`+linkAddr+`/health; echo; cat /proc/self/cgroup; ls /sys/fs/cgroup; `+
			`cat /sys/fs/cgroup/cpuacct/cpuacct.usage /sys/fs/cgroup/cpu.stat; ps; `+
			`for f in $(find /app/.hyperbola/code-server/logs -name '*Hyperbola*' -o -name 'remoteexthost.log' -o -name 'remoteagent.log'); do echo "== $f"; tail -n 30 "$f"; done`))
	}
	if !within(3*time.Minute, func() bool { return calls.count("") > 0 }) {
		inPod()
		t.Fatalf("the extension never called the API with its credential (calls: %+v)", calls.seen)
	}
	steps.done("the extension reached the API through the pod's link")

	// typing in the editor, past the idle timeout
	quiet()
	used := lastUse()
	clock.Set(used.Add(idle.D() - time.Minute))
	press(t, b, "new untitled file", `(function(){var a=document.querySelector(".tabs-container .tab.active");return !!a && /Untitled/.test(a.textContent) && !!document.querySelector(".editor-instance .monaco-editor.focused")})()`,
		"n", chromedp.ModifierCtrl, chromedp.ModifierAlt)
	if err := chromedp.Do(b, chromedp.KeyEvent("typed in the editor")); err != nil {
		t.Fatal(err)
	}
	reportedAfter("typing in the editor", used)
	if r := sweepAt(used.Add(idle.D() + time.Second)); r.Slept != 0 {
		t.Fatalf("slept past its idle timeout although typed in: %+v", r)
	}
	steps.done("typing in the editor → use; awake past the idle timeout")

	// typing in the terminal, past the idle timeout again
	quiet()
	used = lastUse()
	clock.Set(used.Add(idle.D() - time.Minute))
	press(t, b, "terminal", `!!document.querySelector(".terminal-wrapper.active .xterm-helper-textarea") && document.activeElement === document.querySelector(".terminal-wrapper.active .xterm-helper-textarea")`,
		"`", chromedp.ModifierCtrl)
	browsertest.Keys(t, b, "echo typed in the terminal\r")
	reportedAfter("typing in the terminal", used)
	if r := sweepAt(used.Add(idle.D() + time.Second)); r.Slept != 0 {
		t.Fatalf("slept past its idle timeout although typed in: %+v", r)
	}
	steps.done("typing in the terminal → use; awake past the idle timeout")

	// a build in the terminal, nobody typing while it runs: its CPU is use
	browsertest.Keys(t, b, "timeout 60 sh -c 'while :; do :; done'\r")
	if !within(3*time.Minute, func() bool { return calls.reportsOf(activity.KindCPU) > 0 }) {
		inPod()
		t.Fatal("a busy loop in the terminal was never reported as CPU use")
	}
	used = lastUse()
	cpuReports := calls.reportsOf(activity.KindCPU)
	clock.Set(used.Add(idle.D() - time.Minute))
	if !within(2*time.Minute, func() bool { return calls.reportsOf(activity.KindCPU) > cpuReports }) {
		t.Fatal("the busy loop's CPU use was reported once, not while it ran")
	}
	reportedAfter("the busy loop's CPU", used)
	if r := sweepAt(used.Add(idle.D() + time.Second)); r.Slept != 0 {
		t.Fatalf("slept past its idle timeout while a build ran: %+v", r)
	}
	steps.done("a busy loop, no input → CPU use; awake past the idle timeout")

	// the tab left open, without input
	quiet()
	used = lastUse()
	posts := calls.count(http.MethodPost)
	if r := sweepAt(used.Add(idle.D() + time.Minute)); r.Slept != 0 {
		t.Fatalf("an open tab slept at its idle timeout, before its idle_connected_max: %+v", r)
	}
	clock.Set(used.Add(connectedMax.D() - 50*time.Second))
	const notice = `Array.from(document.querySelectorAll(".notifications-toasts .notification-toast")).some(function(n){return /going to sleep/.test(n.textContent)})`
	if err := browsertest.WaitJS(b, notice, 2*time.Minute); err != nil {
		browsertest.Screenshot(t, b, "open-tab-no-notice.png")
		t.Fatalf("the IDE showed no notice 50 s before the cap: %v", err)
	}
	browsertest.Screenshot(t, b, "open-tab-notice.png")
	steps.done("no input → the IDE's going-to-sleep notice")
	if n := calls.count(http.MethodPost); n != posts {
		t.Fatalf("the extension reported use %d times while nobody touched the tab", n-posts)
	}
	href, err := chromedp.Run(b, chromedp.Evaluate[string](`location.href`))
	if err != nil {
		t.Fatal(err)
	}
	r := sweepAt(used.Add(connectedMax.D() + time.Second))
	if r.Slept != 1 || r.SleptConnected != 1 {
		t.Fatalf("an open tab without input past idle_connected_max: %+v, want one sleep by the cap", r)
	}
	f.waitNoPod(t, s.ID, 2*time.Minute)
	steps.done("idle_connected_max → asleep, the tab still open")

	// the user comes back to the address the tab was at (in a new tab: the old workbench
	// would hold a navigation with its "leave this page?" question): the waking page, then the
	// same folder
	tab, closeTab := chromedp.NewContext(b)
	defer closeTab()
	b = tab
	if err := chromedp.Do(b, chromedp.Navigate(href)); err != nil {
		t.Fatalf("reloading %s: %v", href, err)
	}
	// code-server's login cookie is the activator's proof: it wakes the workspace and the
	// waking page leads on; without it, the asleep page asks for the password first
	const asleep = `(function(){var e=document.querySelector("h1");return !!e && e.textContent.indexOf("This workspace is asleep")>=0})()`
	const ideOrLogin = `!!document.querySelector(".monaco-workbench") || !!document.querySelector("form.login-form input.password")`
	if err := browsertest.WaitJS(b, asleep+" || "+ideOrLogin, 5*time.Minute); err != nil {
		t.Fatalf("neither the asleep page nor the IDE at %s: %v\n%s", href, err, outerHTML(b))
	}
	if page, err := chromedp.Run(b, chromedp.Evaluate[bool](asleep)); err == nil && page {
		if err := chromedp.Do(b, chromedp.SendKeys("#password", s.Password), chromedp.Submit("#password")); err != nil {
			t.Fatalf("typing the password: %v", err)
		}
		if err := browsertest.WaitJS(b, ideOrLogin, 5*time.Minute); err != nil {
			t.Fatalf("neither the IDE nor its login after the waking page: %v\n%s", err, outerHTML(b))
		}
	}
	login, err := chromedp.Run(b, chromedp.Evaluate[bool](`!!document.querySelector("form.login-form input.password")`))
	if err != nil {
		t.Fatal(err)
	}
	if login {
		if err := chromedp.Do(b, chromedp.SendKeys("input.password", s.Password), chromedp.Submit("input.password")); err != nil {
			t.Fatalf("logging in to code-server: %v", err)
		}
	}
	waitWorkbench(t, b)
	back, err := chromedp.Run(b, chromedp.Evaluate[string](`location.href`))
	if err != nil {
		t.Fatal(err)
	}
	if back != href {
		t.Fatalf("woken at %s, the tab was at %s", back, href)
	}
	steps.done("back to the tab → waking page → the same folder (" + href + ")")
}

// within polls cond every 200 ms until it holds (true) or timeout passes (false).
func within(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
	return true
}
