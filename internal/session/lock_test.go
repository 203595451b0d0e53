package session_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// realLockRig is a rig whose store keeps locks on the real clock (their expiry is real time),
// with a short lock TTL, so the lock keeper's extensions and cuts happen within a test.
// It returns the rig and a running session.
func realLockRig(t *testing.T, opts session.Options) (*rig, string) {
	t.Helper()
	f := sessiontest.New()
	f.Store = sessiontest.NewStore(nil)
	r := &rig{Fakes: f, t: t, ctx: context.Background()}
	r.svc = f.Service(session.Options{Domain: "ws.test"})
	id := r.in(session.StateRunning).ID
	opts.Domain = "ws.test"
	r.svc = f.Service(opts)
	return r, id
}

// stalled starts op in the background with its first call of method stalled; it returns once
// op waits in that call, and the channel op's error arrives on.
func (r *rig) stalled(method string, op func() error) (release func(), done <-chan error) {
	r.t.Helper()
	entered, release := r.Cluster.Stall(method)
	ch := make(chan error, 1)
	go func() { ch <- op() }()
	select {
	case <-entered:
	case err := <-ch:
		r.t.Fatalf("the operation ended before it called %s: %v", method, err)
	case <-time.After(10 * time.Second):
		r.t.Fatalf("the operation never called %s", method)
	}
	return release, ch
}

// A transition that runs longer than the lock's TTL keeps its lock: it is extended while the
// work runs, and the work completes.
func TestLockIsExtendedWhileWorkRuns(t *testing.T) {
	// The keeper extends every third of the TTL and gives up after three quarters of it
	// without a confirmation: a TTL of seconds leaves a loaded machine room to run it late.
	const ttl = 2 * time.Second
	r, id := realLockRig(t, session.Options{LockTTL: ttl, TransitionTimeout: time.Minute})
	taken := time.Now()
	release, done := r.stalled("Scale", func() error { _, err := r.svc.Sleep(r.ctx, id); return err })
	// Four extensions a third of the TTL apart carry the lock past the TTL it was taken with.
	select {
	case <-r.Store.Extended(id, 4):
	case err := <-done:
		t.Fatalf("the stalled work ended before its lock was extended: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the lock was not extended while the work ran")
	}
	if held, locked := time.Since(taken), r.Store.Locked(id); !locked || held <= ttl {
		t.Fatalf("after four extensions the lock is held %v, %v after it was taken; want held past its TTL (%v)", locked, held, ttl)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("sleep after a long call: %v", err)
	}
	if g, _ := r.Store.Get(r.ctx, id); g.State != session.StateSleeping {
		t.Fatalf("after: %+v", g)
	}
	if r.Store.Locked(id) {
		t.Fatal("the lock was kept after the work")
	}
}

// A transition whose lock passed to another holder stops at once, its stalled call given up,
// and writes nothing.
func TestLostLockStopsTheWork(t *testing.T) {
	const ttl = 2 * time.Second // seconds: a keeper run late must not look like Redis gone
	r, id := realLockRig(t, session.Options{LockTTL: ttl, TransitionTimeout: 10 * time.Second})
	_, done := r.stalled("Scale", func() error { _, err := r.svc.Sleep(r.ctx, id); return err })
	steal := r.Store.HoldLock(id) // the lock expired and another instance took it
	defer steal()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the work went on after its lock was lost")
	}
	if !errors.Is(err, session.ErrBusy) || !strings.Contains(err.Error(), "lock was lost") {
		t.Fatalf("sleep that lost its lock = %v, want busy (lock lost)", err)
	}
	// The sleep's intent was written while the lock was held; nothing after it was.
	if g, _ := r.Store.Get(r.ctx, id); g.State != session.StateSleeping || g.Pending != session.PendingApply {
		t.Fatalf("after the lost sleep: %+v, want its intent (sleeping, await-apply)", g)
	}
	if o, _ := r.Cluster.Readiness(r.ctx, id); o.DesiredReplicas != 1 {
		t.Fatalf("the given-up call still scaled the workspace: %+v", o)
	}
	// The next holder finishes what the intent says.
	steal()
	if g := r.get(id); g.State != session.StateSleeping || g.Pending != session.PendingNone || r.Cluster.Replicas(id) != 0 {
		t.Fatalf("the intent was not finished: %+v, replicas %d", g, r.Cluster.Replicas(id))
	}
}

// When Redis cannot confirm the lock, the work stops before the lock could expire.
func TestUnconfirmedLockStopsTheWork(t *testing.T) {
	const ttl = 2 * time.Second // the cut comes at 1.5 s: half a second for a loaded machine
	r, id := realLockRig(t, session.Options{LockTTL: ttl, TransitionTimeout: 10 * time.Second})
	r.Store.Fail("Extend", errors.New("redis: connection refused"))
	start := time.Now()
	_, done := r.stalled("Scale", func() error { _, err := r.svc.Sleep(r.ctx, id); return err })
	err := <-done
	if session.KindOf(err) != session.KindUnavailable || !strings.Contains(err.Error(), "could not be extended") {
		t.Fatalf("sleep with an unconfirmed lock = %v", err)
	}
	if took := time.Since(start); took >= ttl {
		t.Fatalf("the work stopped after %v, not before the lock's TTL (%v)", took, ttl)
	}
}

// A transition ends at its deadline, however long its lock would last.
func TestTransitionDeadline(t *testing.T) {
	r, id := realLockRig(t, session.Options{TransitionTimeout: 100 * time.Millisecond})
	_, done := r.stalled("Scale", func() error { _, err := r.svc.Sleep(r.ctx, id); return err })
	err := <-done
	if session.KindOf(err) != session.KindUnavailable || !strings.Contains(err.Error(), "past its deadline") {
		t.Fatalf("sleep past its deadline = %v", err)
	}
	// the sleep was recorded before the cut call: the next touch finishes it
	if g := r.get(id); g.State != session.StateSleeping || r.Cluster.Replicas(id) != 0 {
		t.Fatalf("after a cut sleep: %+v, replicas %d", g, r.Cluster.Replicas(id))
	}
}

// Scenario 3 of the data-safety issue: a change stalls (the process paused, so nothing
// noticed) past its lock, and another instance changes the session meanwhile. When the
// stalled change goes on, its record write is refused. Its Kubernetes call may still land
// late; the record wins: Repair (which reconcile calls on such drift) brings the cluster back.
func TestStaleWriterWritesNothing(t *testing.T) {
	r := newRig(t)
	s := r.in(session.StateRunning)
	a, b := r.svc, r.Service(session.Options{Domain: "ws.test"}) // two instances
	release, done := r.stalled("Apply", func() error {
		_, err := a.Update(r.ctx, s.ID, session.UpdateRequest{Image: ptr("example.test/ide:2")})
		return err
	})
	r.Clock.Add(2 * time.Minute) // a's lock (60 s on the store's clock) expires
	if _, err := b.Sleep(r.ctx, s.ID); err != nil {
		t.Fatalf("the other instance's sleep: %v", err)
	}
	release() // a's apply lands now, late
	if err := <-done; !errors.Is(err, session.ErrBusy) {
		t.Fatalf("the stale update = %v, want busy (its lock was lost)", err)
	}
	g, _ := r.Store.Get(r.ctx, s.ID)
	if g.State != session.StateSleeping || g.Image == "example.test/ide:2" || g.Pending != session.PendingNone {
		t.Fatalf("the stale update overwrote the other instance's record: %+v", g)
	}
	if r.Cluster.Replicas(s.ID) != 1 {
		t.Fatalf("the late apply did not land as the test expects: replicas %d", r.Cluster.Replicas(s.ID))
	}
	if g := must(t)(b.Repair(r.ctx, s.ID)); g.State != session.StateSleeping || r.Cluster.Replicas(s.ID) != 0 {
		t.Fatalf("repair of a sleeping session with a pod: %+v, replicas %d", g, r.Cluster.Replicas(s.ID))
	}
	if ws, _ := r.Cluster.Workspace(s.ID); !ws.Activator || ws.Image == "example.test/ide:2" {
		t.Fatalf("repair left the late apply's workspace: %+v", ws)
	}
}

func ptr[T any](v T) *T { return &v }

// PendingSince follows the step: set when a step begins, kept while it lasts, cleared at the end.
func TestPendingSince(t *testing.T) {
	r := newRig(t)
	s := r.create(session.CreateRequest{})
	if s.Pending != session.PendingReady || !s.PendingSince.Equal(sessiontest.Epoch) {
		t.Fatalf("after create: %s since %v", s.Pending, s.PendingSince)
	}
	r.Clock.Add(time.Minute)
	if g := r.get(s.ID); !g.PendingSince.Equal(sessiontest.Epoch) {
		t.Fatalf("a waiting step moved its start: %v", g.PendingSince)
	}
	if g := r.ready(s.ID); g.Pending != session.PendingNone || !g.PendingSince.IsZero() {
		t.Fatalf("after ready: %s since %v", g.Pending, g.PendingSince)
	}
	r.Clock.Add(time.Minute)
	d := must(t)(r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{}))
	if d.Pending != session.PendingBackup || !d.PendingSince.Equal(r.Clock.Now()) {
		t.Fatalf("after delete: %s since %v", d.Pending, d.PendingSince)
	}
	ids, _ := r.Store.Pending(r.ctx, 10)
	if !slices.Equal(ids, []string{s.ID}) {
		t.Fatalf("pending index: %v", ids)
	}
}
