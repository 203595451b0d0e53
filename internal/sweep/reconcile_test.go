package sweep_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/reconcile"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// fakeFlusher counts Flush calls and answers written (or err).
type fakeFlusher struct {
	mu      sync.Mutex
	calls   int
	written int
	err     error
}

func (f *fakeFlusher) Flush(context.Context) (*events.FlushResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return &events.FlushResult{Written: f.written}, f.err
}

// fakeReconciler counts runs and answers a report with one rebuilt session (or err).
type fakeReconciler struct {
	mu    sync.Mutex
	calls int
	err   error
	dry   []bool
}

func (f *fakeReconciler) Reconcile(_ context.Context, dryRun bool) (*reconcile.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.dry = append(f.dry, dryRun)
	if f.err != nil {
		return nil, f.err
	}
	return &reconcile.Report{Observed: 3, FlushedEvents: 2, Rebuilt: []reconcile.Item{{ID: "arebuilt"}},
		Skipped: []reconcile.Item{{ID: "askipped"}, {ID: "askippe2"}}}, nil
}

func (f *fakeReconciler) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func newFlushingSweeper(w *world, fl sweep.Flusher, rc sweep.Reconciler, opts sweep.Options) *sweep.Sweeper {
	return sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: &heartbeats{},
		Now: w.Clock.Now, Logger: quiet(), Flusher: fl, Reconciler: rc}, opts)
}

func TestRunFlushesQueuedEventsEverySweep(t *testing.T) {
	w := newWorld()
	st := w.Store
	fl := &fakeFlusher{written: 7}
	s := newFlushingSweeper(w, fl, nil, sweep.Options{})
	for i := 1; i <= 2; i++ {
		rep, err := s.Run(context.Background())
		if err != nil || rep.FlushedEvents != 7 || rep.Errors != 0 || rep.Reconciled != nil {
			t.Fatalf("sweep %d: %+v %v", i, rep, err)
		}
		if fl.calls != i {
			t.Fatalf("sweep %d: %d flushes", i, fl.calls)
		}
	}
	// Firestore down: counted, logged, and not a failed sweep (the events stay queued).
	fl.err, fl.written = session.Unavailable("firestore", errors.New("connection refused")), 1
	rep, err := s.Run(context.Background())
	if err != nil || rep.FlushedEvents != 1 || rep.Errors != 1 {
		t.Fatalf("failed flush: %+v %v", rep, err)
	}
	// A skipped sweep flushes nothing.
	st.HoldLease("sweep", true)
	if rep, _ := s.Run(context.Background()); !rep.Skipped || fl.calls != 3 {
		t.Fatalf("skipped sweep flushed: %+v, %d calls", rep, fl.calls)
	}
}

func TestRunReconcilesOncePerPeriodAcrossInstances(t *testing.T) {
	w := newWorld()
	clk := w.Clock // one store and clock: the instances share Redis
	rc := &fakeReconciler{}
	a := newFlushingSweeper(w, nil, rc, sweep.Options{})
	b := newFlushingSweeper(w, nil, rc, sweep.Options{})

	rep, err := a.Run(context.Background())
	if err != nil || rep.Reconciled == nil || rc.count() != 1 || rc.dry[0] {
		t.Fatalf("first sweep: %+v %v (%d reconciles)", rep, err, rc.count())
	}
	want := sweep.ReconcileSummary{Observed: 3, FlushedEvents: 2, Rebuilt: 1, Skipped: 2}
	got := *rep.Reconciled
	got.DurationMS = 0
	if got != want {
		t.Fatalf("summary %+v, want %+v", got, want)
	}
	b64, _ := json.Marshal(rep)
	if !strings.Contains(string(b64), `"reconciled":{"observed":3,"flushed_events":2,`) {
		t.Fatalf("report JSON %s", b64)
	}
	// Within the period, on this instance or another: no reconcile, no "reconciled".
	for _, s := range []*sweep.Sweeper{a, b, b} {
		rep, err := s.Run(context.Background())
		if err != nil || rep.Reconciled != nil {
			t.Fatalf("sweep within the period: %+v %v", rep, err)
		}
		if b, _ := json.Marshal(rep); strings.Contains(string(b), "reconciled") {
			t.Fatalf("report JSON within the period: %s", b)
		}
	}
	if rc.count() != 1 {
		t.Fatalf("%d reconciles within one period", rc.count())
	}
	// The period lapses (the due lease expires in Redis): the next sweep, anywhere, reconciles.
	clk.Add(10 * time.Minute)
	if rep, _ := b.Run(context.Background()); rep.Reconciled == nil || rc.count() != 2 {
		t.Fatalf("after the period: %+v, %d reconciles", rep, rc.count())
	}
}

func TestRunReconcileBusyOrFailedIsRetriedByTheNextSweep(t *testing.T) {
	w := newWorld()
	st := w.Store
	rc := &fakeReconciler{err: &session.Error{Kind: session.KindBusy, Message: "another reconcile is running"}}
	s := newFlushingSweeper(w, nil, rc, sweep.Options{})
	rep, err := s.Run(context.Background())
	if err != nil || rep.Reconciled == nil || !rep.Reconciled.Busy || rep.Errors != 0 {
		t.Fatalf("busy: %+v %v", rep, err)
	}
	if st.LeaseHeld("reconcile-due") {
		t.Fatal("a busy reconcile kept the due lease: the next sweep would not try")
	}
	rc.err = session.Unavailable("kubernetes", errors.New("connection refused"))
	rep, err = s.Run(context.Background())
	if err != nil || rep.Reconciled == nil || rep.Reconciled.Error == "" || rep.Errors != 1 || st.LeaseHeld("reconcile-due") {
		t.Fatalf("failed: %+v %v (due lease held %v)", rep, err, st.LeaseHeld("reconcile-due"))
	}
	rc.err = nil
	if rep, _ := s.Run(context.Background()); rep.Reconciled == nil || rep.Reconciled.Error != "" || !st.LeaseHeld("reconcile-due") {
		t.Fatalf("recovered: %+v", rep)
	}
	if rc.count() != 3 {
		t.Fatalf("%d reconciles", rc.count())
	}
}

// TestRunReconcileOff: without a reconciler a sweep runs no reconcile (how
// HYPERBOLA_RECONCILE_EVERY=0 turns it off; internal/stack's TestSweeperReconcileOff).
func TestRunReconcileOff(t *testing.T) {
	s := newFlushingSweeper(newWorld(), nil, nil, sweep.Options{})
	if rep, err := s.Run(context.Background()); err != nil || rep.Reconciled != nil {
		t.Fatalf("%+v %v", rep, err)
	}
}

// emptyCluster observes nothing (reconcile's only required call on an empty cluster).
type emptyCluster struct{ session.Cluster }

func (emptyCluster) ObserveAll(context.Context) ([]*session.Observed, error) { return nil, nil }

// emptyStore is a session.Store with nothing in it (reconcile reads no record).
type emptyStore struct{ session.Store }

func TestReconcileRunnerHoldsTheLease(t *testing.T) {
	leases := sessiontest.NewStore(nil)
	r := sweep.NewReconcileRunner(reconcile.Deps{Cluster: emptyCluster{}, Store: emptyStore{}, Logger: quiet()}, leases,
		reconcile.Options{}, time.Minute)
	rep, err := r.Reconcile(context.Background(), true)
	if err != nil || !rep.DryRun || rep.Observed != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	if leases.LeaseHeld(sweep.ReconcileLeaseName) {
		t.Fatal("the lease was not released")
	}
	leases.HoldLease(sweep.ReconcileLeaseName, true) // another instance reconciles
	if _, err := r.Reconcile(context.Background(), false); !errors.Is(err, session.ErrBusy) {
		t.Fatalf("concurrent reconcile: %v", err)
	}
}
