package datapath_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// heartbeat asks the session's real code-server for its heartbeat, at its pod's address (the
// real node's pods are reachable from this host; there is no Service routing here).
func (f *fixture) heartbeat(ctx context.Context, id string) (sweep.Heartbeat, error) {
	ps := f.pods(id)
	for _, p := range ps {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:8080/healthz", p.Status.PodIP), nil)
		if err != nil {
			return sweep.Heartbeat{}, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return sweep.Heartbeat{}, fmt.Errorf("probe %s: %w", p.Name, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<14))
		if err != nil {
			return sweep.Heartbeat{}, err
		}
		return sweep.ParseHeartbeat(b)
	}
	return sweep.Heartbeat{}, fmt.Errorf("session %s has no pod to probe", id)
}

// The idle sweep against the real code-server: a fresh pod answers
// {"status":"expired","lastHeartbeat":0} until a browser connects. The workspace must not be
// put to sleep before its idle timeout has passed since it became ready, or since it woke, and
// is put to sleep once it has.
func TestSweepAndAFreshCodeServer(t *testing.T) {
	clock := testenv.NewClock(time.Now().UTC().Truncate(time.Second))
	f := newFixture(t, fixtureOptions{now: clock.Now})
	ctx := context.Background()
	timeout := session.Duration(time.Minute)
	s := f.create(session.CreateRequest{IdleTimeout: &timeout})

	hb, err := f.heartbeat(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if hb.Status != sweep.StatusExpired || !hb.Last.IsZero() {
		t.Fatalf("a fresh code-server answered %+v, want expired with no heartbeat", hb)
	}
	sw := sweep.New(sweep.Deps{Sessions: f.svc, Store: f.store, Now: clock.Now, Prober: sweep.ProberFunc(f.heartbeat)},
		sweep.Options{ReconcileEvery: -1})
	sweepAt := func(at time.Time) *sweep.Report {
		t.Helper()
		clock.Set(at)
		r, err := sw.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	for round, woke := range []bool{false, true} {
		if woke {
			clock.Add(10 * time.Minute)
			if _, err := f.svc.Wake(ctx, s.ID); err != nil {
				t.Fatal(err)
			}
			f.waitState(s.ID, session.StateRunning)
			if hb, err := f.heartbeat(ctx, s.ID); err != nil || !hb.Last.IsZero() {
				t.Fatalf("the woken code-server answered %+v, %v", hb, err)
			}
		}
		got, err := f.svc.Get(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		usable := got.LastActivity // when it became ready (the clock stood still since)
		if r := sweepAt(usable.Add(timeout.D() - time.Second)); r.Slept != 0 {
			t.Fatalf("round %d: slept a second before its idle timeout: %+v", round, r)
		}
		if got, _ := f.svc.Get(ctx, s.ID); got.State != session.StateRunning {
			t.Fatalf("round %d: %s a second before its idle timeout", round, got.State)
		}
		r := sweepAt(usable.Add(timeout.D() + time.Second))
		if r.Slept != 1 {
			t.Fatalf("round %d: idle for longer than its timeout and not slept: %+v", round, r)
		}
		f.waitNoPods(s.ID)
	}
}
