package sweep_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

func TestProbeURLPodIP(t *testing.T) {
	p, err := sweep.NewHTTPProber(sweep.ProbeOptions{URLTemplate: sweep.PodProbeURL, Port: 8080})
	if err != nil {
		t.Fatalf("a template naming the pod's address and no {id}: %v", err)
	}
	if !p.NeedsPodIP() {
		t.Fatal("a {pod_ip} template must ask for the pod's address")
	}
	for ip, want := range map[string]string{
		"10.1.2.3":        "http://10.1.2.3:8080/healthz",
		"fd00::a":         "http://[fd00::a]:8080/healthz",
		"::ffff:10.1.2.3": "http://10.1.2.3:8080/healthz",
	} {
		if u, err := p.PodURL("ab12cd34", ip); err != nil || u != want {
			t.Errorf("pod %s: %q %v, want %q", ip, u, err, want)
		}
	}
	for _, bad := range []string{"", "10.1.2.3:80", "vs-code-ab12cd34", "fe80::1%eth0", "10.1.2.3/32"} {
		if u, err := p.PodURL("ab12cd34", bad); err == nil {
			t.Errorf("pod address %q made %q", bad, u)
		}
	}
	if _, err := p.PodURL("../x", "10.1.2.3"); err == nil {
		t.Error("an invalid id was accepted")
	}
	// without an address the URL cannot be built: Probe fails as invalid, with no request
	if _, err := p.URL("ab12cd34"); err == nil {
		t.Error("URL without the pod's address")
	}
	if _, err := p.Probe(context.Background(), "ab12cd34"); sweep.ReasonOf(err) != sweep.ReasonInvalid {
		t.Errorf("Probe without the pod's address: %v", err)
	}
	// the other templates need no address, and ignore one
	d, err := sweep.NewHTTPProber(sweep.ProbeOptions{Namespace: "ws", Port: 8080})
	if err != nil || d.NeedsPodIP() {
		t.Fatalf("default template: %v, needs the pod's address %v", err, d.NeedsPodIP())
	}
	if u, err := d.PodURL("ab12cd34", "10.1.2.3"); err != nil || u != "http://vs-code-ab12cd34.ws.svc.cluster.local:8080/healthz" {
		t.Errorf("default template with an address: %q %v", u, err)
	}
	for _, bad := range []string{"http://{pod_ip}:{port}/healthz?x=1", "http://{pod_ip}:{port}/"} {
		if _, err := sweep.NewHTTPProber(sweep.ProbeOptions{URLTemplate: bad, Port: 8080}); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
	if _, err := sweep.NewHTTPProber(sweep.ProbeOptions{URLTemplate: sweep.PodProbeURL}); err == nil {
		t.Error("{port} without a value accepted")
	}
}

// podAddrs is a PodAddrs answering from a map (or failing), counting its lists.
type podAddrs struct {
	mu    sync.Mutex
	ips   map[string]string
	err   error
	lists int
}

func (p *podAddrs) WorkspacePodIPs(context.Context) (map[string]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lists++
	if p.err != nil {
		return nil, p.err
	}
	return maps.Clone(p.ips), nil
}

func (p *podAddrs) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lists
}

// podWorld is a world of running workspaces idle for an hour, probed by pod IP: the pods of
// withPod are Ready at 10.0.0.<n>, each a stand-in answering lastHeartbeat 0 (nobody since
// it started); the others have no Ready pod.
func podWorld(t *testing.T, withPod []string, without int) (*world, *podAddrs, *sweep.HTTPProber, *atomic.Int64) {
	t.Helper()
	w := newWorld()
	t0 := w.Clock.Now()
	var probes atomic.Int64
	pods := &podAddrs{ips: map[string]string{}}
	routes := map[string]string{}
	for i, id := range withPod {
		w.Seed(running(id, t0))
		srv := httpStandIn(t, func(w http.ResponseWriter, r *http.Request) {
			probes.Add(1)
			_, _ = w.Write([]byte(`{"status":"expired","lastHeartbeat":0}`))
		})
		ip := fmt.Sprintf("10.0.0.%d", i+1)
		pods.ips[id], routes[ip+":8080"] = ip, srv.Listener.Addr().String()
	}
	for i := range without {
		w.Seed(running(fmt.Sprintf("anopod%02d", i), t0))
	}
	w.Clock.Add(time.Hour)
	p, err := sweep.NewHTTPProber(sweep.ProbeOptions{URLTemplate: sweep.PodProbeURL, Port: 8080, DialContext: dialMap(routes)})
	if err != nil {
		t.Fatal(err)
	}
	return w, pods, p, &probes
}

// Candidates are probed at their pods' addresses from one list per sweep; the ones without a
// Ready pod are deferred, not probed, not counted as errors, and stay candidates.
func TestRunProbesByPodIP(t *testing.T) {
	w, pods, p, probes := podWorld(t, []string{"aidle001", "aidle002"}, 30)
	s := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: p, PodAddrs: pods, Now: w.Clock.Now, Logger: quiet()}, sweep.Options{})
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	rep, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report %+v", rep)
	if rep.Candidates != 32 || rep.Probed != 2 || rep.Slept != 2 || rep.Deferred != 30 || rep.ProbeErrors != 0 || rep.Errors != 0 {
		t.Fatalf("report %+v", rep)
	}
	if pods.count() != 1 || probes.Load() != 2 {
		t.Fatalf("%d pod lists and %d probes, want one list for the sweep and a probe per Ready pod", pods.count(), probes.Load())
	}
	if got := w.sleptIDs(); !slices.Equal(got, []string{"aidle001", "aidle002"}) {
		t.Fatalf("slept %v", got)
	}
	// no backoff for a workspace without a pod: the next sweep looks at it again, and once
	// its pod is Ready it is probed
	pods.mu.Lock()
	pods.ips = map[string]string{}
	pods.mu.Unlock()
	rep, err = s.Run(context.Background())
	if err != nil || rep.Candidates != 30 || rep.Deferred != 30 || rep.Probed != 0 || pods.count() != 2 {
		t.Fatalf("second sweep %+v %v, %d lists", rep, err, pods.count())
	}
	for i := range 30 {
		if s, _ := w.Store.Get(context.Background(), fmt.Sprintf("anopod%02d", i)); s.State != session.StateRunning {
			t.Fatalf("a workspace without a pod: %s", s.State)
		}
	}
}

// A sweep with no idle candidate lists no pods.
func TestRunPodIPNoCandidatesNoList(t *testing.T) {
	w, pods, p, _ := podWorld(t, nil, 0)
	rep, err := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: p, PodAddrs: pods, Now: w.Clock.Now, Logger: quiet()},
		sweep.Options{}).Run(context.Background())
	if err != nil || rep.Candidates != 0 || pods.count() != 0 {
		t.Fatalf("%+v %v, %d lists", rep, err, pods.count())
	}
}

// Pods that cannot be listed: nothing is probed or put to sleep, every candidate is left for
// the next sweep, and the failure is one error, not one per candidate.
func TestRunPodIPListFails(t *testing.T) {
	w, pods, p, probes := podWorld(t, []string{"aidle001"}, 5)
	pods.err = session.ErrUnavailable
	rep, err := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: p, PodAddrs: pods, Now: w.Clock.Now, Logger: quiet()},
		sweep.Options{}).Run(context.Background())
	if !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	if rep.Candidates != 6 || rep.Deferred != 6 || rep.Errors != 1 || rep.Probed != 0 || rep.Slept != 0 || probes.Load() != 0 {
		t.Fatalf("report %+v, %d probes", rep, probes.Load())
	}
}

// The {pod_ip} template from the options needs something that lists the pods.
func TestNewPodIPNeedsPodAddrs(t *testing.T) {
	w := newWorld()
	opts := sweep.Options{ProbeURL: sweep.PodProbeURL, Port: 8080}
	if err := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Logger: quiet()}, opts).Err(); err == nil {
		t.Fatal("a {pod_ip} probe URL without PodAddrs was accepted")
	}
	if err := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, PodAddrs: &podAddrs{}, Logger: quiet()}, opts).Err(); err != nil {
		t.Fatal(err)
	}
	// a Prober that is not a PodProber needs no pods
	if err := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: &heartbeats{}, Logger: quiet()}, opts).Err(); err != nil {
		t.Fatal(err)
	}
}
