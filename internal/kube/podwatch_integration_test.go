package kube

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// On the real API server, with kwok's nodes: the waiters of two sessions share one watch; a
// waiter is told when its own workspace's pod turns Ready (scaled 0 → 1) and when it goes, and
// not of the other's; the watch knows the Ready pod's template (WatchedReady), and that the
// pods of its first waiter's session are starting (WatchedStarting); it ends with its last
// waiter and starts again for the next, from the pods as they are then.
func TestIntegrationWatchPods(t *testing.T) {
	k, ns := env.Namespace(t)
	ctx := t.Context()
	o := testOptions()
	o.Namespace, o.StorageClass, o.BackupPVC = ns, "", backupPVC
	var watches atomic.Int32
	cfg := rest.CopyConfig(k.Config)
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			if req.URL.Query().Get("watch") == "true" {
				watches.Add(1)
			}
			return next.RoundTrip(req)
		})
	})
	cl, err := NewClients(cfg, Budgets{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewClusterFromClients(cl, o)
	mine, other := newWorkspace(t), newWorkspace(t)
	mine.Replicas, other.Replicas = 0, 0
	for _, ws := range []session.Workspace{mine, other} {
		if err := c.Apply(ctx, ws); err != nil {
			t.Fatal(err)
		}
	}

	changed, stop, err := c.WatchPods(ctx, mine.ID)
	if err != nil {
		t.Fatal(err)
	}
	otherChanged, stopOther, err := c.WatchPods(ctx, other.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := watches.Load(); n != 1 {
		t.Fatalf("two waiters made %d watches", n)
	}
	// The watch began with a list of mine's pods (none): it knows mine to be starting; the
	// other session's waiter joined a running watch, which knows nothing of its pods.
	if !c.WatchedStarting(mine.ID) || c.WatchedStarting(other.ID) {
		t.Fatalf("WatchedStarting: mine %v, other %v; want true, false", c.WatchedStarting(mine.ID), c.WatchedStarting(other.ID))
	}
	if err := c.Scale(ctx, mine.ID, 1); err != nil {
		t.Fatal(err)
	}
	// Each signal is followed by a read, as Await does, until the pod is Ready.
	signals := 0
	deadline := time.After(2 * time.Minute)
	for ready := false; !ready; {
		select {
		case <-changed:
			signals++
		case <-deadline:
			t.Fatalf("not told of a Ready pod after %d signals", signals)
		}
		obs, err := c.readinessDirect(ctx, mine.ID)
		if err != nil {
			t.Fatal(err)
		}
		ready = obs.Ready
	}
	t.Logf("ready after %d signals", signals)
	if c.WatchedStarting(mine.ID) {
		t.Error("WatchedStarting after its pod turned Ready")
	}
	select {
	case <-otherChanged:
		t.Error("the other session's waiter was told of a change of this one's pod")
	default:
	}
	// The watch saw the pod of mine's template Ready; not of a template mine does not have
	// (another image), nor of the other session's. The read above may be ahead of the watch
	// (the signal it followed was a passing problem, and the pod turned Ready before the
	// read): the watch's own Ready event then comes with a signal of its own.
	for !c.WatchedReady(mine) {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("the watch never saw mine's pod Ready that a read found Ready")
		}
	}
	changedImage := mine
	changedImage.Image += "-other"
	if !c.WatchedReady(mine) || c.WatchedReady(changedImage) || c.WatchedReady(other) {
		t.Fatalf("WatchedReady: mine %v, mine with another image %v, other %v; want true, false, false",
			c.WatchedReady(mine), c.WatchedReady(changedImage), c.WatchedReady(other))
	}
	// Scaled to zero, the pod goes: its waiter is told, and the watch no longer calls it Ready.
	if err := c.Scale(ctx, mine.ID, 0); err != nil {
		t.Fatal(err)
	}
	for c.WatchedReady(mine) {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("the watch still says Ready after a scale to zero")
		}
	}

	// Up again, for the next waiter below.
	if err := c.Scale(ctx, mine.ID, 1); err != nil {
		t.Fatal(err)
	}
	for !c.WatchedReady(mine) {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("not told of the pod Ready again")
		}
	}

	stop()
	stopOther()
	stop() // again: nothing
	c.pods.mu.Lock()
	running := c.pods.cancel != nil
	c.pods.mu.Unlock()
	if running {
		t.Fatal("the watch outlived its last waiter")
	}
	// The next waiter's watch begins with mine's pods as they are: a Ready pod is seen Ready
	// at once, without waiting for a change.
	_, stop, err = c.WatchPods(ctx, mine.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !c.WatchedReady(mine) || c.WatchedStarting(mine.ID) {
		t.Errorf("a new watch of a Ready pod: WatchedReady %v, WatchedStarting %v; want true, false", c.WatchedReady(mine), c.WatchedStarting(mine.ID))
	}
	stop()
	if n := watches.Load(); n != 2 {
		t.Fatalf("%d watches made, want 2: one shared, then one for the next waiter", n)
	}
}
