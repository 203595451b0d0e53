package activator_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activator"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// BenchmarkWakeOnAccess measures wake on access with the local cluster and redis-server, from
// the browser's first request to the redirect into the IDE:
//
//	GET /?hyperbola_wake=<link>  → wake, 303 with the wake cookie
//	GET /                        → the waking page
//	GET /.hyperbola/status ...   → (held, or polled) driving the ready step until ready
//	GET /                        → 303 to the workspace
//
// held is the waking page as it is: its status poll is held until the workspace runs
// (Options.StatusWait). The others answer each poll at once, as the page's polls were before:
// poll=1s is the page's cadence then, poll=25ms the control plane's own latency. The local
// cluster's pods are kwok's: ready without pulling an image or starting code-server, which a
// real cluster adds (see docs/operations/wake-on-access.md).
//
//	go test -run '^$' -bench BenchmarkWakeOnAccess -benchtime 20x ./internal/activator/
func BenchmarkWakeOnAccess(b *testing.B) {
	for _, tc := range []struct {
		name string
		wait time.Duration // the status poll's hold; 1ns: answered at once
		poll time.Duration
	}{{"held", 0, time.Second}, {"poll=1s", time.Nanosecond, time.Second}, {"poll=25ms", time.Nanosecond, 25 * time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) {
			f := newFixture(b, func(o *activator.Options) {
				o.RequestsPerIP, o.StatusPerIP, o.WakesPerSession = 1e6, 1e6, 1e6
				o.StatusWait = tc.wait
			})
			poll := tc.poll
			var took []time.Duration
			for b.Loop() {
				b.StopTimer()
				s := f.asleep(b)
				link, _ := url.Parse(activator.WakeLink(s.WorkspaceURL, []byte(secret), s.ID, time.Now().Add(time.Hour)))
				b.StartTimer()

				start := time.Now()
				r := f.do(b, s.ID, request{path: link.RequestURI()})
				c := wakeCookie(r)
				if r.StatusCode != http.StatusSeeOther || c == nil {
					b.Fatalf("wake link: %d", r.StatusCode)
				}
				if r = f.do(b, s.ID, request{path: "/", cookies: []*http.Cookie{c}}); r.StatusCode != http.StatusOK && r.StatusCode != http.StatusSeeOther {
					b.Fatalf("waking page: %d", r.StatusCode)
				}
				if r.StatusCode == http.StatusOK {
					f.pollReady(b, s.ID, c, poll)
					r = f.do(b, s.ID, request{path: "/", cookies: []*http.Cookie{c}})
				}
				if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "http://vs-code-"+s.ID+"."+domain+"/" {
					b.Fatalf("redirect: %d %s", r.StatusCode, r.Header.Get("Location"))
				}
				took = append(took, time.Since(start))
			}
			report(b, took)
		})
	}
}

// BenchmarkIngressSwitch compares the two ways of moving a workspace's host between the
// workspace and the activator: the Ingress alone (Cluster.Route, what the session core uses)
// and the whole workspace (Cluster.Apply, six objects).
func BenchmarkIngressSwitch(b *testing.B) {
	f := newFixture(b, nil)
	s, err := f.svc.Create(context.Background(), session.CreateRequest{UserID: "bench@example.com"})
	if err != nil {
		b.Fatal(err)
	}
	ws := session.Workspace{ID: s.ID, UserID: s.UserID, Image: s.Image, Storage: s.Storage, CPU: s.CPU, Memory: s.Memory,
		Replicas: 1, CreatedAt: s.CreatedAt, IdleTimeout: s.IdleTimeout.D(), Password: "unused-the-secret-exists"}
	for name, apply := range map[string]func(context.Context, session.Workspace) error{
		"route": f.cluster.Route,
		"apply": f.cluster.Apply,
	} {
		b.Run(name, func(b *testing.B) {
			var took []time.Duration
			i := 0
			for b.Loop() {
				ws.Activator = i%2 == 0
				i++
				start := time.Now()
				if err := apply(context.Background(), ws); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			report(b, took)
		})
	}
}

// report adds p50, p90 and max (milliseconds) to the benchmark's line.
func report(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	pct := func(p int) float64 {
		return float64(took[min(len(took)-1, (len(took)*p+99)/100-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(50), "p50-ms")
	b.ReportMetric(pct(90), "p90-ms")
	b.ReportMetric(pct(100), "max-ms")
}
