package kube

import (
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Fifty concurrent Readiness calls on the real API server, for sessions on kwok nodes (forty
// running, ten scaled to zero, one never created), are answered correctly, each as a read of
// its own would answer it, by a handful of lists and no GET.
func TestIntegrationReadinessRoundsOnTheAPIServer(t *testing.T) {
	k, ns := env.Namespace(t)
	ctx := t.Context()
	o := testOptions()
	o.Namespace, o.StorageClass, o.BackupPVC = ns, "", backupPVC
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := &wire{}
	cfg := rest.CopyConfig(k.Config)
	cfg.Wrap(rec.wrap)
	cl, err := NewClients(cfg, Budgets{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewClusterFromClients(cl, o)

	const running, asleep = 40, 10
	ws := make([]session.Workspace, running+asleep)
	var g errgroup.Group
	g.SetLimit(10)
	for i := range ws {
		ws[i] = newWorkspace(t)
		if i >= running {
			ws[i].Replicas = 0
		}
		g.Go(func() error { return c.Apply(ctx, ws[i]) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	// Settled, not only Ready: the Deployment's readyReplicas follows its pod's Ready condition
	// by a moment, and the comparison below reads the cluster twice.
	eventually(t, 2*time.Minute, "every running workspace Ready and its Deployment caught up", func() (bool, error) {
		all, err := c.ObserveAll(ctx)
		n := 0
		for _, obs := range all {
			if obs.Ready && obs.ReadyReplicas == obs.DesiredReplicas {
				n++
			}
		}
		return n == running, err
	})

	ids := []string{newWorkspace(t).ID} // never created
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	rec.mu.Lock()
	before := len(rec.seen)
	rec.mu.Unlock()
	got := make([]*session.Observed, len(ids))
	var calls errgroup.Group
	for i, id := range ids {
		calls.Go(func() (err error) {
			got[i], err = c.Readiness(ctx, id)
			return err
		})
	}
	if err := calls.Wait(); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	made := append([]exchange(nil), rec.seen[before:]...)
	rec.mu.Unlock()
	var deps, pods, other int
	for _, e := range made {
		switch {
		case e.method == http.MethodGet && strings.HasSuffix(e.path, "/namespaces/"+ns+"/deployments"):
			deps++
		case e.method == http.MethodGet && strings.HasSuffix(e.path, "/namespaces/"+ns+"/pods"):
			pods++
		default:
			other++
		}
	}
	t.Logf("%d calls: %d Deployment lists, %d pod lists, %d other requests", len(ids), deps, pods, other)
	// A lone first caller is answered by a round of its own, the rest by the next: two rounds,
	// three if the goroutines straggled across an interval.
	if deps > 3 || pods > 3 || other > 0 {
		t.Errorf("%d Deployment lists, %d pod lists and %d other requests for %d calls: want at most 3, 3 and 0", deps, pods, other, len(ids))
	}
	for i, id := range ids {
		obs := got[i]
		switch {
		case i == 0 && obs.Exists():
			t.Errorf("a session never created: %+v", obs)
		case i >= 1 && i <= running && (!obs.Ready || obs.Pods != 1 || obs.DesiredReplicas != 1):
			t.Errorf("running %s: %+v", id, obs)
		case i > running && (obs.Ready || obs.DesiredReplicas != 0 || !obs.Has(session.ObjectDeployment)):
			t.Errorf("asleep %s: %+v", id, obs)
		}
	}
	var mu sync.Mutex
	var direct errgroup.Group
	direct.SetLimit(10)
	for i, id := range ids {
		direct.Go(func() error {
			want, err := c.readinessDirect(ctx, id)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got[i], want) {
				mu.Lock()
				t.Errorf("%s: the round answered %+v, a read of its own %+v", id, got[i], want)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := direct.Wait(); err != nil {
		t.Fatal(err)
	}
}
