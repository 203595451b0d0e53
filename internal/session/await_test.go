package session_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

func newAwaitRig(t *testing.T) *rig {
	t.Helper()
	f := sessiontest.New()
	return &rig{Fakes: f, t: t, svc: f.Service(session.Options{Domain: "ws.test", AwaitInterval: 5 * time.Millisecond}), ctx: t.Context()}
}

// A waiting read of a starting session answers the moment a read of its own sees the pod
// ready, not at the caller's next poll; it read, found the pod not ready and read again.
func TestAwaitAnswersOnceThePodIsReady(t *testing.T) {
	for _, st := range []session.State{session.StateCreating, session.StateWaking} {
		t.Run(string(st), func(t *testing.T) {
			r := newAwaitRig(t)
			id := r.in(st).ID
			first, release1 := r.Cluster.Stall("Readiness")
			got := make(chan *session.Session, 1)
			go func() {
				s, err := r.svc.Await(r.ctx, id, session.MaxAwait)
				if err != nil {
					t.Error(err)
				}
				got <- s
			}()
			<-first // the first read is under way; the pod is not ready
			second, release2 := r.Cluster.Stall("Readiness")
			release1()
			<-second // the first read answered "not ready" and Await read again
			r.Cluster.SetReady(id, true, "")
			release2()
			if s := <-got; s == nil || s.State != session.StateRunning || s.Starting() {
				t.Fatalf("awaited %+v", s)
			}
		})
	}
}

// Past its wait a starting session is answered as it is; a session that is not starting is
// answered at once; a caller that leaves ends the wait with its context's error.
func TestAwaitEnds(t *testing.T) {
	r := newAwaitRig(t)
	starting := r.in(session.StateCreating).ID
	start := time.Now()
	s, err := r.svc.Await(r.ctx, starting, 60*time.Millisecond)
	if err != nil || s.State != session.StateCreating || !s.Starting() {
		t.Fatalf("past the wait: %+v, %v", s, err)
	}
	if took := time.Since(start); took < 55*time.Millisecond { // the wait less one interval, at least
		t.Errorf("answered after %s of a 60ms wait", took)
	}

	sleeping := r.in(session.StateSleeping).ID
	start = time.Now()
	if s, err := r.svc.Await(r.ctx, sleeping, session.MaxAwait); err != nil || s.State != session.StateSleeping {
		t.Fatalf("sleeping: %+v, %v", s, err)
	}
	if took := time.Since(start); took > session.MaxAwait/2 {
		t.Errorf("a sleeping session was held %s", took)
	}

	ctx, cancel := context.WithCancel(r.ctx)
	entered, release := r.Cluster.Stall("Readiness")
	done := make(chan error, 1)
	go func() { _, err := r.svc.Await(ctx, starting, session.MaxAwait); done <- err }()
	<-entered
	cancel()
	release()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller that left: %v", err)
	}

	if _, err := r.svc.Await(r.ctx, "zz99zz99", time.Second); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("an unknown id: %v", err)
	}
}

// watchingCluster is the fake cluster with a pod watch the test drives.
type watchingCluster struct {
	*sessiontest.Cluster
	changed  chan struct{}
	started  chan string
	stopped  chan string
	ready    atomic.Bool // what WatchedReady says of every workspace
	starting atomic.Bool // what WatchedStarting says of every session
}

func (w *watchingCluster) WatchPods(_ context.Context, id string) (<-chan struct{}, func(), error) {
	w.started <- id
	return w.changed, func() { w.stopped <- id }, nil
}

func (w *watchingCluster) WatchedReady(session.Workspace) bool { return w.ready.Load() }

func (w *watchingCluster) WatchedStarting(string) bool { return w.starting.Load() }

func newWatchingCluster(f *sessiontest.Fakes) (*watchingCluster, *session.Service) {
	w := &watchingCluster{Cluster: f.Cluster, changed: make(chan struct{}, 1), started: make(chan string, 1), stopped: make(chan string, 1)}
	return w, session.NewService(w, f.Store, session.Options{Domain: "ws.test", Now: f.Clock.Now, Recorder: f.Recorder,
		AwaitInterval: time.Hour, AwaitFallback: time.Hour})
}

// On a Cluster that watches pods, a waiting read reads again when the session's pods change,
// not on a timer (the fallback here is an hour), and stops its watch when it returns.
func TestAwaitFollowsThePodWatch(t *testing.T) {
	f := sessiontest.New()
	w, svc := newWatchingCluster(f)
	s, err := svc.Create(t.Context(), session.CreateRequest{UserID: "u@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *session.Session, 1)
	go func() {
		a, err := svc.Await(t.Context(), s.ID, session.MaxAwait)
		if err != nil {
			t.Error(err)
		}
		got <- a
	}()
	<-w.started // the session read as starting; now its reads follow the watch
	f.Cluster.SetReady(s.ID, true, "")
	w.changed <- struct{}{}
	if a := <-got; a == nil || a.State != session.StateRunning {
		t.Fatalf("awaited %+v", a)
	}
	if id := <-w.stopped; id != s.ID {
		t.Fatalf("stopped the watch of %s", id)
	}
}

// A pod the watch saw Ready is taken at its word: the session runs without another readiness
// read (here the cluster's own reads would still say not ready), its route goes back to the
// workspace first, and the wake's event is recorded.
func TestAwaitTakesTheWatchsWordForReady(t *testing.T) {
	f := sessiontest.New()
	w, svc := newWatchingCluster(f)
	s := wokenOnWatch(t, f, svc)
	got := awaitInBackground(t, svc, s.ID)
	<-w.started
	w.ready.Store(true)
	w.changed <- struct{}{}
	if a := <-got; a == nil || a.State != session.StateRunning {
		t.Fatalf("awaited %+v", a)
	}
	<-w.stopped
	calls := f.Cluster.Calls()
	if last := calls[len(calls)-1]; last != "route "+s.ID+" activator=false" {
		t.Errorf("the last call was %q, want the route back to the workspace", last)
	}
	if evs := f.Recorder.Types(s.ID); evs[len(evs)-1] != "woke" {
		t.Errorf("events %v, want woke last", evs)
	}
}

// While the watch knows the woken session's pods to be starting still, the waiter's first read
// waits for the watch: no readiness read (here it would fail) until the pod turns Ready, and
// then none either (the watch saw it). Without that knowledge the first read reads.
func TestAwaitWaitsForTheWatchFirst(t *testing.T) {
	f := sessiontest.New()
	w, svc := newWatchingCluster(f)
	ctx := t.Context()
	s := wokenOnWatch(t, f, svc)
	readFailed := errors.New("a readiness read")
	f.Cluster.Fail("Readiness", readFailed)

	w.starting.Store(true)
	got := awaitInBackground(t, svc, s.ID)
	<-w.started
	w.ready.Store(true)
	w.changed <- struct{}{}
	if a := <-got; a == nil || a.State != session.StateRunning {
		t.Fatalf("awaited %+v", a)
	}
	<-w.stopped

	if _, err := svc.Sleep(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Wake(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	w.ready.Store(false)
	w.starting.Store(false)
	failed := make(chan error, 1)
	go func() {
		_, err := svc.Await(ctx, s.ID, session.MaxAwait)
		failed <- err
	}()
	<-w.started
	if err := <-failed; !errors.Is(err, readFailed) {
		t.Errorf("a waiter the watch could not tell: %v, want its first read's error", err)
	}
	<-w.stopped
}

// wokenOnWatch makes a session that ran, slept and was woken: waking, its pod not Ready.
func wokenOnWatch(t *testing.T, f *sessiontest.Fakes, svc *session.Service) *session.Session {
	t.Helper()
	ctx := t.Context()
	s, err := svc.Create(ctx, session.CreateRequest{UserID: "u@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	f.Cluster.SetReady(s.ID, true, "")
	if _, err := svc.Get(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Sleep(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	f.Cluster.SetReady(s.ID, false, "")
	if s, err = svc.Wake(ctx, s.ID); err != nil || s.State != session.StateWaking {
		t.Fatalf("woken: %+v, %v", s, err)
	}
	return s
}

// awaitInBackground waits on session id with the longest wait, and sends what it answered.
func awaitInBackground(t *testing.T, svc *session.Service, id string) <-chan *session.Session {
	got := make(chan *session.Session, 1)
	go func() {
		a, err := svc.Await(t.Context(), id, session.MaxAwait)
		if err != nil {
			t.Error(err)
		}
		got <- a
	}()
	return got
}
