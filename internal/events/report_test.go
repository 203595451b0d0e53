package events

import (
	"context"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// The usage report of a scripted timeline, recorded through Firestore with a controlled
// clock, equals the hours computed by hand.
func TestUsageReportOfAScriptedTimeline(t *testing.T) {
	ctx := context.Background()
	h, m := time.Hour, time.Minute
	c := testenv.NewClock(t0)
	rdb, prefix := env.RedisFor(t)
	r := New(firestoreClient(t), Options{Redis: rdb, Prefix: prefix, Now: c.Now, PricePerRunningHour: 0.10, StoragePricePerGBMonth: 0.04})
	sweep := session.WithActor(ctx, "sweep")

	// alice's first session, as in the issue: create t0, ready t0+1m, sleep t0+2h, wake t0+5h
	// (ready 30 s later), sleep t0+6h, delete t0+10h, backup done t0+10h02m, deleted t0+10h03m.
	a1 := testSession("al1ce001", "alice", session.StateCreating, t0)
	step(t, ctx, r, a1, "created", session.StateCreating, t0, "")
	step(t, ctx, r, a1, "ready", session.StateRunning, at(m), "")
	step(t, sweep, r, a1, "slept", session.StateSleeping, at(2*h), "")
	step(t, ctx, r, a1, "wake_started", session.StateWaking, at(5*h), "")
	step(t, ctx, r, a1, "woke", session.StateRunning, at(5*h+30*time.Second), "")
	step(t, sweep, r, a1, "slept", session.StateSleeping, at(6*h), "")
	step(t, ctx, r, a1, "updated", session.StateSleeping, at(7*h), "") // no change of state
	step(t, ctx, r, a1, "delete_started", session.StateDeleting, at(10*h), "")
	step(t, ctx, r, a1, "backup_done", session.StateDeleting, at(10*h+2*m), "pvc://b/al1ce001.zip")
	step(t, ctx, r, a1, "deleted", session.StateDeleted, at(10*h+3*m), "")

	// alice's second session: created asleep at 12h, woken at 14h (ready 14h01m), running on.
	a2 := testSession("al1ce002", "alice", session.StateSleeping, at(12*h))
	step(t, ctx, r, a2, "created", session.StateSleeping, at(12*h), "")
	step(t, ctx, r, a2, "wake_started", session.StateWaking, at(14*h), "")
	step(t, ctx, r, a2, "woke", session.StateRunning, at(14*h+m), "")

	// bob's session: created at 1h, ready 1h01m, its backup failed at 8h after a delete at 7h.
	b1 := testSession("b0b00001", "bob", session.StateCreating, at(h))
	step(t, ctx, r, b1, "created", session.StateCreating, at(h), "")
	step(t, ctx, r, b1, "ready", session.StateRunning, at(h+m), "")
	step(t, ctx, r, b1, "delete_started", session.StateDeleting, at(7*h), "")
	step(t, ctx, r, b1, "backup_failed", session.StateFailed, at(8*h), "zip: I/O error")

	// carol's session ended the day before: outside every window below.
	c1 := testSession("ca401001", "carol", session.StateRunning, at(-30*h))
	step(t, ctx, r, c1, "created", session.StateRunning, at(-30*h), "")
	step(t, ctx, r, c1, "deleted", session.StateDeleted, at(-20*h), "")

	c.Set(at(20 * h)) // "now": the report of an open window ends here
	rep, err := r.Usage(ctx, UsageQuery{From: t0, To: at(48 * h)})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.To.Equal(at(20*h)) || !rep.GeneratedAt.Equal(at(20*h)) || rep.PendingEvents != 0 {
		t.Errorf("window end %v generated %v pending %d; want now (t0+20h) and 0", rep.To, rep.GeneratedAt, rep.PendingEvents)
	}
	// By hand, within [t0, t0+20h):
	//   al1ce001 running 3h, sleeping 7h, stopped 3m (deleting)          lifetime 10.05h
	//   al1ce002 running 6h (14h→20h), sleeping 2h (12h→14h)            lifetime 8h
	//   b0b00001 running 6h (1h→7h), stopped 1h deleting + 12h failed   lifetime 19h
	want := map[string][3]time.Duration{
		"al1ce001": {3 * h, 7 * h, 3 * m},
		"al1ce002": {6 * h, 2 * h, 0},
		"b0b00001": {6 * h, 0, 13 * h},
	}
	if len(rep.Sessions) != len(want) {
		t.Fatalf("sessions: %+v", rep.Sessions)
	}
	for _, s := range rep.Sessions {
		w, ok := want[s.SessionID]
		if !ok || s.Running != w[0] || s.Sleeping != w[1] || s.Stopped != w[2] {
			t.Errorf("%s: running %v sleeping %v stopped %v, want %v", s.SessionID, s.Running, s.Sleeping, s.Stopped, w)
		}
	}
	states := map[string]session.State{}
	for _, s := range rep.Sessions {
		states[s.SessionID] = s.State
	}
	if states["al1ce001"] != session.StateDeleted || states["al1ce002"] != session.StateRunning || states["b0b00001"] != session.StateFailed {
		t.Errorf("states at the end of the window: %v", states)
	}
	// Totals by hand: running 15h, sleeping 9h, stopped 13h03m = 13.05h, lifetime 37.05h.
	// Storage: 5 GiB × 37.05 h = 185.25 GiB-hours = 185.25/730 GB-months × 0.04.
	// cost = 15 × 0.10 + storage; always-on = 37.05 × 0.10 + storage.
	tot := rep.Total
	storage := 185.25 / 730 * 0.04
	if tot.Running != 15*h || tot.Sleeping != 9*h || tot.Stopped != 13*h+3*m ||
		!near(tot.LifetimeHours, 37.05) || !near(tot.GiBHours, 185.25) ||
		!near(tot.Cost, round(1.5+storage, 6)) || !near(tot.AlwaysOnCost, round(3.705+storage, 6)) ||
		!near(tot.SavingsPercent, round(100*(3.705-1.5)/(3.705+storage), 2)) {
		t.Errorf("total: %+v", tot)
	}
	if len(rep.Users) != 2 || rep.Users[0].UserID != "alice" || rep.Users[0].Sessions != 2 ||
		rep.Users[0].Running != 9*h || rep.Users[0].Sleeping != 9*h || rep.Users[1].UserID != "bob" || rep.Users[1].Stopped != 13*h {
		t.Errorf("users: %+v", rep.Users)
	}
	t.Logf("total: running %.2fh sleeping %.2fh stopped %.2fh cost %.4f always-on %.4f savings %.2f%%",
		tot.RunningHours, tot.SleepingHours, tot.StoppedHours, tot.Cost, tot.AlwaysOnCost, tot.SavingsPercent)

	// One user, one narrower window [1h30m, 5h15m): al1ce001 running 45m, sleeping 3h
	// (al1ce002 did not exist yet).
	rep, err = r.Usage(ctx, UsageQuery{UserID: "alice", From: at(90 * m), To: at(315 * m)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Sessions) != 1 || rep.Sessions[0].SessionID != "al1ce001" || rep.Sessions[0].Running != 45*m ||
		rep.Sessions[0].Sleeping != 3*h || len(rep.Users) != 1 || rep.Total.Running != 45*m {
		t.Errorf("alice 1h30m–5h15m: %+v", rep)
	}
	// The day before: only carol, running 10h.
	rep, err = r.Usage(ctx, UsageQuery{From: at(-48 * h), To: t0})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Sessions) != 1 || rep.Sessions[0].UserID != "carol" || rep.Total.Running != 10*h || rep.Total.SavingsPercent != 0 {
		t.Errorf("the day before: %+v", rep)
	}
	// The events read for a window are those in it and the last one before it: for
	// al1ce001 in [5h15m, 6h30m), woke (5h00m30s) and slept (6h).
	evs, err := r.eventsIn(ctx, a1.ID, at(315*m), at(390*m))
	if err != nil || len(evs) != 2 || evs[0].Type != "woke" || evs[1].Type != "slept" {
		t.Errorf("events read for [5h15m, 6h30m): %+v, %v; want woke and slept", evs, err)
	}
	// A window is required, and bounded; a bad one is refused naming its field.
	for _, tc := range []struct {
		q     UsageQuery
		field string
	}{
		{UsageQuery{}, "from"},
		{UsageQuery{UserID: "alice"}, "from"},
		{UsageQuery{From: at(2 * h), To: at(h)}, "from"},
		{UsageQuery{From: at(-MaxUsageWindow - time.Second)}, "from"}, // to is now (t0+20h)
		{UsageQuery{From: at(-MaxUsageWindow), To: at(time.Second)}, "to"},
	} {
		if _, err := r.Usage(ctx, tc.q); session.FieldOf(err) != tc.field {
			t.Errorf("Usage(%+v): %v, want an error naming %s", tc.q, err, tc.field)
		}
	}
	if _, err := r.Usage(ctx, UsageQuery{From: at(20*h - MaxUsageWindow)}); err != nil {
		t.Errorf("a window of exactly %v: %v", MaxUsageWindow, err)
	}
	if _, err := r.Usage(ctx, UsageQuery{UserID: " "}); session.FieldOf(err) != "user_id" {
		t.Errorf("blank user: %v", err)
	}

	live, err := r.LiveSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 2 || live[0].ID != "al1ce002" || live[1].ID != "b0b00001" {
		t.Errorf("live sessions: %+v", live)
	}
}

// The hours the connected cap saved, through Firestore: from each connected_cap sleep (the
// reason the Service records as the slept event's detail) to the next change of state or the
// window's end, per user and in total; an idle sleep and a sleep asked for save nothing. The
// durable record keeps the session's idle_connected_max.
func TestUsageReportSavedByTheConnectedCap(t *testing.T) {
	ctx := context.Background()
	h, m := time.Hour, time.Minute
	c := testenv.NewClock(t0)
	rdb, prefix := env.RedisFor(t)
	r := New(firestoreClient(t), Options{Redis: rdb, Prefix: prefix, Now: c.Now})
	sweep := session.WithActor(ctx, "sweep")

	// dana: a tab left open; slept for the cap at 2h, woken at 5h, slept as idle at 6h
	// (the tab closed), woken at 8h, slept for the cap at 10h and still asleep at 12h.
	d1 := testSession("dana0001", "dana", session.StateCreating, t0)
	d1.IdleConnectedMax = session.Duration(2 * h)
	step(t, ctx, r, d1, "created", session.StateCreating, t0, "")
	step(t, ctx, r, d1, "ready", session.StateRunning, at(m), "")
	step(t, sweep, r, d1, "slept", session.StateSleeping, at(2*h), string(session.SleepConnectedCap))
	step(t, ctx, r, d1, "wake_started", session.StateWaking, at(5*h), "")
	step(t, ctx, r, d1, "woke", session.StateRunning, at(5*h+m), "")
	step(t, sweep, r, d1, "slept", session.StateSleeping, at(6*h), string(session.SleepIdle))
	step(t, ctx, r, d1, "wake_started", session.StateWaking, at(8*h), "")
	step(t, ctx, r, d1, "woke", session.StateRunning, at(8*h+m), "")
	step(t, sweep, r, d1, "slept", session.StateSleeping, at(10*h), string(session.SleepConnectedCap))
	step(t, ctx, r, d1, "updated", session.StateSleeping, at(11*h), "") // still asleep for the cap

	// eli: put to sleep by hand at 1h (no reason): nothing saved by the cap.
	e1 := testSession("eli00001", "eli", session.StateRunning, t0)
	step(t, ctx, r, e1, "created", session.StateRunning, t0, "")
	step(t, ctx, r, e1, "slept", session.StateSleeping, at(h), "")

	c.Set(at(12 * h))
	rep, err := r.Usage(ctx, UsageQuery{From: t0})
	if err != nil {
		t.Fatal(err)
	}
	// dana: 2h→5h and 10h→12h = 5h, in 2 cap sleeps
	users := map[string]UserUsage{}
	for _, u := range rep.Users {
		users[u.UserID] = u
	}
	if u := users["dana"]; !near(u.SavedHours, 5) || u.SleptByCap != 2 || !near(u.SleepingHours, 7) {
		t.Errorf("dana: saved %vh in %d cap sleeps (asleep %vh), want 5h in 2 (asleep 7h)", u.SavedHours, u.SleptByCap, u.SleepingHours)
	}
	if u := users["eli"]; u.SavedHours != 0 || u.SleptByCap != 0 {
		t.Errorf("eli: saved %vh in %d", u.SavedHours, u.SleptByCap)
	}
	if !near(rep.Total.SavedHours, 5) || rep.Total.SleptByCap != 2 {
		t.Errorf("total: saved %vh in %d", rep.Total.SavedHours, rep.Total.SleptByCap)
	}
	// a window from 3h: the first cap sleep's time there counts, its sleep does not
	rep, err = r.Usage(ctx, UsageQuery{From: at(3 * h), To: at(12 * h)})
	if err != nil {
		t.Fatal(err)
	}
	if !near(rep.Total.SavedHours, 4) || rep.Total.SleptByCap != 1 {
		t.Errorf("from 3h: saved %vh in %d, want 4h in 1", rep.Total.SavedHours, rep.Total.SleptByCap)
	}
	rec, err := r.Get(ctx, "dana0001")
	if err != nil || rec.Session.IdleConnectedMax.D() != 2*h {
		t.Fatalf("the durable record's idle_connected_max: %v, %+v", err, rec)
	}
	if rec, err := r.Get(ctx, "eli00001"); err != nil || rec.Session.IdleConnectedMax != 0 {
		t.Fatalf("no cap: %v, %+v", err, rec)
	}
}
