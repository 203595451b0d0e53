package datapath_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// onTestClock maps a heartbeat of the real code-server, which beats on the pod's (real)
// clock, onto the test clock the sweep reads: a beat a second ago in real time is a beat a
// second before the test clock's now.
func onTestClock(clock *testenv.Clock, probe sweep.ProberFunc) sweep.ProberFunc {
	return func(ctx context.Context, id string) (sweep.Heartbeat, error) {
		hb, err := probe(ctx, id)
		if err == nil && !hb.Last.IsZero() {
			hb.Last = hb.Last.Add(time.Until(clock.Now()))
		}
		return hb, err
	}
}

// A workspace without the activity extension (a custom image; here the extension is silent
// because the deployment gives workspaces no HYPERBOLA_ACTIVITY_URL, which is all the control
// plane can see of either): while a client keeps code-server's heartbeat beating, as an open
// tab does, the heartbeat keeps the workspace awake past its idle timeout, but not past its
// idle_connected_max, counted from its last real use. The sleep is the cap's, and the
// workspace's files are the same bytes after it wakes.
func TestSweepCapsAnOpenTabWithoutTheExtension(t *testing.T) {
	clock := testenv.NewClock(time.Now().UTC().Truncate(time.Second))
	f := newFixture(t, fixtureOptions{now: clock.Now})
	ctx := context.Background()
	idle, connectedMax := session.Duration(15*time.Minute), session.Duration(2*time.Hour)
	s := f.create(session.CreateRequest{IdleTimeout: &idle, IdleConnectedMax: &connectedMax})
	f.exec(s.ID, writeTree)
	before := f.manifest(s.ID)

	// the open tab: a request to code-server every few seconds beats its heartbeat
	tab, closeTab := context.WithCancel(ctx)
	defer closeTab()
	ip := f.pod(s.ID).Status.PodIP
	beaten := make(chan struct{}, 1)
	go func() {
		for {
			req, _ := http.NewRequestWithContext(tab, http.MethodGet, fmt.Sprintf("http://%s:8080/", ip), nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
				select {
				case beaten <- struct{}{}:
				default:
				}
			}
			select {
			case <-tab.Done():
				return
			case <-time.After(3 * time.Second):
			}
		}
	}()
	<-beaten

	sw := sweep.New(sweep.Deps{Sessions: f.svc, Store: f.store, Now: clock.Now,
		Prober: onTestClock(clock, f.heartbeat)}, sweep.Options{ReconcileEvery: -1})
	sweepAt := func(at time.Time) *sweep.Report {
		t.Helper()
		clock.Set(at)
		r, err := sw.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	got, err := f.svc.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	used := got.LastActivity
	// past the idle timeout, every few minutes until a minute before the cap: the beating
	// heartbeat keeps it awake, and is never taken for use
	for at := used.Add(idle.D() + time.Second); at.Before(used.Add(connectedMax.D() - time.Minute)); at = at.Add(20 * time.Minute) {
		if r := sweepAt(at); r.Slept != 0 || r.ProbeErrors != 0 {
			t.Fatalf("%s after its last use, a tab open: %+v", at.Sub(used), r)
		}
	}
	if r := sweepAt(used.Add(connectedMax.D() - time.Second)); r.Slept != 0 {
		t.Fatalf("slept a second before its idle_connected_max: %+v", r)
	}
	if got, _ := f.svc.Get(ctx, s.ID); got.State != session.StateRunning || !got.LastActivity.Equal(used) {
		t.Fatalf("before the cap: %s, last activity %s (was %s): the heartbeat must not count as use", got.State, got.LastActivity, used)
	}
	r := sweepAt(used.Add(connectedMax.D() + time.Second))
	if r.Slept != 1 || r.SleptConnected != 1 {
		t.Fatalf("a tab open with no use past idle_connected_max: %+v, want one sleep by the cap", r)
	}
	closeTab()
	f.waitNoPods(s.ID)
	if _, err := f.svc.Wake(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	f.waitState(s.ID, session.StateRunning)
	if after := f.manifest(s.ID); after != before {
		t.Fatalf("the tree changed across the cap's sleep:\nbefore\n%s\nafter\n%s", before, after)
	}
}
