package sweep_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// running returns a running session with the given id, idle timeout 15m and last activity at.
func running(id string, at time.Time) *session.Session {
	return &session.Session{
		ID: id, UserID: "u@example.com", State: session.StateRunning,
		IdleTimeout: session.Duration(15 * time.Minute), CreatedAt: at, UpdatedAt: at, LastActivity: at,
		ExpiresAt: at.Add(24 * time.Hour),
	}
}

// heartbeats is a Prober answering from a map: a time is a heartbeat, an error a failure.
type heartbeats struct {
	mu     sync.Mutex
	answer map[string]any
	calls  map[string]int
}

func (h *heartbeats) Probe(ctx context.Context, id string) (sweep.Heartbeat, error) {
	h.mu.Lock()
	a := h.answer[id]
	if h.calls == nil {
		h.calls = map[string]int{}
	}
	h.calls[id]++
	h.mu.Unlock()
	switch v := a.(type) {
	case time.Time:
		return sweep.Heartbeat{Status: sweep.StatusExpired, Last: v}, nil
	case error:
		return sweep.Heartbeat{}, v
	}
	return sweep.Heartbeat{}, &sweep.ProbeError{ID: id, Reason: sweep.ReasonRefused}
}

func (h *heartbeats) called(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[id]
}

func TestRunSleepsOnlyWhatIsIdleBySignal(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	t0 := clk.Now()
	w.Seed(
		running("aactive1", t0), // API activity old, heartbeat fresh: kept (no cap)
		running("aidle001", t0), // heartbeat as old as its activity: sleeps
		running("anewer01", t0), // heartbeat newer than activity but still idle: sleeps
		running("afuture1", t0), // heartbeat in the future (pod clock ahead): counts as now
		running("afresh01", t0), // recent API activity: not even a candidate
		&session.Session{ID: "acreate1", UserID: "u", State: session.StateCreating, Pending: session.PendingReady,
			IdleTimeout: session.Duration(15 * time.Minute), LastActivity: t0, CreatedAt: t0},
	)
	st := w.Store
	clk.Add(20 * time.Minute)
	now := clk.Now()
	_ = st.Touch(context.Background(), "afresh01", now.Add(-time.Minute))
	hb := &heartbeats{answer: map[string]any{
		"aactive1": now.Add(-40 * time.Second),
		"aidle001": t0,
		"anewer01": t0.Add(2 * time.Minute),
		"afuture1": now.Add(time.Hour),
	}}
	svc := w.svc
	s := sweep.New(sweep.Deps{Sessions: svc, Store: st, Prober: hb, Now: clk.Now, Logger: quiet()}, sweep.Options{})
	rep, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := w.sleptIDs(), []string{"aidle001", "anewer01"}; !slices.Equal(got, want) {
		t.Fatalf("slept %v, want %v", got, want)
	}
	for _, c := range svc.Calls("") {
		if c.Actor != sweep.Actor {
			t.Fatalf("%s recorded as actor %q, want %q", c.Op, c.Actor, sweep.Actor)
		}
	}
	if rep.Candidates != 5 || rep.Probed != 4 || rep.Slept != 2 || rep.KeptActive != 2 || rep.ProbeErrors != 0 || rep.Errors != 0 {
		t.Fatalf("report %+v", rep)
	}
	// acreate1 is a candidate without a code-server yet: advanced as a pending step, not probed
	if rep.Pending != 1 || rep.Advanced != 1 || hb.called("acreate1") != 0 {
		t.Fatalf("creating session: report %+v, probes %d", rep, hb.called("acreate1"))
	}
	// a heartbeat is not use: it never moves the activity, it defers the next probe
	for _, id := range []string{"aactive1", "anewer01", "afuture1", "aidle001"} {
		if got := st.Touches(id); len(got) > 0 {
			t.Fatalf("the heartbeat of %s was recorded as activity: %v", id, got)
		}
	}
	for id, want := range map[string]time.Time{"aactive1": now.Add(-40 * time.Second).Add(15 * time.Minute), "afuture1": now.Add(15 * time.Minute)} {
		if d, _ := st.IdleDeadline(id); !d.Equal(want.Add(-time.Millisecond)) {
			t.Fatalf("%s: idle deadline %v, want %v", id, d, want)
		}
	}
}

func TestRunFailedProbesNeverSleep(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	t0 := clk.Now()
	reasons := []string{sweep.ReasonTimeout, sweep.ReasonRefused, sweep.ReasonStatus, sweep.ReasonBadResponse, sweep.ReasonUnreachable}
	var ss []*session.Session
	answer := map[string]any{}
	for i, r := range reasons {
		id := fmt.Sprintf("afail%03d", i)
		ss = append(ss, running(id, t0))
		answer[id] = &sweep.ProbeError{ID: id, Reason: r, Err: errors.New(r)}
	}
	ss = append(ss, running("apanic01", t0))
	answer["apanic01"] = errors.New("not a probe error")
	w.Seed(ss...)
	st := w.Store
	clk.Add(time.Hour)
	svc := w.svc
	hb := &heartbeats{answer: answer}
	s := sweep.New(sweep.Deps{Sessions: svc, Store: st, Prober: hb, Now: clk.Now, Logger: quiet()}, sweep.Options{})
	for range 2 { // and again once the probe backoff is over: still candidates, still awake
		rep, err := s.Run(context.Background())
		clk.Add(6 * time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Slept != 0 || rep.ProbeErrors != 6 || rep.Probed != 6 || rep.Candidates != 6 {
			t.Fatalf("report %+v", rep)
		}
		if rep.ProbeErrorsBy[sweep.ReasonTimeout] != 1 || rep.ProbeErrorsBy[sweep.ReasonUnreachable] != 2 {
			t.Fatalf("probe errors by reason %v", rep.ProbeErrorsBy)
		}
	}
	if len(w.sleptIDs()) != 0 {
		t.Fatalf("slept %v after failed probes", w.sleptIDs())
	}
}

func TestRunBacksOffAFailedProbeWhenTheStoreCan(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	w.Seed(running("abroken1", clk.Now()))
	st := w.Store
	clk.Add(time.Hour)
	hb := &heartbeats{answer: map[string]any{}}
	s := sweep.New(sweep.Deps{Sessions: w.svc, Store: st, Prober: hb,
		Now: clk.Now, Logger: quiet()}, sweep.Options{ProbeBackoff: 5 * time.Minute})
	run := func() *sweep.Report {
		rep, err := s.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := run(); rep.ProbeErrors != 1 {
		t.Fatalf("first sweep %+v", rep)
	}
	clk.Add(time.Minute)
	if rep := run(); rep.Candidates != 0 || hb.called("abroken1") != 1 {
		t.Fatalf("within the backoff: %+v, probes %d", rep, hb.called("abroken1"))
	}
	clk.Add(5 * time.Minute)
	if rep := run(); rep.ProbeErrors != 1 || hb.called("abroken1") != 2 {
		t.Fatalf("after the backoff: %+v, probes %d", rep, hb.called("abroken1"))
	}
}

func TestRunActivityDuringTheProbeKeepsTheWorkspace(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	t0 := clk.Now()
	w.Seed(running("atouched", t0))
	st := w.Store
	clk.Add(time.Hour)
	prober := sweep.ProberFunc(func(ctx context.Context, id string) (sweep.Heartbeat, error) {
		// a client's activity ping lands while the probe is in flight
		_ = st.Touch(ctx, id, clk.Now())
		return sweep.Heartbeat{Status: sweep.StatusExpired, Last: t0}, nil
	})
	svc := w.svc
	rep, err := sweep.New(sweep.Deps{Sessions: svc, Store: st, Prober: prober, Now: clk.Now, Logger: quiet()}, sweep.Options{}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Slept != 0 || rep.KeptActive != 1 || len(w.sleptIDs()) != 0 {
		t.Fatalf("report %+v, slept %v", rep, w.sleptIDs())
	}
}

// The sweep puts a workspace to sleep through SleepIfIdle, which re-checks idleness under
// the session's lock.
func TestRunSleepsThroughSleepIfIdle(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	w.Seed(running("aidle001", clk.Now()))
	st := w.Store
	clk.Add(time.Hour)
	hb := &heartbeats{answer: map[string]any{"aidle001": time.Time{}}}
	rep, err := sweep.New(sweep.Deps{Sessions: w.svc, Store: st, Prober: hb, Now: clk.Now, Logger: quiet()}, sweep.Options{}).Run(context.Background())
	if n := len(w.svc.Calls("SleepIfIdle")); err != nil || rep.Slept != 1 || n != 1 {
		t.Fatalf("report %+v err %v, SleepIfIdle calls %d", rep, err, n)
	}
	if s, _ := st.Get(context.Background(), "aidle001"); s.State != session.StateSleeping || w.Cluster.Replicas("aidle001") != 0 {
		t.Fatalf("after the sweep: %s, %d replicas", s.State, w.Cluster.Replicas("aidle001"))
	}
}

func TestRunBusyOrConflictIsDeferredNotAnError(t *testing.T) {
	for _, e := range []error{&session.Error{Kind: session.KindBusy}, session.Conflict("deleting")} {
		w := newWorld()
		clk := w.Clock
		w.Seed(running("aidle001", clk.Now()))
		st := w.Store
		clk.Add(time.Hour)
		w.svc.Fail("SleepIfIdle", e)
		hb := &heartbeats{answer: map[string]any{"aidle001": time.Time{}}}
		rep, err := sweep.New(sweep.Deps{Sessions: w.svc, Store: st, Prober: hb, Now: clk.Now, Logger: quiet()}, sweep.Options{}).Run(context.Background())
		if err != nil || rep.Deferred != 1 || rep.Errors != 0 || rep.Slept != 0 {
			t.Fatalf("%v: report %+v err %v", e, rep, err)
		}
	}
}

func TestRunSkipsWhenTheLeaseIsHeld(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	w.Seed(running("aidle001", clk.Now()))
	st := w.Store
	clk.Add(time.Hour)
	st.HoldLease("sweep", true)
	svc := w.svc
	rep, err := sweep.New(sweep.Deps{Sessions: svc, Store: st, Prober: &heartbeats{}, Now: clk.Now, Logger: quiet()}, sweep.Options{}).Run(context.Background())
	if err != nil || !rep.Skipped || rep.Candidates != 0 || len(w.sleptIDs()) != 0 {
		t.Fatalf("report %+v err %v", rep, err)
	}
}

func TestRunDeletesExpiredAndRetriesFailedHourly(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	t0 := clk.Now()
	old := running("aexpire1", t0)
	failed := running("afailed1", t0)
	failed.State, failed.Reason, failed.Attempt = session.StateFailed, "backup failed", 1
	deleting := running("adelete1", t0)
	deleting.State, deleting.Pending = session.StateDeleting, session.PendingBackup
	w.Seed(old, failed, deleting)
	st := w.Store
	clk.Add(25 * time.Hour)
	failed.UpdatedAt = clk.Now().Add(-10 * time.Minute) // its last delete failed 10 minutes ago
	_ = st.Seed(failed)
	svc := w.svc
	s := sweep.New(sweep.Deps{Sessions: svc, Store: st, Prober: &heartbeats{}, Now: clk.Now, Logger: quiet()}, sweep.Options{})
	rep, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(svc.IDs("Delete"), []string{"aexpire1"}) || rep.Expired != 3 || rep.Deleted != 1 {
		t.Fatalf("deleted %v, report %+v", svc.IDs("Delete"), rep)
	}
	// the deleting one is advanced once (expiry and pending phases do not both drive it)
	if n := count(svc.IDs("Advance"), "adelete1"); n != 1 {
		t.Fatalf("adelete1 advanced %d times (%v)", n, svc.IDs("Advance"))
	}
	if rep.Probed != 0 {
		t.Fatalf("expired sessions must not be probed: %+v", rep)
	}
	clk.Add(time.Hour)
	if _, err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(svc.IDs("Delete"), "afailed1") {
		t.Fatalf("the failed session's delete was not retried after an hour: %v", svc.IDs("Delete"))
	}
}

func TestRunBoundsConcurrency(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	var ss []*session.Session
	for i := range 40 {
		ss = append(ss, running(fmt.Sprintf("a%07d", i), clk.Now()))
	}
	w.Seed(ss...)
	st := w.Store
	clk.Add(time.Hour)
	var inFlight, peak atomic.Int64
	prober := sweep.ProberFunc(func(ctx context.Context, id string) (sweep.Heartbeat, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		return sweep.Heartbeat{Status: sweep.StatusAlive, Last: clk.Now()}, nil
	})
	rep, err := sweep.New(sweep.Deps{Sessions: w.svc, Store: st, Prober: prober, Now: clk.Now, Logger: quiet()},
		sweep.Options{Concurrency: 4}).Run(context.Background())
	if err != nil || rep.KeptActive != 40 {
		t.Fatalf("report %+v err %v", rep, err)
	}
	if peak.Load() > 4 || peak.Load() < 2 {
		t.Fatalf("peak concurrency %d, bound 4", peak.Load())
	}
}

func TestRunProbeTimeoutIsPerProbe(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	w.Seed(running("aslow001", clk.Now()))
	st := w.Store
	clk.Add(time.Hour)
	prober := sweep.ProberFunc(func(ctx context.Context, id string) (sweep.Heartbeat, error) {
		<-ctx.Done()
		return sweep.Heartbeat{}, &sweep.ProbeError{ID: id, Reason: sweep.ReasonTimeout, Err: ctx.Err()}
	})
	start := time.Now()
	rep, err := sweep.New(sweep.Deps{Sessions: w.svc, Store: st, Prober: prober, Now: clk.Now, Logger: quiet()},
		sweep.Options{ProbeTimeout: 50 * time.Millisecond}).Run(context.Background())
	if err != nil || rep.ProbeErrors != 1 || rep.Slept != 0 {
		t.Fatalf("report %+v err %v", rep, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the probe timeout was not applied: %s", took)
	}
}

func TestNewReportsConfigurationErrors(t *testing.T) {
	w := newWorld()
	st := w.Store
	s := sweep.New(sweep.Deps{Sessions: w.svc, Store: st, Logger: quiet()}, sweep.Options{ProbeURL: "http://x/healthz?a=1"})
	if s.Err() == nil {
		t.Fatal("a probe URL with a query must be refused")
	}
	if _, err := s.Run(context.Background()); err == nil {
		t.Fatal("Run must return the configuration error")
	}
	if s := sweep.New(sweep.Deps{Logger: quiet()}, sweep.Options{}); s.Err() == nil {
		t.Fatal("a Sweeper without parts must report it")
	}
}

func TestRunStartsNoWorkAfterTwoThirdsOfTheLease(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	var ss []*session.Session
	for i := range 20 {
		ss = append(ss, running(fmt.Sprintf("a%07d", i), clk.Now()))
	}
	w.Seed(ss...)
	st := w.Store
	clk.Add(time.Hour)
	prober := sweep.ProberFunc(func(ctx context.Context, id string) (sweep.Heartbeat, error) {
		time.Sleep(50 * time.Millisecond)
		return sweep.Heartbeat{Status: sweep.StatusAlive, Last: clk.Now()}, nil
	})
	start := time.Now()
	rep, err := sweep.New(sweep.Deps{Sessions: w.svc, Store: st, Prober: prober, Now: clk.Now, Logger: quiet()},
		sweep.Options{Concurrency: 1, LeaseTTL: 300 * time.Millisecond}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if rep.Deferred == 0 || rep.KeptActive+rep.Deferred != 20 || took > 300*time.Millisecond {
		t.Fatalf("report %+v after %s: want work cut off at 200ms with the rest deferred", rep, took)
	}
	if st.LeaseHeld("sweep") {
		t.Fatal("the lease was not released")
	}
}

// staleExpired answers Expired from an index read before the sessions' ttl changed.
type staleExpired struct {
	*sessiontest.Store
	ids []string
}

func (s staleExpired) Expired(context.Context, time.Time, int) ([]string, error) { return s.ids, nil }

// A session whose ttl changed after the expires index was read (to 0, never expires, or to a
// later time) is not deleted: the sweep goes by the record.
func TestRunKeepsASessionWhoseTTLChanged(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	t0 := clk.Now()
	never := running("anever01", t0)
	never.ExpiresAt = time.Time{}
	later := running("alater01", t0)
	later.ExpiresAt = t0.Add(72 * time.Hour)
	gone := running("aexpire1", t0)
	w.Seed(never, later, gone)
	st := w.Store
	clk.Add(25 * time.Hour)
	svc := w.svc
	s := sweep.New(sweep.Deps{Sessions: svc, Store: staleExpired{st, []string{"alater01", "anever01", "aexpire1"}},
		Prober: &heartbeats{}, Now: clk.Now, Logger: quiet()}, sweep.Options{})
	if _, err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(svc.IDs("Delete"), []string{"aexpire1"}) {
		t.Fatalf("deleted %v, want only aexpire1", svc.IDs("Delete"))
	}
}

// The sweep removes the archives past the backup retention and names them in its report; a
// removal that fails is named with why, and the archive stays until a later sweep removes it.
func TestRunRemovesArchivesPastTheRetention(t *testing.T) {
	w := newWorld()
	clk := w.Clock
	put := func(sid string) *session.BackupRecord {
		id := sid + "-" + clk.Now().UTC().Format("20060102T150405Z")
		b := &session.BackupRecord{ID: id, SessionID: sid, UserID: "u@example.com", State: session.BackupAvailable,
			Location: "pvc://backups/" + sid + "/" + id + ".zip", CreatedAt: clk.Now().UTC(),
			ExpiresAt: clk.Now().UTC().Add(session.DefaultBackupRetention)}
		if err := w.Store.PutBackup(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		w.Cluster.PutArchive(b.Location, session.Archive{})
		return b
	}
	old := put("aold0001")
	clk.Add(20 * 24 * time.Hour)
	young := put("ayoung01")
	clk.Add(11 * 24 * time.Hour)
	s := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: &heartbeats{}, Now: clk.Now, Logger: quiet()}, sweep.Options{})

	w.Cluster.SetAutoRemove(session.BackupFailed)
	rep, err := s.Run(context.Background())
	if err != nil || len(rep.BackupsRemoved) != 0 || len(rep.BackupsFailed) != 1 {
		t.Fatalf("a failing removal: %+v, %v", rep, err)
	}
	clk.Add(time.Minute)
	w.Cluster.SetAutoRemove(session.BackupSucceeded)
	rep, err = s.Run(context.Background())
	if err != nil || !slices.Equal(rep.BackupsRemoved, []string{old.ID}) {
		t.Fatalf("report %+v, %v; want %s removed", rep, err, old.ID)
	}
	if got := w.Cluster.Archives(); !slices.Equal(got, []string{young.Location}) {
		t.Fatalf("archives left: %v", got)
	}
}

type pool struct {
	calls int
	err   error
}

func (p *pool) FillVolumePool(context.Context) error { p.calls++; return p.err }

// Every sweep fills the warm volume pool; a failure is counted, not fatal.
func TestRunFillsTheVolumePool(t *testing.T) {
	w := newWorld()
	p := &pool{}
	s := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: &heartbeats{}, Now: w.Clock.Now, Logger: quiet(), VolumePool: p}, sweep.Options{})
	if rep, err := s.Run(context.Background()); err != nil || rep.Errors != 0 || p.calls != 1 {
		t.Fatalf("report %+v err %v, %d fills", rep, err, p.calls)
	}
	p.err = errors.New("no node")
	if rep, err := s.Run(context.Background()); err != nil || rep.Errors != 1 || p.calls != 2 {
		t.Fatalf("failing fill: report %+v err %v, %d fills", rep, err, p.calls)
	}
}
