package sweep_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// A workspace whose certificate is still pending (its Ingress's TLS Secret does not exist: no
// cert-manager here, as on GKE before the ACME order completes) runs the real code-server on
// the real node. The sweep, with the probe URL infra sets on Cloud Run
// (http://{pod_ip}:{port}/healthz), finds its pod's address in one list of the workspace
// pods, reads code-server's own heartbeat there (recorded as activity, to the millisecond),
// and once the workspace is idle by that heartbeat puts it to sleep.
func TestIntegrationSweepProbesByPodIPWithoutCertificate(t *testing.T) {
	k, ns := env.RealNodeNamespace(t) // skips with -short
	f := newFixtureIn(t, k, ns)
	rn := f.kube.RealNode
	pl := f.instanceWith(func(o *kube.Options, so *session.Options) {
		o.BackupImage, so.Image = rn.BackupImage, rn.WorkspaceImage
		o.StorageClass, o.NodeSelector, o.Tolerations = rn.StorageClass, rn.NodeSelector(), []corev1.Toleration{rn.Toleration()}
	})
	ctx := context.Background()
	created, err := pl.Service.Create(ctx, session.CreateRequest{UserID: "pending-cert@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.ID
	waitRunning(t, pl, id, 5*time.Minute)
	pod := readyPod(t, f, id)
	if pod.Spec.NodeName != rn.NodeName {
		t.Fatalf("the workspace runs on %s, not on the real node %s", pod.Spec.NodeName, rn.NodeName)
	}
	if cidr := netip.MustParsePrefix(rn.PodCIDR); !cidr.Contains(netip.MustParseAddr(pod.Status.PodIP)) {
		t.Fatalf("pod address %s outside the real node's %s", pod.Status.PodIP, cidr)
	}
	// the certificate is pending: the Ingress names a TLS Secret that does not exist
	ing, err := f.kube.Client.NetworkingV1().Ingresses(f.ns).Get(ctx, "vs-code-"+id, metav1.GetOptions{})
	if err != nil || len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName == "" {
		t.Fatalf("the workspace's Ingress TLS: %v %v", ing, err)
	}
	if _, err := f.kube.Client.CoreV1().Secrets(f.ns).Get(ctx, ing.Spec.TLS[0].SecretName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("TLS Secret %s: %v, want it missing (certificate pending)", ing.Spec.TLS[0].SecretName, err)
	}

	// the sweep as infra configures it on Cloud Run, its dials recorded
	dials := &dialLog{}
	p, err := sweep.NewHTTPProber(sweep.ProbeOptions{URLTemplate: sweep.PodProbeURL, Port: f.port, DialContext: dials.dial})
	if err != nil {
		t.Fatal(err)
	}
	s := sweep.New(sweep.Deps{Sessions: pl.Service, Store: pl.Store, Prober: p, PodAddrs: pl.Cluster,
		Now: f.clk.Now, Logger: f.log}, sweep.Options{ProbeURL: sweep.PodProbeURL, Port: f.port})
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	base := "http://" + net.JoinHostPort(pod.Status.PodIP, fmt.Sprint(f.port))

	// somebody uses the IDE: any request but /healthz makes code-server beat
	get(t, base+"/login")
	beat := waitHeartbeat(t, base, time.Time{})
	rec := f.recordOn(pl, id)
	timeout := rec.IdleTimeout.D()
	if !beat.After(rec.LastActivity.Add(time.Millisecond)) {
		t.Fatalf("heartbeat %s not after the recorded activity %s", beat, rec.LastActivity)
	}
	// idle by the record, not by code-server's heartbeat: probed and kept (no cap on this
	// deployment); the beat is not use, so the recorded activity stays
	f.clk.Set(rec.LastActivity.Add(timeout + beat.Sub(rec.LastActivity)/2))
	rep := run(t, s)
	t.Logf("first sweep: %+v", rep)
	if rep.Candidates != 1 || rep.Probed != 1 || rep.KeptActive != 1 || rep.Slept != 0 || rep.ProbeErrors != 0 || rep.Errors != 0 {
		t.Fatalf("first sweep %+v", rep)
	}
	if got := f.recordOn(pl, id); !got.LastActivity.Equal(rec.LastActivity) || got.State != session.StateRunning {
		t.Fatalf("after the first sweep: %s, last activity %s, want it unmoved at %s (heartbeat %s)", got.State, got.LastActivity, rec.LastActivity, beat)
	}
	want := []string{net.JoinHostPort(pod.Status.PodIP, fmt.Sprint(f.port))}
	if got := dials.all(); !slices.Equal(got, want) {
		t.Fatalf("the probe dialled %v, want the pod's address %v", got, want)
	}

	// nobody since: idle by the heartbeat too, the sweep puts it to sleep
	last := waitHeartbeat(t, base, time.Time{}) // the same beat, unless an open connection made another
	f.clk.Set(last.Add(timeout + time.Second))
	rep = run(t, s)
	t.Logf("second sweep: %+v", rep)
	if rep.Candidates != 1 || rep.Probed != 1 || rep.Slept != 1 || rep.ProbeErrors != 0 || rep.Errors != 0 {
		t.Fatalf("second sweep %+v", rep)
	}
	if got := f.recordOn(pl, id); got.State != session.StateSleeping || !got.LastActivity.Equal(rec.LastActivity) {
		t.Fatalf("after the second sweep: %s, last activity %s (recorded %s, heartbeat %s)", got.State, got.LastActivity, rec.LastActivity, last)
	}
	if r := f.replicas(id); r != 0 {
		t.Fatalf("asleep with %d replicas", r)
	}
	if got := dials.all(); len(got) != 2 || got[1] != want[0] {
		t.Fatalf("the probes dialled %v", got)
	}
}

// dialLog dials normally and records every address dialled.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialLog) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	var dd net.Dialer
	return dd.DialContext(ctx, network, addr)
}

func (d *dialLog) all() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.addrs)
}

// waitRunning drives the session with Get (as any request would) until it is running.
func waitRunning(t *testing.T, pl *plane, id string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var s *session.Session
	var err error
	for time.Now().Before(deadline) {
		if s, err = pl.Service.Get(context.Background(), id); err == nil && s.State == session.StateRunning && s.Pending == session.PendingNone {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("session %s not running after %s: %+v %v", id, timeout, s, err)
}

// readyPod is the session's one workspace pod, Ready.
func readyPod(t *testing.T, f *fixture, id string) corev1.Pod {
	t.Helper()
	sel, err := kube.ComponentSelector(id, kube.ComponentWorkspace)
	if err != nil {
		t.Fatal(err)
	}
	l, err := f.kube.Client.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil || len(l.Items) != 1 || l.Items[0].Status.PodIP == "" {
		t.Fatalf("workspace pods of %s: %v %v", id, l, err)
	}
	return l.Items[0]
}

// get makes one request to code-server and reads its answer.
func get(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// waitHeartbeat reads code-server's /healthz until it reports a heartbeat after after (its
// beat is written a moment after the request that caused it).
func waitHeartbeat(t *testing.T, base string, after time.Time) time.Time {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		hb, err := sweep.ParseHeartbeat(body)
		if err != nil {
			t.Fatalf("/healthz: %v", err)
		}
		if hb.Last.After(after) {
			return hb.Last
		}
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat after %s: %s", after, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// recordOn reads the stored record through pl's store, without driving anything.
func (f *fixture) recordOn(pl *plane, id string) *session.Session {
	f.t.Helper()
	s, err := pl.Store.Get(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}
