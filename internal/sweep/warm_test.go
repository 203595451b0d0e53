package sweep_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// fakeWarmer counts Warm calls and answers err.
type fakeWarmer struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (f *fakeWarmer) Warm(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.err
}

// Every sweep keeps the warm path; a failure is counted and named in the report, and never
// fails the sweep of the sessions.
func TestRunKeepsTheWarmPathEverySweep(t *testing.T) {
	w := newWorld()
	wm := &fakeWarmer{}
	s := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: &heartbeats{}, Now: w.Clock.Now, Logger: quiet(), Warmer: wm},
		sweep.Options{})
	for i := 1; i <= 2; i++ {
		rep, err := s.Run(context.Background())
		if err != nil || rep.Errors != 0 || rep.WarmError != "" || wm.calls != i {
			t.Fatalf("sweep %d: %+v %v (%d warms)", i, rep, err, wm.calls)
		}
	}
	wm.err = errors.New("daemonsets.apps is forbidden")
	rep, err := s.Run(context.Background())
	if err != nil || rep.Errors != 1 || rep.WarmError != wm.err.Error() {
		t.Fatalf("failed warm: %+v %v", rep, err)
	}
	// A skipped sweep leaves the warm path to the one that runs.
	w.Store.HoldLease("sweep", true)
	if rep, _ := s.Run(context.Background()); !rep.Skipped || wm.calls != 3 {
		t.Fatalf("skipped sweep warmed: %+v, %d calls", rep, wm.calls)
	}
}
