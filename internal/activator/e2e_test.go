package activator_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activator"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/devingress"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv/browsertest"
)

// ideTitle is the title of the stand-in for code-server.
const ideTitle = "code-server stand-in"

// activatorHost is the activator's own host in the end-to-end test (HYPERBOLA_ACTIVATOR_HOST):
// the Ingress sends it as Host (nginx's upstream-vhost) and the workspace host as
// X-Forwarded-Host, as in production.
const activatorHost = "session-api.control-plane.test"

// ingress is the local cluster's entry point (internal/devingress) in front of this
// fixture's control plane, which serves the activator beside an API (a teapot here): a
// workspace's host reaches its pod, or the activator in process while it is not running, by
// its Ingress or, in gateway mode, its HTTPRoute. transport stands in for kwok's pods, which
// serve nothing (nil: pods on the real node, by their IP).
func (f *fixture) ingress(t testing.TB, transport http.RoundTripper) http.Handler {
	t.Helper()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "the API", http.StatusTeapot) })
	opts := devingress.Options{
		Namespace: f.ns, Domain: f.domain, ActivatorService: "hyperbola-activator", Routing: f.routing,
		Activator: activator.Dispatch(api, f.act), Transport: transport, FakeNodes: transport != nil,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if f.routing == devingress.RoutingGateway {
		gw, err := gatewayclient.NewForConfig(f.kube.Config)
		if err != nil {
			t.Fatal(err)
		}
		opts.GatewayClient, opts.Gateway = gw, gateway
	}
	h, err := devingress.New(f.kube.Client, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// standIn answers for kwok's pods, which serve nothing: a page that stands in for
// code-server and says which pod address the entry point chose.
type standIn struct{}

func (standIn) RoundTrip(r *http.Request) (*http.Response, error) {
	body := fmt.Sprintf(`<!doctype html><html lang="en"><head><title>%s</title></head><body><h1>%s</h1><p>Opened at <span id="uri">%s</span> on pod <span id="pod">%s</span></p></body></html>`,
		ideTitle, ideTitle, html.EscapeString(r.URL.RequestURI()), html.EscapeString(r.URL.Host))
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
		Header:        http.Header{"Content-Type": {"text/html; charset=utf-8"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
	}, nil
}

// podAddr is the address (IP:port) of the workspace's pod.
func (f *fixture) podAddr(t testing.TB, id string) string {
	t.Helper()
	pods, err := f.kube.Client.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: "hyperbola.dev/session=" + id})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" {
			return net.JoinHostPort(p.Status.PodIP, "8080")
		}
	}
	t.Fatalf("session %s has no pod with an address", id)
	return ""
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
// addr (so it really sends Host: vs-code-<id>.ws.test); it is stopped after timeout.
func browser(t *testing.T, addr string, timeout time.Duration) context.Context {
	t.Helper()
	return browsertest.Start(t, browsertest.Options{Timeout: timeout, Width: 1024, Height: 720,
		HostResolverRules: "MAP vs-code-*." + domain + " " + addr})
}

// waitText waits until the element's text contains want, across navigations.
func waitText(ctx context.Context, sel, want string) error {
	return browsertest.WaitJS(ctx, fmt.Sprintf(`(function(){var e=document.querySelector(%q);return !!e && e.textContent.indexOf(%q)>=0})()`, sel, want), 90*time.Second)
}

// waitTitle waits until the page's title is want.
func waitTitle(ctx context.Context, want string, timeout time.Duration) error {
	return browsertest.WaitJS(ctx, fmt.Sprintf(`document.title === %q`, want), timeout)
}

// The whole way, in a real browser. With JavaScript: the workspace's address asks for the
// password, the password opens the waking page (asleep → starting), the page shows the
// workspace starting while its pod waits, and once the session runs the page's script opens
// the IDE, through the route that the session switched back. Without JavaScript: a wake
// link opens the waking page, and its meta refresh ends in the IDE. Both in each routing
// mode: by Ingresses, and by HTTPRoutes (HYPERBOLA_ROUTING=gateway).
func TestE2EWakingPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	for _, routing := range routings {
		t.Run(routing, func(t *testing.T) {
			f := newFixtureWith(t, routingSettings(t, routing),
				func(o *activator.Options) { o.PollInterval = 500 * time.Millisecond })
			f.routing = routing
			front := httptest.NewServer(f.ingress(t, standIn{}))
			t.Cleanup(front.Close)
			addr := strings.TrimPrefix(front.URL, "http://")
			testWakingPage(t, f, addr)
		})
	}
}

// testWakingPage is the end-to-end test against f's control plane behind the entry point at
// addr.
func testWakingPage(t *testing.T, f *fixture, addr string) {
	for _, js := range []bool{true, false} {
		name := map[bool]string{true: "javascript", false: "no-javascript"}[js]
		t.Run(name, func(t *testing.T) {
			ctx := browser(t, addr, 3*time.Minute)
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
				browsertest.Screenshot(t, ctx, f.routingName()+"-asleep-page.png")
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
			browsertest.Screenshot(t, ctx, f.routingName()+"-waking-page-"+name+".png")
			t.Logf("waking page after %s; the pod waits for a schedulable node", time.Since(start).Round(time.Millisecond))

			f.cordon(t, false)
			released := time.Now()
			if err := waitTitle(ctx, ideTitle, 90*time.Second); err != nil {
				body, _ := chromedp.Run(ctx, chromedp.OuterHTML("html"))
				t.Fatalf("never reached the IDE: %v\nstate %s, route to %s\n%s", err, f.state(t, s.ID), f.backend(t, s.ID), body)
			}
			href = must(chromedp.Run(ctx, chromedp.Location()))(t)
			if href != workspaceURL {
				t.Fatalf("the IDE is at %s, want %s", href, workspaceURL)
			}
			if pod, want := must(chromedp.Run(ctx, chromedp.Text("#pod")))(t), f.podAddr(t, s.ID); pod != want {
				t.Fatalf("the entry point sent the IDE's page to %s, want the pod at %s", pod, want)
			}
			t.Logf("in the IDE %s after the node was schedulable again (%s after the first request)",
				time.Since(released).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			browsertest.Screenshot(t, ctx, f.routingName()+"-ide-"+name+".png")
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
