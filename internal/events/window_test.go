package events

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// grid is the step of the random timelines' times, so that many events fall exactly on the
// windows' edges (multiples of it too).
const grid = 30 * time.Minute

// timelineWriter records random timelines through the real write path.
type timelineWriter struct {
	t   *testing.T
	ctx context.Context
	r   *Recorder
	rng *rand.Rand
	// late counts the events written out of order (after a later one), as a flushed queue does.
	late int
}

// record writes ev as Record does, or, when queued, as Flush writes a queued event.
func (w *timelineWriter) record(ev session.Event, queued bool) {
	w.t.Helper()
	if !queued {
		if err := w.r.Record(w.ctx, ev); err != nil {
			w.t.Fatalf("Record(%s %s at %s): %v", ev.SessionID, ev.Type, ev.At, err)
		}
		return
	}
	id, err := eventID(ev.At)
	if err != nil {
		w.t.Fatal(err)
	}
	ev.At = ev.At.UTC().Truncate(time.Microsecond)
	if ev.Actor == "" {
		ev.Actor = "api"
	}
	if ev.UserID == "" && ev.Session != nil {
		ev.UserID = ev.Session.UserID
	}
	if err := w.r.write(w.ctx, &pendingEvent{ID: id, Event: ev, QueuedAt: ev.At.Add(time.Hour)}); err != nil {
		w.t.Fatalf("writing queued %s %s at %s: %v", ev.SessionID, ev.Type, ev.At, err)
	}
	w.late++
}

// session writes one random timeline: created on the grid, then up to 14 transitions a grid
// step or two apart (some at the same time), through sleeps by idle, by the connected cap
// and on request, wakes, updates while asleep or running, volume growth, deletes and
// failures. Some events wait and are written after later ones (as a flushed queue would),
// some carry no snapshot, a few no user id either.
func (w *timelineWriter) session(id, user string) {
	rng := w.rng
	when := t0.Add(time.Duration(rng.IntN(40)-10) * grid)
	first := session.StateCreating
	if rng.IntN(5) == 0 {
		first = session.StateSleeping
	}
	s := testSession(id, user, first, when)
	var held []session.Event
	emit := func(typ string, to session.State, detail string) {
		from := s.State
		if typ == "created" {
			from = ""
		}
		s.State, s.UpdatedAt = to, when
		ev := session.Event{SessionID: id, UserID: user, Type: typ, From: from, To: to, At: when, Detail: detail, Session: s.Clone()}
		if typ == "slept" && detail != "" {
			ev.Actor = "sweep"
		}
		if typ != "created" && rng.IntN(10) == 0 {
			ev.Session = nil
			if rng.IntN(4) == 0 {
				ev.UserID = ""
			}
		}
		if typ != "created" && rng.IntN(8) == 0 {
			held = append(held, ev) // written later, out of order
			return
		}
		w.record(ev, false)
		if len(held) > 0 && rng.IntN(2) == 0 {
			for _, h := range held {
				w.record(h, true)
			}
			held = nil
		}
	}
	emit("created", first, "")
	for range 3 + rng.IntN(12) {
		when = when.Add([]time.Duration{0, grid, grid, 2 * grid, 3 * grid, 5 * grid}[rng.IntN(6)])
		switch s.State {
		case session.StateCreating:
			if rng.IntN(8) == 0 {
				emit("failed", session.StateFailed, "image pull")
			} else {
				emit("ready", session.StateRunning, "")
			}
		case session.StateRunning:
			switch rng.IntN(7) {
			case 0:
				emit("slept", session.StateSleeping, string(session.SleepIdle))
			case 1:
				emit("slept", session.StateSleeping, string(session.SleepConnectedCap))
			case 2:
				emit("slept", session.StateSleeping, "")
			case 3:
				s.Storage = []string{"5Gi", "10Gi", "20Gi"}[rng.IntN(3)]
				emit("updated", session.StateRunning, "")
			case 4:
				emit("delete_started", session.StateDeleting, "")
			default:
				emit("slept", session.StateSleeping, string(session.SleepConnectedCap))
			}
		case session.StateSleeping:
			switch rng.IntN(4) {
			case 0, 1:
				emit("wake_started", session.StateWaking, "")
			case 2:
				if rng.IntN(2) == 0 {
					s.Storage = []string{"5Gi", "10Gi", "20Gi"}[rng.IntN(3)]
				}
				emit("updated", session.StateSleeping, "")
			default:
				emit("delete_started", session.StateDeleting, "")
			}
		case session.StateWaking:
			emit("woke", session.StateRunning, "")
		case session.StateDeleting:
			switch rng.IntN(3) {
			case 0:
				emit("backup_done", session.StateDeleting, "pvc://b/"+id+".zip")
			case 1:
				emit("backup_failed", session.StateFailed, "zip: I/O error")
			default:
				emit("deleted", session.StateDeleted, "")
			}
		case session.StateFailed:
			if rng.IntN(2) == 0 {
				emit("delete_started", session.StateDeleting, "")
			} else {
				emit("deleted", session.StateDeleted, "")
			}
		case session.StateDeleted:
			return
		}
	}
	for _, h := range held {
		w.record(h, true)
	}
}

// window is one report's query.
type window struct {
	from, to time.Time
}

// windows are reports over the random timelines: edges on the grid (where many events are)
// and between, short and long, one open (to is now).
func windows() []window {
	return []window{
		{at(0), at(10 * time.Hour)},
		{at(3 * time.Hour), at(4 * time.Hour)},
		{at(5 * time.Hour), at(20 * time.Hour)},
		{at(7*time.Hour + 15*time.Minute), at(9*time.Hour + 45*time.Minute)},
		{at(12 * time.Hour), at(12*time.Hour + grid)},
		{at(-10 * time.Hour), at(60 * time.Hour)},
		{at(18 * time.Hour), time.Time{}},
		{at(40 * time.Hour), at(50 * time.Hour)},
	}
}

// sameReports checks, for each window and each user filter, that the report reading the
// window's events at once equals the one reading every session on its own, field for field,
// and returns how many sessions the former read on their own, and how many sessions the
// reports held, over all of them.
func sameReports(t *testing.T, ctx context.Context, r *Recorder, users []string) (alone, held int) {
	t.Helper()
	for _, w := range windows() {
		for _, user := range append([]string{""}, users...) {
			q := UsageQuery{UserID: user, From: w.from, To: w.to}
			got, n, err := r.usage(ctx, q, false)
			if err != nil {
				t.Fatalf("%+v: %v", q, err)
			}
			want, _, err := r.usage(ctx, q, true)
			if err != nil {
				t.Fatalf("%+v, by session: %v", q, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("window %s to %s, user %q: the report differs from reading every session on its own", w.from, w.to, user)
				diffReports(t, got, want)
			}
			alone += n
			held += len(want.Sessions)
		}
	}
	return alone, held
}

func diffReports(t *testing.T, got, want *UsageReport) {
	t.Helper()
	bySession := map[string]SessionUsage{}
	for _, s := range want.Sessions {
		bySession[s.SessionID] = s
	}
	seen := map[string]bool{}
	for _, s := range got.Sessions {
		seen[s.SessionID] = true
		if w, ok := bySession[s.SessionID]; !ok {
			t.Errorf("  %s: extra %+v", s.SessionID, s)
		} else if !reflect.DeepEqual(s, w) {
			t.Errorf("  %s:\n    got  %+v\n    want %+v", s.SessionID, s, w)
		}
	}
	for id, w := range bySession {
		if !seen[id] {
			t.Errorf("  %s: missing %+v", id, w)
		}
	}
	if !reflect.DeepEqual(got.Total, want.Total) {
		t.Errorf("  total:\n    got  %+v\n    want %+v", got.Total, want.Total)
	}
}

// Random timelines, recorded through the real write path (some events late, out of order, as
// a flushed queue writes them), give the same usage report, field for field, whether the
// window's events are read at once or every session on its own (the report before issue
// 16), for windows whose edges fall on events and between, with and without a user.
func TestUsageReadingTheWindowAtOnceEqualsReadingEachSession(t *testing.T) {
	ctx := context.Background()
	c := testenv.NewClock(at(100 * time.Hour))
	rdb, prefix := env.RedisFor(t)
	r := New(firestoreClient(t), Options{Redis: rdb, Prefix: prefix, Now: c.Now, PricePerRunningHour: 0.10, StoragePricePerGBMonth: 0.04})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	w := &timelineWriter{t: t, ctx: ctx, r: r, rng: rand.New(rand.NewPCG(seed, 16))}
	users := []string{"ulla", "ugo", "uma"}
	const n = 60
	for i := range n {
		w.session(fmt.Sprintf("rnd%05d", i), users[w.rng.IntN(len(users))])
	}
	alone, held := sameReports(t, ctx, r, users)
	t.Logf("%d sessions, %d events written late; over %d reports %d sessions held, %d read on their own",
		n, w.late, len(windows())*(len(users)+1), held, alone)
	if alone*2 > held {
		t.Errorf("%d sessions read on their own of %d held: the window's events are not what the report reads", alone, held)
	}
}

// Sessions written in order by one user, through Record, are reported without reading any
// session on its own, whatever the window, except those with no event in the window but some
// after it.
func TestUsageReadsNoSessionOnItsOwnWhenItsRecordsTell(t *testing.T) {
	ctx := context.Background()
	h := time.Hour
	c := testenv.NewClock(at(100 * h))
	r := New(firestoreClient(t), Options{Now: c.Now, PricePerRunningHour: 0.10})
	sweep := session.WithActor(ctx, "sweep")
	a := testSession("ord00001", "olga", session.StateCreating, at(-h))
	step(t, ctx, r, a, "created", session.StateCreating, at(-h), "")
	step(t, ctx, r, a, "ready", session.StateRunning, at(-h), "")
	step(t, sweep, r, a, "slept", session.StateSleeping, at(0), string(session.SleepConnectedCap))
	step(t, ctx, r, a, "updated", session.StateSleeping, at(h), "") // the cause is kept, not at from
	step(t, ctx, r, a, "wake_started", session.StateWaking, at(3*h), "")
	step(t, ctx, r, a, "woke", session.StateRunning, at(3*h), "")
	b := testSession("ord00002", "olga", session.StateSleeping, at(2*h))
	step(t, ctx, r, b, "created", session.StateSleeping, at(2*h), "")
	for _, w := range []window{{at(-2 * h), at(5 * h)}, {at(0), at(2 * h)}, {at(90 * time.Minute), at(4 * h)}, {at(4 * h), at(6 * h)}, {at(h), at(3 * h)}} {
		for _, user := range []string{"", "olga"} {
			q := UsageQuery{UserID: user, From: w.from, To: w.to}
			got, alone, err := r.usage(ctx, q, false)
			if err != nil {
				t.Fatal(err)
			}
			want, _, err := r.usage(ctx, q, true)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%+v: the report differs", q)
				diffReports(t, got, want)
			}
			if alone != 0 {
				t.Errorf("%+v: %d sessions read on their own, want none", q, alone)
			}
		}
	}
	// c, created before the window and running through it, has its next event after it: its
	// records do not tell its state at from, and it is read on its own.
	cs := testSession("ord00003", "olga", session.StateRunning, at(-5*h))
	step(t, ctx, r, cs, "created", session.StateRunning, at(-5*h), "")
	step(t, sweep, r, cs, "slept", session.StateSleeping, at(10*h), string(session.SleepIdle))
	q := UsageQuery{From: at(4 * h), To: at(6 * h)}
	got, alone, err := r.usage(ctx, q, false)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := r.usage(ctx, q, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || len(got.Sessions) != 3 {
		t.Errorf("%+v: the report differs or does not hold 3 sessions", q)
		diffReports(t, got, want)
	}
	if alone != 1 {
		t.Errorf("%+v: %d sessions read on their own, want 1 (ord00003)", q, alone)
	}
}

// stripReportFields removes, from every record and event under r's collection, what the
// write path keeps for the report, as the records and events written before it was kept.
func stripReportFields(t *testing.T, ctx context.Context, r *Recorder, which func(id string) bool) {
	t.Helper()
	recs, err := r.sessions().Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if !which(rec.Ref.ID) {
			continue
		}
		_, err := rec.Ref.Update(ctx, []firestore.Update{{Path: "slept_by", Value: firestore.Delete},
			{Path: "slept_since", Value: firestore.Delete}, {Path: "sleep_known", Value: firestore.Delete},
			{Path: "late_at", Value: firestore.Delete}, {Path: "one_user", Value: firestore.Delete}})
		if err != nil {
			t.Fatal(err)
		}
		evs, err := rec.Ref.Collection(EventsCollection).Documents(ctx).GetAll()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if _, err := ev.Ref.Update(ctx, []firestore.Update{{Path: "prev", Value: firestore.Delete}}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Records and events written before the write path kept the report's fields give the same
// report: such sessions are read on their own, as before; and once such a session has new
// events, those take over where they can.
func TestUsageOfRecordsWrittenBeforeTheReportFields(t *testing.T) {
	ctx := context.Background()
	c := testenv.NewClock(at(100 * time.Hour))
	r := New(firestoreClient(t), Options{Now: c.Now, PricePerRunningHour: 0.10, StoragePricePerGBMonth: 0.04})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	w := &timelineWriter{t: t, ctx: ctx, r: r, rng: rand.New(rand.NewPCG(seed, 17))}
	users := []string{"olaf", "oona"}
	const n = 24
	for i := range n {
		w.session(fmt.Sprintf("old%05d", i), users[i%2])
	}
	stripReportFields(t, ctx, r, func(string) bool { return true })
	alone, held := sameReports(t, ctx, r, users)
	t.Logf("old records: %d sessions read on their own, %d held", alone, held)
	if alone < held {
		t.Errorf("%d sessions read on their own of %d held: old records cannot tell the state at from", alone, held)
	}

	// New events on the old records: the old and the new side by side.
	for i := range n {
		id := fmt.Sprintf("old%05d", i)
		rec, err := r.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Session.State == session.StateDeleted {
			continue
		}
		s := rec.Session
		step(t, ctx, r, s, "updated", s.State, at(55*time.Hour+time.Duration(i)*time.Minute), "")
		step(t, session.WithActor(ctx, "sweep"), r, s, "slept", session.StateSleeping, at(56*time.Hour+time.Duration(i)*time.Minute), string(session.SleepIdle))
	}
	sameReports(t, ctx, r, users)
	q := UsageQuery{From: at(57 * time.Hour), To: at(58 * time.Hour)}
	if _, alone, err := r.usage(ctx, q, false); err != nil || alone != 0 {
		t.Errorf("after new events: %d sessions read on their own, %v; want none", alone, err)
	}
}
