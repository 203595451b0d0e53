package session_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func dur(d time.Duration) *session.Duration { v := session.Duration(d); return &v }

// capRig is a rig whose deployment caps an open tab's time without use at 2h.
func capRig(t *testing.T) *rig {
	t.Helper()
	r := newRig(t)
	r.svc = r.Service(session.Options{Domain: "ws.test", IdleConnectedMax: session.DefaultIdleConnectedMax})
	return r
}

func TestCreateIdleConnectedMax(t *testing.T) {
	r := capRig(t)
	for _, c := range []struct {
		name      string
		idle, max *session.Duration
		want      time.Duration
	}{
		{"the deployment's default", nil, nil, 2 * time.Hour},
		{"asked for", nil, dur(4 * time.Hour), 4 * time.Hour},
		{"no cap", nil, dur(0), 0},
		{"raised to a longer idle timeout", dur(3 * time.Hour), nil, 3 * time.Hour},
		{"equal to the idle timeout", dur(30 * time.Minute), dur(30 * time.Minute), 30 * time.Minute},
		{"idle timeout 0 leaves the default", dur(0), nil, 2 * time.Hour},
	} {
		s := r.create(session.CreateRequest{IdleTimeout: c.idle, IdleConnectedMax: c.max})
		if got := r.get(s.ID).IdleConnectedMax.D(); got != c.want {
			t.Errorf("%s: idle_connected_max %s, want %s", c.name, got, c.want)
		}
	}
	// the service without a deployment cap (Options' zero value) gives none
	if s := must(t)(newRig(t).svc.Create(r.ctx, session.CreateRequest{UserID: "u"})); s.IdleConnectedMax != 0 {
		t.Fatalf("no deployment cap: %s", s.IdleConnectedMax)
	}
}

func TestIdleConnectedMaxRefused(t *testing.T) {
	r := capRig(t)
	checkField := func(name string, err error) {
		t.Helper()
		var e *session.Error
		if !errors.As(err, &e) || e.Kind != session.KindInvalid || e.Field != "idle_connected_max" {
			t.Fatalf("%s: %v, want an invalid idle_connected_max", name, err)
		}
	}
	for _, c := range []struct {
		name      string
		idle, max *session.Duration
	}{
		{"negative", nil, dur(-time.Minute)},
		{"under a minute", nil, dur(30 * time.Second)},
		{"shorter than the idle timeout given", dur(time.Hour), dur(30 * time.Minute)},
		{"shorter than the default idle timeout", nil, dur(10 * time.Minute)},
	} {
		_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "u", IdleTimeout: c.idle, IdleConnectedMax: c.max})
		checkField("create "+c.name, err)
	}
	s := r.in(session.StateRunning)
	_, err := r.svc.Update(r.ctx, s.ID, session.UpdateRequest{IdleConnectedMax: dur(5 * time.Minute)})
	checkField("update below the idle timeout", err)
	// raising the idle timeout past the session's cap names the cap: raise it too, or 0
	_, err = r.svc.Update(r.ctx, s.ID, session.UpdateRequest{IdleTimeout: dur(3 * time.Hour)})
	checkField("update idle_timeout past the cap", err)
	if !strings.Contains(err.Error(), "at least idle_timeout (3h0m0s)") {
		t.Fatalf("message %q", err)
	}
	got := must(t)(r.svc.Update(r.ctx, s.ID, session.UpdateRequest{IdleTimeout: dur(3 * time.Hour), IdleConnectedMax: dur(4 * time.Hour)}))
	if got.IdleTimeout.D() != 3*time.Hour || got.IdleConnectedMax.D() != 4*time.Hour {
		t.Fatalf("update both: %s %s", got.IdleTimeout, got.IdleConnectedMax)
	}
	if got := must(t)(r.svc.Update(r.ctx, s.ID, session.UpdateRequest{IdleConnectedMax: dur(0)})); got.IdleConnectedMax != 0 {
		t.Fatalf("update to no cap: %s", got.IdleConnectedMax)
	}
}

func TestSleepIfIdleConnectedCap(t *testing.T) {
	r := capRig(t)
	s := r.in(session.StateRunning)
	now := r.Clock.Now()
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{20 * time.Minute, false}, {2*time.Hour - time.Minute, false}, {2 * time.Hour, true}} {
		slept, err := r.svc.SleepIfIdle(r.ctx, s.ID, now.Add(c.at), session.SleepConnectedCap)
		if err != nil || slept != c.want {
			t.Fatalf("at +%s: slept %v %v, want %v", c.at, slept, err, c.want)
		}
	}
	evs := r.Recorder.Events(s.ID)
	if last := evs[len(evs)-1]; last.Type != "slept" || last.Detail != string(session.SleepConnectedCap) || last.Actor != "api" {
		t.Fatalf("last event %+v", last)
	}
	// without a cap, the connected rule never sleeps
	r2 := newRig(t)
	s3 := r2.in(session.StateRunning)
	if slept, err := r2.svc.SleepIfIdle(r2.ctx, s3.ID, r2.Clock.Now().Add(48*time.Hour), session.SleepConnectedCap); slept || err != nil {
		t.Fatalf("slept for the cap without one: %v %v", slept, err)
	}
	// the idle reason is recorded too; an unknown one is refused
	if slept, _ := r2.svc.SleepIfIdle(r2.ctx, s3.ID, r2.Clock.Now().Add(time.Hour), session.SleepIdle); !slept {
		t.Fatal("idle did not sleep")
	}
	evs = r2.Recorder.Events(s3.ID)
	if last := evs[len(evs)-1]; last.Detail != "idle" {
		t.Fatalf("idle sleep detail %q", last.Detail)
	}
	if _, err := r2.svc.SleepIfIdle(r2.ctx, s3.ID, r2.Clock.Now(), "bored"); err == nil {
		t.Fatal("an unknown reason was taken")
	}
}

// The cluster does not record the cap: an adopted session gets the deployment's (raised to its
// idle timeout), a rebuilt one keeps what its durable record says (0 for a record written
// before the cap: today's rule).
func TestRebuildIdleConnectedMax(t *testing.T) {
	r := capRig(t)
	o := &session.Observed{ID: "ab000021", UserID: "k8s@x", Kinds: slices.Clone(session.WorkspaceKinds), Complete: true,
		DesiredReplicas: 1, Ready: true, Created: r.Clock.Now().Add(-time.Hour), IdleTimeout: 3 * time.Hour}
	r.Cluster.Add(o)
	s, err := r.svc.Rebuild(r.ctx, session.Rebuilding{Observed: o})
	if err != nil || s.IdleConnectedMax.D() != 3*time.Hour {
		t.Fatalf("adopted: %v, cap %s", err, s.IdleConnectedMax)
	}
	for _, want := range []time.Duration{0, 5 * time.Hour} {
		o := &session.Observed{ID: "ab00002" + string(rune('2'+want/time.Hour)), UserID: "k8s@x", Kinds: slices.Clone(session.WorkspaceKinds),
			Complete: true, DesiredReplicas: 1, Ready: true, Created: r.Clock.Now().Add(-time.Hour)}
		r.Cluster.Add(o)
		d := &session.Session{ID: o.ID, UserID: "fs@x", State: session.StateRunning, IdleTimeout: session.Duration(15 * time.Minute),
			IdleConnectedMax: session.Duration(want), CreatedAt: o.Created}
		s, err := r.svc.Rebuild(r.ctx, session.Rebuilding{Observed: o, Durable: d})
		if err != nil || s.IdleConnectedMax.D() != want {
			t.Fatalf("rebuilt with %s: %v, cap %s", want, err, s.IdleConnectedMax)
		}
	}
}
