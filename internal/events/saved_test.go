package events

import (
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// capped is a timeline with both tiers: created at t0, ready at 1m; the sweep sleeps it for
// the cap at 2h (a tab open); woken at 5h; the sweep sleeps it as idle at 6h (no tab); woken
// at 8h; slept for the cap again at 10h; updated while asleep at 11h; deleted at 12h. By
// hand: saved = 3h (2h→5h) + 2h (10h→12h, across the update) = 5h in two cap sleeps; the idle
// sleep (6h→8h) saves nothing over the heartbeat rule.
func capped() []Point {
	h := time.Hour
	return []Point{
		{At: at(0), Seq: 1, State: creating, Storage: "5Gi"},
		{At: at(time.Minute), Seq: 2, State: running, Storage: "5Gi"},
		{At: at(2 * h), Seq: 3, State: sleeping, Storage: "5Gi", SleptBy: session.SleepConnectedCap},
		{At: at(5 * h), Seq: 4, State: running, Storage: "5Gi"},
		{At: at(6 * h), Seq: 5, State: sleeping, Storage: "5Gi", SleptBy: session.SleepIdle},
		{At: at(8 * h), Seq: 6, State: running, Storage: "5Gi"},
		{At: at(10 * h), Seq: 7, State: sleeping, Storage: "5Gi", SleptBy: session.SleepConnectedCap},
		{At: at(11 * h), Seq: 8, State: sleeping, Storage: "10Gi"}, // updated while asleep
		{At: at(12 * h), Seq: 9, State: deleting, Storage: "10Gi"},
	}
}

func TestSavedByTheConnectedCap(t *testing.T) {
	h := time.Hour
	for _, c := range []struct {
		name     string
		from, to time.Time
		saved    time.Duration
		sleeps   int
	}{
		{"the whole day", at(0), at(24 * h), 5 * h, 2},
		{"cut by the window's end", at(0), at(3 * h), h, 1},
		{"asleep at the window's start: its time counts, its sleep does not", at(4 * h), at(24 * h), 3 * h, 1},
		{"the idle sleep alone", at(6 * h), at(8 * h), 0, 0},
	} {
		rep := BuildReport([]Timeline{{SessionID: "ab000001", UserID: "ada", CreatedAt: at(0), Points: capped()}}, c.from, c.to, Prices{})
		if len(rep.Sessions) != 1 {
			t.Fatalf("%s: %d sessions", c.name, len(rep.Sessions))
		}
		for where, u := range map[string]Usage{"session": rep.Sessions[0].Usage, "user": rep.Users[0].Usage, "total": rep.Total} {
			if !near(u.SavedHours, c.saved.Hours()) || u.SleptByCap != c.sleeps {
				t.Errorf("%s, %s: saved %vh in %d sleeps, want %vh in %d", c.name, where, u.SavedHours, u.SleptByCap, c.saved.Hours(), c.sleeps)
			}
			if u.SavedHours > u.SleepingHours {
				t.Errorf("%s, %s: saved %vh is more than the %vh asleep", c.name, where, u.SavedHours, u.SleepingHours)
			}
		}
	}
	// a timeline without cap sleeps (a sleep asked for, an idle one) saves nothing
	rep := BuildReport([]Timeline{{SessionID: "ab000002", UserID: "bob", CreatedAt: at(0), Points: scripted()}}, at(0), at(24*h), Prices{})
	if rep.Total.SavedHours != 0 || rep.Total.SleptByCap != 0 {
		t.Errorf("no cap sleeps: %+v", rep.Total)
	}
	// two users: each their own, the total both
	rep = BuildReport([]Timeline{
		{SessionID: "ab000001", UserID: "ada", CreatedAt: at(0), Points: capped()},
		{SessionID: "ab000003", UserID: "cy", CreatedAt: at(0), Points: capped()},
		{SessionID: "ab000002", UserID: "bob", CreatedAt: at(0), Points: scripted()},
	}, at(0), at(24*h), Prices{})
	if !near(rep.Total.SavedHours, 10) || rep.Total.SleptByCap != 4 || len(rep.Users) != 3 || rep.Users[1].SavedHours != 0 {
		t.Errorf("three users: total %+v, users %+v", rep.Total, rep.Users)
	}
}

func TestSleptByReadsOnlyTheSweepsSleeps(t *testing.T) {
	for _, c := range []struct {
		e    EventRecord
		want session.SleepReason
	}{
		{EventRecord{Type: "slept", Detail: "connected_cap"}, session.SleepConnectedCap},
		{EventRecord{Type: "slept", Detail: "idle"}, session.SleepIdle},
		{EventRecord{Type: "slept"}, ""},
		{EventRecord{Type: "failed", Detail: "connected_cap"}, ""},
		{EventRecord{Type: "slept", Detail: "something else"}, ""},
	} {
		if got := sleptBy(c.e); got != c.want {
			t.Errorf("sleptBy(%+v) = %q, want %q", c.e, got, c.want)
		}
	}
}
