package sweep_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// openTab is a Prober for a workspace with a browser tab connected: code-server beats every
// minute, so its last heartbeat is always under a minute old.
func openTab(clk *clock) sweep.Prober {
	return sweep.ProberFunc(func(context.Context, string) (sweep.Heartbeat, error) {
		return sweep.Heartbeat{Status: sweep.StatusAlive, Last: clk.Now().Add(-30 * time.Second)}, nil
	})
}

// capped is a running session with the 15m idle timeout and a connected cap of max.
func capped(id string, at time.Time, max time.Duration) *session.Session {
	s := running(id, at)
	s.IdleConnectedMax = session.Duration(max)
	return s
}

// sweepEveryMinute runs a sweep each minute until until, and returns when each session was
// put to sleep (the first sweep that slept it) and the reports.
func sweepEveryMinute(t *testing.T, w *world, s *sweep.Sweeper, until time.Time) (map[string]time.Time, []*sweep.Report) {
	t.Helper()
	slept := map[string]time.Time{}
	var reps []*sweep.Report
	for w.Clock.Now().Before(until) {
		w.Clock.Add(time.Minute)
		rep, err := s.Run(context.Background())
		if err != nil || rep.Errors != 0 || rep.ProbeErrors != 0 {
			t.Fatalf("at %s: report %+v err %v", w.Clock.Now(), rep, err)
		}
		reps = append(reps, rep)
		for _, id := range w.sleptIDs() {
			if _, ok := slept[id]; !ok {
				slept[id] = w.Clock.Now()
			}
		}
	}
	return slept, reps
}

func sleptReason(t *testing.T, w *world, id string) string {
	t.Helper()
	for _, ev := range w.Recorder.Events(id) {
		if ev.Type == "slept" {
			return ev.Detail
		}
	}
	t.Fatalf("%s has no slept event", id)
	return ""
}

// A tab open with no use sleeps at its last activity + idle_connected_max, not a minute
// before, for reason connected_cap; a cap of 0 keeps today's rule (the open tab keeps it
// awake); and the open tab is probed about once per idle timeout, not every minute.
func TestRunConnectedCap(t *testing.T) {
	w := newWorld()
	t0 := w.Clock.Now()
	w.Seed(capped("acapped1", t0, 2*time.Hour), capped("anocap01", t0, 0))
	var probes int
	tab := openTab(w.Clock)
	prober := sweep.ProberFunc(func(ctx context.Context, id string) (sweep.Heartbeat, error) {
		if id == "acapped1" {
			probes++
		}
		return tab.Probe(ctx, id)
	})
	s := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: prober, Now: w.Clock.Now, Logger: quiet()}, sweep.Options{})
	slept, reps := sweepEveryMinute(t, w, s, t0.Add(10*time.Hour))
	if at, ok := slept["acapped1"]; !ok || !at.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("the capped workspace slept at %v (ok %v), want at +2h", at.Sub(t0), ok)
	}
	if reason := sleptReason(t, w, "acapped1"); reason != string(session.SleepConnectedCap) {
		t.Fatalf("slept for %q", reason)
	}
	if _, ok := slept["anocap01"]; ok {
		t.Fatal("cap 0: an open tab must keep the workspace awake, as before")
	}
	if probes > 10 {
		t.Fatalf("the open tab was probed %d times in 2h: the deadline was not deferred", probes)
	}
	var total, connected int
	for _, r := range reps {
		total += r.Slept
		connected += r.SleptConnected
	}
	if total != 1 || connected != 1 {
		t.Fatalf("reports counted %d slept, %d connected; want 1 and 1", total, connected)
	}
	if s, _ := w.Store.Get(context.Background(), "anocap01"); s.State != session.StateRunning || !s.LastActivity.Equal(t0) {
		t.Fatalf("cap 0: %s, last activity moved to %v", s.State, s.LastActivity)
	}
}

// The branches of the rule, one sweep each.
func TestRunIdleRule(t *testing.T) {
	const cap = 2 * time.Hour
	for _, c := range []struct {
		name     string
		cap      time.Duration
		since    time.Duration // since the last activity, at the sweep
		hbAgo    time.Duration // the heartbeat's age at the sweep
		reason   session.SleepReason
		deadline time.Duration // kept: the deferred idle deadline, from the last activity
	}{
		{"no tab: idle", cap, 20 * time.Minute, 20 * time.Minute, session.SleepIdle, 0},
		{"tab closed 15m ago: idle", cap, time.Hour, 15 * time.Minute, session.SleepIdle, 0},
		{"tab closed, past the cap: idle", cap, 3 * time.Hour, time.Hour, session.SleepIdle, 0},
		{"tab open, under the cap: kept until heartbeat+idle", cap, 20 * time.Minute, 30 * time.Second, "", 20*time.Minute - 30*time.Second + 15*time.Minute},
		{"tab open, near the cap: kept until the cap", cap, 110 * time.Minute, 30 * time.Second, "", cap},
		{"tab open, at the cap: connected_cap", cap, cap, 30 * time.Second, session.SleepConnectedCap, 0},
		{"tab open, cap 0: kept", 0, 10 * time.Hour, 30 * time.Second, "", 10*time.Hour - 30*time.Second + 15*time.Minute},
		{"no tab, cap 0: idle", 0, 10 * time.Hour, 10 * time.Hour, session.SleepIdle, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld()
			t0 := w.Clock.Now()
			w.Seed(capped("arule001", t0, c.cap))
			w.Clock.Add(c.since)
			hb := &heartbeats{answer: map[string]any{"arule001": w.Clock.Now().Add(-c.hbAgo)}}
			rep, err := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: hb, Now: w.Clock.Now, Logger: quiet()}, sweep.Options{}).Run(context.Background())
			if err != nil || rep.Probed != 1 {
				t.Fatalf("report %+v err %v", rep, err)
			}
			if c.reason == "" {
				d, _ := w.Store.IdleDeadline("arule001")
				if rep.KeptActive != 1 || rep.Slept != 0 || !d.Equal(t0.Add(c.deadline).Add(-time.Millisecond)) {
					t.Fatalf("kept: report %+v, deadline +%s, want +%s", rep, d.Sub(t0), c.deadline)
				}
				return
			}
			wantConnected := 0
			if c.reason == session.SleepConnectedCap {
				wantConnected = 1
			}
			if rep.Slept != 1 || rep.SleptConnected != wantConnected || sleptReason(t, w, "arule001") != string(c.reason) {
				t.Fatalf("report %+v, reason %q, want %q", rep, sleptReason(t, w, "arule001"), c.reason)
			}
			if got := w.Store.Touches("arule001"); len(got) > 0 {
				t.Fatalf("the heartbeat was recorded as activity: %v", got)
			}
		})
	}
}

// Real use after the cap's deadline, before a sweep looks or while it probes, keeps the
// workspace, and the cap counts again from that use.
func TestRunActivityAfterTheCapKeepsIt(t *testing.T) {
	w := newWorld()
	t0 := w.Clock.Now()
	w.Seed(capped("alate001", t0, 2*time.Hour), capped("aprobe01", t0, 2*time.Hour))
	ctx := context.Background()
	tab := openTab(w.Clock)
	var touchDuringProbe bool
	prober := sweep.ProberFunc(func(ctx context.Context, id string) (sweep.Heartbeat, error) {
		if id == "aprobe01" && touchDuringProbe {
			touchDuringProbe = false
			_ = w.Store.Touch(ctx, id, w.Clock.Now()) // the extension reports use meanwhile
		}
		return tab.Probe(ctx, id)
	})
	s := sweep.New(sweep.Deps{Sessions: w.svc, Store: w.Store, Prober: prober, Now: w.Clock.Now, Logger: quiet()}, sweep.Options{})
	// no sweep ran at the deadline (the scheduler was late); use landed 30s after it
	w.Clock.Add(2*time.Hour + 30*time.Second)
	_ = w.Store.Touch(ctx, "alate001", w.Clock.Now())
	touchDuringProbe = true
	w.Clock.Add(30 * time.Second)
	rep, err := s.Run(ctx)
	if err != nil || rep.Slept != 0 || len(w.sleptIDs()) != 0 {
		t.Fatalf("report %+v err %v, slept %v", rep, err, w.sleptIDs())
	}
	// both now run to their new deadline: last use + 2h
	late := t0.Add(2*time.Hour + 30*time.Second)
	probed := t0.Add(2*time.Hour + time.Minute)
	slept, _ := sweepEveryMinute(t, w, s, t0.Add(5*time.Hour))
	if !slept["alate001"].Equal(late.Add(2*time.Hour).Add(30*time.Second)) || !slept["aprobe01"].Equal(probed.Add(2*time.Hour)) {
		t.Fatalf("slept at %v / %v, want the first sweep at or after %v / %v",
			slept["alate001"].Sub(t0), slept["aprobe01"].Sub(t0), late.Add(2*time.Hour).Sub(t0), probed.Add(2*time.Hour).Sub(t0))
	}
	if got := w.sleptIDs(); !slices.Equal(got, []string{"alate001", "aprobe01"}) {
		t.Fatalf("slept %v", got)
	}
}
