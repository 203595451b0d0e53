package events

import (
	"math"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const (
	creating = session.StateCreating
	running  = session.StateRunning
	sleeping = session.StateSleeping
	waking   = session.StateWaking
	deleting = session.StateDeleting
	deleted  = session.StateDeleted
	failed   = session.StateFailed
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestClip(t *testing.T) {
	h := time.Hour
	for _, tc := range []struct {
		name                 string
		start, end, from, to time.Time
		want                 time.Duration
	}{
		{"inside", at(1 * h), at(2 * h), at(0), at(3 * h), h},
		{"straddles from", at(0), at(2 * h), at(90 * time.Minute), at(3 * h), 30 * time.Minute},
		{"straddles to", at(1 * h), at(4 * h), at(0), at(3 * h), 2 * h},
		{"covers the window", at(-h), at(5 * h), at(1 * h), at(3 * h), 2 * h},
		{"before the window", at(0), at(1 * h), at(2 * h), at(3 * h), 0},
		{"ends where the window starts", at(0), at(2 * h), at(2 * h), at(3 * h), 0},
		{"starts where the window ends", at(3 * h), at(4 * h), at(2 * h), at(3 * h), 0},
		{"after the window", at(4 * h), at(5 * h), at(2 * h), at(3 * h), 0},
		{"empty span", at(h), at(h), at(0), at(3 * h), 0},
		{"reversed span", at(2 * h), at(h), at(0), at(3 * h), 0},
		{"open from", at(-10 * h), at(h), time.Time{}, at(3 * h), 11 * h},
		{"open to", at(h), at(100 * h), at(0), time.Time{}, 99 * h},
		{"open both", at(h), at(2 * h), time.Time{}, time.Time{}, h},
		{"sub-second", at(h), at(h + 1500*time.Millisecond), at(h + 500*time.Millisecond), at(2 * h), time.Second},
	} {
		if got := Clip(tc.start, tc.end, tc.from, tc.to); got != tc.want {
			t.Errorf("%s: Clip = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCategories(t *testing.T) {
	want := map[session.State]Category{
		creating: Running, running: Running, waking: Running,
		sleeping: Sleeping, deleting: Stopped, failed: Stopped, deleted: NotBilled, "": NotBilled, "bogus": NotBilled,
	}
	for s, c := range want {
		if got := CategoryOf(s); got != c {
			t.Errorf("CategoryOf(%q) = %v, want %v", s, got, c)
		}
	}
	for _, s := range session.States {
		if _, ok := want[s]; !ok {
			t.Errorf("state %q has no expected category in this test", s)
		}
	}
}

func TestSpans(t *testing.T) {
	h := time.Hour
	// Unsorted input; two points at the same time ordered by seq; a deleted end.
	pts := []Point{
		{At: at(2 * h), Seq: 3, State: sleeping, Storage: "5Gi"},
		{At: at(0), Seq: 1, State: creating, Storage: "5Gi"},
		{At: at(time.Minute), Seq: 2, State: running, Storage: "5Gi"},
		{At: at(5 * h), Seq: 5, State: running, Storage: "10Gi"},
		{At: at(5 * h), Seq: 4, State: waking, Storage: "5Gi"},
		{At: at(7 * h), Seq: 6, State: deleted},
	}
	got := Spans(pts, at(24*h))
	want := []Span{
		{creating, at(0), at(time.Minute), "5Gi", ""},
		{running, at(time.Minute), at(2 * h), "5Gi", ""},
		{sleeping, at(2 * h), at(5 * h), "5Gi", ""},
		// waking at 5h (seq 4) lasts zero time: running (seq 5) follows at once
		{running, at(5 * h), at(7 * h), "10Gi", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("Spans = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("span %d = %+v, want %+v", i, got[i], want[i])
		}
	}

	// The last state stays open until end; a point at or after end has no span.
	open := Spans([]Point{{At: at(0), State: running}, {At: at(3 * h), State: sleeping}}, at(2*h))
	if len(open) != 1 || open[0].End != at(2*h) || open[0].State != running {
		t.Errorf("open timeline cut at end: %+v", open)
	}
	if s := Spans(nil, at(h)); len(s) != 0 {
		t.Errorf("no points: %+v", s)
	}
	if s := Spans([]Point{{At: at(2 * h), State: running}}, at(h)); len(s) != 0 {
		t.Errorf("a point after end: %+v", s)
	}
}

// scripted is the hand-written timeline of the issue: create at t0, ready t0+1m, sleep at
// t0+2h, wake t0+5h (ready 30 s later), sleep t0+6h, delete t0+10h, backup done t0+10h02m,
// deleted t0+10h03m. By hand: running = 1m + 1h59m + 30s + 59m30s = 3h; sleeping = 3h + 4h =
// 7h; stopped (deleting) = 3m; lifetime = 10h03m.
func scripted() []Point {
	m := time.Minute
	return []Point{
		{At: at(0), Seq: 1, State: creating, Storage: "5Gi"},
		{At: at(1 * m), Seq: 2, State: running, Storage: "5Gi"},
		{At: at(120 * m), Seq: 3, State: sleeping, Storage: "5Gi"},
		{At: at(300 * m), Seq: 4, State: waking, Storage: "5Gi"},
		{At: at(300*m + 30*time.Second), Seq: 5, State: running, Storage: "5Gi"},
		{At: at(360 * m), Seq: 6, State: sleeping, Storage: "5Gi"},
		{At: at(600 * m), Seq: 7, State: deleting, Storage: "5Gi"},
		{At: at(602 * m), Seq: 8, State: deleting, Storage: "5Gi"}, // backup_done
		{At: at(603 * m), Seq: 9, State: deleted, Storage: "5Gi"},
	}
}

func TestUsageOfScriptedTimeline(t *testing.T) {
	h, m := time.Hour, time.Minute
	spans := Spans(scripted(), at(24*h))

	u := UsageOf(spans, at(0), at(24*h))
	if u.Running != 3*h || u.Sleeping != 7*h || u.Stopped != 3*m {
		t.Fatalf("whole day: running %v sleeping %v stopped %v, want 3h 7h 3m", u.Running, u.Sleeping, u.Stopped)
	}
	u.Finish(Prices{PerRunningHour: 0.10})
	// always-on = 10.05 h × 0.10 = 1.005; actual = 3 h × 0.10 = 0.30; savings = 0.705/1.005.
	if !near(u.RunningHours, 3) || !near(u.SleepingHours, 7) || !near(u.StoppedHours, 0.05) || !near(u.LifetimeHours, 10.05) {
		t.Errorf("hours: %+v", u)
	}
	if !near(u.Cost, 0.30) || !near(u.AlwaysOnCost, 1.005) || !near(u.SavingsPercent, 70.15) {
		t.Errorf("cost %v always-on %v savings %v, want 0.30 1.005 70.15", u.Cost, u.AlwaysOnCost, u.SavingsPercent)
	}

	// A window from 1h30m to 5h15m: running 1h30m→2h (30m), sleeping 2h→5h (3h), waking
	// 5h→5h00m30s (30s), running 5h00m30s→5h15m (14m30s): running 45m, sleeping 3h.
	u = UsageOf(spans, at(90*m), at(315*m))
	if u.Running != 45*m || u.Sleeping != 3*h || u.Stopped != 0 {
		t.Errorf("window 1h30m–5h15m: running %v sleeping %v stopped %v, want 45m 3h 0", u.Running, u.Sleeping, u.Stopped)
	}
	// A window after the deletion counts nothing; one before the creation neither.
	if u := UsageOf(spans, at(11*h), at(20*h)); u.Lifetime() != 0 {
		t.Errorf("after deletion: %+v", u)
	}
	if u := UsageOf(spans, at(-5*h), at(0)); u.Lifetime() != 0 {
		t.Errorf("before creation: %+v", u)
	}
	// Storage: 5 GiB for 10h03m = 50.25 GiB-hours = 50.25/730 GB-months.
	u = UsageOf(spans, time.Time{}, time.Time{})
	if !near(u.GiBHours, 50.25) {
		t.Errorf("GiB-hours = %v, want 50.25", u.GiBHours)
	}
	u.Finish(Prices{PerRunningHour: 0.10, PerGBMonth: 0.10})
	storage := 50.25 / 730 * 0.10
	if !near(u.StorageCost, round(storage, 6)) || !near(u.Cost, round(0.30+storage, 6)) ||
		!near(u.AlwaysOnCost, round(1.005+storage, 6)) {
		t.Errorf("with storage: %+v (storage cost %v)", u, storage)
	}
	if want := round(100*(1.005-0.30)/(1.005+storage), 2); !near(u.SavingsPercent, want) {
		t.Errorf("savings with storage = %v, want %v", u.SavingsPercent, want)
	}
}

func TestFinishWithoutPrices(t *testing.T) {
	u := Usage{Running: 3 * time.Hour, Sleeping: 9 * time.Hour}
	u.Finish(Prices{})
	if u.Cost != 0 || u.AlwaysOnCost != 0 || !near(u.SavingsPercent, 75) {
		t.Errorf("no prices: %+v, want savings 75%% of the hours", u)
	}
	var z Usage
	z.Finish(Prices{PerRunningHour: 1})
	if z.SavingsPercent != 0 || z.Cost != 0 {
		t.Errorf("empty usage: %+v", z)
	}
}

func TestBuildReport(t *testing.T) {
	h, m := time.Hour, time.Minute
	timelines := []Timeline{
		{SessionID: "aaaaaaa1", UserID: "alice", CreatedAt: at(0), DeletedAt: at(603 * m), Points: scripted()},
		// alice's second session: created asleep at 12h, woken at 14h (ready 14h01m), still
		// running when the report ends at 20h: sleeping 2h, running 6h.
		{SessionID: "aaaaaaa2", UserID: "alice", CreatedAt: at(12 * h), Points: []Point{
			{At: at(12 * h), Seq: 1, State: sleeping, Storage: "5Gi"},
			{At: at(14 * h), Seq: 2, State: waking, Storage: "5Gi"},
			{At: at(14*h + m), Seq: 3, State: running, Storage: "5Gi"},
		}},
		// bob's session: running from 1h to the end (19h), never slept.
		{SessionID: "bbbbbbb1", UserID: "bob", CreatedAt: at(h), Points: []Point{
			{At: at(h), Seq: 1, State: creating},
			{At: at(h + m), Seq: 2, State: running},
		}},
		// carol's session ended before the window: not in the report.
		{SessionID: "ccccccc1", UserID: "carol", CreatedAt: at(-30 * h), DeletedAt: at(-20 * h), Points: []Point{
			{At: at(-30 * h), Seq: 1, State: running},
			{At: at(-20 * h), Seq: 2, State: deleted},
		}},
	}
	rep := BuildReport(timelines, at(0), at(20*h), Prices{PerRunningHour: 0.10, Currency: "USD"})
	if len(rep.Sessions) != 3 || len(rep.Users) != 2 {
		t.Fatalf("report: %d sessions, %d users; want 3 and 2: %+v", len(rep.Sessions), len(rep.Users), rep)
	}
	want := map[string][3]time.Duration{ // running, sleeping, stopped
		"aaaaaaa1": {3 * h, 7 * h, 3 * m},
		"aaaaaaa2": {6 * h, 2 * h, 0},
		"bbbbbbb1": {19 * h, 0, 0},
	}
	for _, s := range rep.Sessions {
		w := want[s.SessionID]
		if s.Running != w[0] || s.Sleeping != w[1] || s.Stopped != w[2] {
			t.Errorf("%s: running %v sleeping %v stopped %v, want %v", s.SessionID, s.Running, s.Sleeping, s.Stopped, w)
		}
	}
	if s := rep.Sessions[1]; s.SessionID != "aaaaaaa2" || s.State != running {
		t.Errorf("second line: %s in %s, want aaaaaaa2 running", s.SessionID, s.State)
	}
	if s := rep.Sessions[0]; s.State != deleted {
		t.Errorf("aaaaaaa1 ends %s, want deleted", s.State)
	}
	alice, bob := rep.Users[0], rep.Users[1]
	// alice: running 3h + 6h = 9h; sleeping 7h + 2h = 9h; stopped 3m; lifetime 18.05h.
	if alice.UserID != "alice" || alice.Sessions != 2 || !near(alice.RunningHours, 9) || !near(alice.SleepingHours, 9) ||
		!near(alice.LifetimeHours, 18.05) || !near(alice.Cost, 0.9) || !near(alice.AlwaysOnCost, 1.805) ||
		!near(alice.SavingsPercent, round(100*(1.805-0.9)/1.805, 2)) {
		t.Errorf("alice: %+v", alice)
	}
	if bob.UserID != "bob" || !near(bob.RunningHours, 19) || !near(bob.SavingsPercent, 0) || !near(bob.Cost, 1.9) {
		t.Errorf("bob: %+v", bob)
	}
	// total: running 28h, sleeping 9h, stopped 3m, lifetime 37.05h.
	tot := rep.Total
	if tot.Running != 28*h || tot.Sleeping != 9*h || tot.Stopped != 3*m || !near(tot.Cost, 2.8) ||
		!near(tot.AlwaysOnCost, 3.705) || !near(tot.SavingsPercent, round(100*(3.705-2.8)/3.705, 2)) {
		t.Errorf("total: %+v", tot)
	}
	// Deterministic: the same input gives the same report, whatever the input order.
	rev := []Timeline{timelines[3], timelines[2], timelines[1], timelines[0]}
	again := BuildReport(rev, at(0), at(20*h), Prices{PerRunningHour: 0.10, Currency: "USD"})
	for i := range rep.Sessions {
		if rep.Sessions[i] != again.Sessions[i] {
			t.Errorf("line %d differs: %+v vs %+v", i, rep.Sessions[i], again.Sessions[i])
		}
	}
}
