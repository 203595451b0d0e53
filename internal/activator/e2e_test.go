package activator_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activator"
)

// chromiumPath is Debian's chromium (CI installs it: .ci/run).
const chromiumPath = "/usr/bin/chromium"

// ideTitle is the title of the stand-in for code-server.
const ideTitle = "code-server stand-in"

// ingress stands in for ingress-nginx in front of the local cluster: for each request it reads
// the workspace's Ingress from the cluster and does what nginx would. Backend
// hyperbola-activator: proxy to the control plane with Host set to the activator's own host
// (upstream-vhost) and the workspace host in X-Forwarded-Host; backend vs-code-<id>: the
// workspace, here a stand-in page for code-server (the local cluster's pods are kwok's, they
// serve nothing).
func (f *fixture) ingress(t testing.TB) http.Handler {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "the API", http.StatusTeapot) })
	control := activator.Dispatch(api, f.act)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, _, _ := strings.Cut(r.Host, ".")
		ing, err := f.kube.Client.NetworkingV1().Ingresses(f.ns).Get(r.Context(), name, metav1.GetOptions{})
		if err != nil {
			http.Error(w, "no Ingress for "+r.Host, http.StatusNotFound)
			return
		}
		switch backend := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name; backend {
		case "hyperbola-activator":
			up := r.Clone(r.Context())
			up.Header.Set("X-Forwarded-Host", r.Host)
			up.Header.Set("X-Forwarded-For", "203.0.113.50")
			up.Host = "session-api.control-plane.test"
			control.ServeHTTP(w, up)
		case name:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><title>%s</title></head><body><h1>%s</h1><p>Opened at %s</p></body></html>`,
				ideTitle, ideTitle, r.URL.RequestURI())
		default:
			http.Error(w, "unknown backend "+backend, http.StatusBadGateway)
		}
	})
}

// cordon makes every node unschedulable (or schedulable again), so a woken workspace's pod
// waits, and the waking page can be seen waiting.
func (f *fixture) cordon(t testing.TB, on bool) {
	t.Helper()
	ctx := context.Background()
	nodes, err := f.kube.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.Items {
		patch := fmt.Appendf(nil, `{"spec":{"unschedulable":%v}}`, on)
		if _, err := f.kube.Client.CoreV1().Nodes().Patch(ctx, n.Name, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// browser starts a headless Chromium that resolves every workspace host of the test domain to
// addr (so it really sends Host: vs-code-<id>.ws.test), in a fresh profile.
func browser(t *testing.T, addr string) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("end-to-end test skipped: %s is missing (apt-get install chromium)", chromiumPath)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-features", "HttpsUpgrades,HttpsFirstBalancedModeAutoEnable"),
		chromedp.Flag("host-resolver-rules", "MAP vs-code-*."+domain+" "+addr),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 720),
	)
	ctx, cancelCtx := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser now
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// screenshot saves the page under the test's artifact directory (go test -artifacts keeps
// it) and, when HYPERBOLA_ARTIFACTS is set, there too.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{t.ArtifactDir()}
	if d := os.Getenv("HYPERBOLA_ARTIFACTS"); d != "" {
		dirs = append(dirs, d)
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
}

// waitText waits until the element's text contains want, across navigations.
func waitText(ctx context.Context, sel, want string) error {
	return waitJS(ctx, fmt.Sprintf(`(function(){var e=document.querySelector(%q);return !!e && e.textContent.indexOf(%q)>=0})()`, sel, want), 90*time.Second)
}

// waitJS evaluates expr until it is true. Each try is short and its errors are ignored: a
// navigation on the way ends any evaluation (or poll) inside the page.
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
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s still false after %s (last error %v)", expr, timeout, last)
}

// waitTitle waits until the page's title is want.
func waitTitle(ctx context.Context, want string, timeout time.Duration) error {
	return waitJS(ctx, fmt.Sprintf(`document.title === %q`, want), timeout)
}

// The whole way, in a real browser. With JavaScript: the workspace's address asks for the
// password, the password opens the waking page (asleep → starting), the page shows the
// workspace starting while its pod waits, and once the session runs the page's script opens
// the IDE, through the Ingress that the session switched back. Without JavaScript: a wake
// link opens the waking page, and its meta refresh ends in the IDE.
func TestE2EWakingPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	f := newFixture(t, func(o *activator.Options) { o.PollInterval = 500 * time.Millisecond })
	front := httptest.NewServer(f.ingress(t))
	t.Cleanup(front.Close)
	addr := strings.TrimPrefix(front.URL, "http://")

	for _, js := range []bool{true, false} {
		name := map[bool]string{true: "javascript", false: "no-javascript"}[js]
		t.Run(name, func(t *testing.T) {
			ctx := browser(t, addr)
			if !js {
				if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
					t.Fatal(err)
				}
			}
			s := f.asleep(t)
			workspaceURL := "http://vs-code-" + s.ID + "." + domain + "/"
			link := activator.WakeLink(strings.TrimSuffix(workspaceURL, "/"), []byte(secret), s.ID, time.Now().Add(time.Hour))

			f.cordon(t, true)
			t.Cleanup(func() { f.cordon(t, false) })
			start := time.Now()
			if js {
				// the owner opens the address, which asks for the password, and types it
				if err := chromedp.Do(ctx, chromedp.Navigate(workspaceURL)); err != nil {
					t.Fatalf("opening the workspace: %v", err)
				}
				if err := waitText(ctx, "h1", "This workspace is asleep"); err != nil {
					t.Fatalf("no asleep page: %v", err)
				}
				if n := f.replicas(t, s.ID); n != 0 {
					t.Fatalf("opening the address without proof woke the workspace (replicas %d)", n)
				}
				screenshot(t, ctx, "asleep-page.png")
				if err := chromedp.Do(ctx,
					chromedp.SendKeys("#password", s.Password),
					chromedp.Submit("#password"),
				); err != nil {
					t.Fatalf("typing the password: %v", err)
				}
			} else if err := chromedp.Do(ctx, chromedp.Navigate(link)); err != nil { // a wake link
				t.Fatalf("opening the wake link: %v", err)
			}
			if err := waitText(ctx, "#status", "Starting your workspace"); err != nil {
				body, _ := chromedp.Run(ctx, chromedp.OuterHTML("html"))
				t.Fatalf("no progress state: %v\n%s", err, body)
			}
			title := must(chromedp.Run(ctx, chromedp.Title()))(t)
			step := must(chromedp.Run(ctx, chromedp.AttributeValue("#main", "data-step")))(t).Value
			live := must(chromedp.Run(ctx, chromedp.AttributeValue("#status", "role")))(t).Value
			href := must(chromedp.Run(ctx, chromedp.Location()))(t)
			if title != "Waking your workspace · Hyperbola" || step != "starting" || live != "status" || href != workspaceURL {
				t.Fatalf("waking page: title %q step %q role %q at %s", title, step, live, href)
			}
			if n := f.replicas(t, s.ID); n != 1 {
				t.Fatalf("replicas while waking: %d", n)
			}
			screenshot(t, ctx, "waking-page-"+name+".png")
			t.Logf("waking page after %s; the pod waits for a schedulable node", time.Since(start).Round(time.Millisecond))

			f.cordon(t, false)
			released := time.Now()
			if err := waitTitle(ctx, ideTitle, 90*time.Second); err != nil {
				body, _ := chromedp.Run(ctx, chromedp.OuterHTML("html"))
				t.Fatalf("never reached the IDE: %v\nstate %s, Ingress to %s\n%s", err, f.state(t, s.ID), f.backend(t, s.ID), body)
			}
			href = must(chromedp.Run(ctx, chromedp.Location()))(t)
			if href != workspaceURL {
				t.Fatalf("the IDE is at %s, want %s", href, workspaceURL)
			}
			t.Logf("in the IDE %s after the node was schedulable again (%s after the first request)",
				time.Since(released).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			screenshot(t, ctx, "ide-"+name+".png")
		})
	}
}

// must returns v, failing the test on err.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
