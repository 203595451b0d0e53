package events

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// Every transition leaves the record and its event in step: the record holds the latest
// session fields and the last event, the timeline holds every event with its actor.
func TestRecordKeepsRecordAndTimeline(t *testing.T) {
	ctx := context.Background()
	c := testenv.NewClock(t0)
	r := New(firestoreClient(t), Options{Now: c.Now})
	s := testSession("ab12cd34", "alice@example.com", session.StateCreating, t0)

	step(t, ctx, r, s, "created", session.StateCreating, t0, "")
	step(t, ctx, r, s, "ready", session.StateRunning, t0.Add(time.Minute), "")
	step(t, session.WithActor(ctx, "sweep"), r, s, "slept", session.StateSleeping, t0.Add(2*time.Hour), "idle")
	s.Attempt, s.BackupLocation = 1, "pvc://hyperbola-backups/ab12cd34/ab12cd34-1.zip"
	step(t, session.WithActor(ctx, "terraform"), r, s, "delete_started", session.StateDeleting, t0.Add(3*time.Hour), "")
	s.BackupLocation = "" // a later snapshot without the location must not erase it
	step(t, ctx, r, s, "deleted", session.StateDeleted, t0.Add(3*time.Hour+time.Minute), "")

	rec, err := r.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := rec.Session
	if got.State != session.StateDeleted || got.UserID != s.UserID || got.Image != s.Image || got.Storage != "5Gi" ||
		got.IdleTimeout.D() != 15*time.Minute || got.Labels["team"] != "a" || !got.CreatedAt.Equal(t0) ||
		got.BackupLocation != "pvc://hyperbola-backups/ab12cd34/ab12cd34-1.zip" || got.Attempt != 1 || !got.BackupOnDelete {
		t.Errorf("record: %+v", got)
	}
	if rec.LastEvent != "deleted" || rec.Events != 5 || !rec.DeletedAt.Equal(t0.Add(3*time.Hour+time.Minute)) || rec.LastActor != "api" {
		t.Errorf("record bookkeeping: %+v", rec)
	}
	evs, err := r.Events(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []string{"created", "ready", "slept", "delete_started", "deleted"}
	wantActors := []string{"api", "api", "sweep", "terraform", "api"}
	if len(evs) != len(wantTypes) {
		t.Fatalf("events: %+v", evs)
	}
	for i, e := range evs {
		if e.Type != wantTypes[i] || e.Actor != wantActors[i] || e.Seq != int64(i+1) || e.Queued || e.RecordedAt.IsZero() {
			t.Errorf("event %d: %+v, want %s by %s, seq %d", i, e, wantTypes[i], wantActors[i], i+1)
		}
	}
	if evs[2].From != session.StateRunning || evs[2].To != session.StateSleeping || evs[2].Detail != "idle" {
		t.Errorf("slept event: %+v", evs[2])
	}

	live, err := r.LiveSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 0 {
		t.Errorf("a deleted session is live: %+v", live)
	}
	batch, err := r.Sessions(ctx, []string{s.ID, "zz99zz99"})
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) != 1 || batch[s.ID] == nil || batch[s.ID].State != session.StateDeleted {
		t.Errorf("Sessions: %+v", batch)
	}
	if _, err := r.Get(ctx, "zz99zz99"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want not found", err)
	}
}

// A write is idempotent (a replay stores nothing twice), and an event older than the record's
// last one joins the timeline without rolling the record back.
func TestWriteIsIdempotentAndNeverRollsBack(t *testing.T) {
	ctx := context.Background()
	c := testenv.NewClock(t0)
	r := New(firestoreClient(t), Options{Now: c.Now})
	s := testSession("ef56gh78", "bob", session.StateRunning, t0)
	step(t, ctx, r, s, "created", session.StateRunning, t0, "")
	step(t, ctx, r, s, "slept", session.StateSleeping, t0.Add(2*time.Hour), "")

	late := &pendingEvent{ID: "late-event", Event: session.Event{
		SessionID: s.ID, UserID: s.UserID, Type: "woke", From: session.StateSleeping, To: session.StateRunning,
		Actor: "api", At: t0.Add(time.Hour), Session: s.Clone()}, QueuedAt: t0.Add(time.Hour)}
	late.Event.Session.State = session.StateRunning
	for range 2 {
		if err := r.write(ctx, late); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := r.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Session.State != session.StateSleeping || rec.LastEvent != "slept" || rec.Events != 3 {
		t.Errorf("record after a late event: state %s, last %s, events %d; want sleeping, slept, 3", rec.Session.State, rec.LastEvent, rec.Events)
	}
	evs, err := r.Events(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[1].ID != "late-event" || !evs[1].Queued {
		t.Errorf("timeline: %+v", evs)
	}
}

// An event without a session snapshot still keeps the record's state and owner.
func TestRecordWithoutASnapshot(t *testing.T) {
	ctx := context.Background()
	r := New(firestoreClient(t), Options{})
	ev := session.Event{SessionID: "ns12ap34", UserID: "gus", Type: "created", To: session.StateRunning, At: t0}
	if err := r.Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
	ev.Type, ev.From, ev.To, ev.At = "slept", session.StateRunning, session.StateSleeping, t0.Add(time.Hour)
	if err := r.Record(session.WithActor(ctx, "sweep"), session.Event{SessionID: ev.SessionID, Type: ev.Type, From: ev.From, To: ev.To, At: ev.At}); err != nil {
		t.Fatal(err)
	}
	rec, err := r.Get(ctx, "ns12ap34")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Session.State != session.StateSleeping || rec.Session.UserID != "gus" || !rec.Session.CreatedAt.Equal(t0) ||
		!rec.Session.UpdatedAt.Equal(t0.Add(time.Hour)) || rec.LastActor != "sweep" || rec.Events != 2 {
		t.Errorf("record: %+v %+v", rec, rec.Session)
	}
}

func TestRecordRefusesBadEvents(t *testing.T) {
	r := New(nil, Options{}) // never reaches Firestore
	ctx := context.Background()
	for _, ev := range []session.Event{
		{SessionID: "NOPE", Type: "created", To: session.StateCreating, At: t0},
		{SessionID: "ab12cd34", Type: "", To: session.StateCreating, At: t0},
		{SessionID: "ab12cd34", Type: "created", To: "sideways", At: t0},
		{SessionID: "ab12cd34", Type: "created", To: session.StateCreating},
	} {
		if err := r.Record(ctx, ev); session.KindOf(err) != session.KindInvalid {
			t.Errorf("Record(%+v) = %v, want invalid", ev, err)
		}
	}
}

// With Firestore down, Record fails loudly and queues the event in Redis; the session is
// visibly pending; Flush, once Firestore answers, writes every queued event with the record
// in step, exactly once.
func TestRecordQueuesWhileFirestoreIsDownAndFlushWritesLater(t *testing.T) {
	ctx := context.Background()
	c := testenv.NewClock(t0)
	rdb, prefix := env.RedisFor(t)
	good := New(firestoreClient(t), fastOptions(rdb, prefix, c)) // before deadFirestore changes the env
	down := New(deadFirestore(t), fastOptions(rdb, prefix, c))

	s := testSession("qu12eu34", "carol", session.StateCreating, t0)
	for i, tr := range []struct {
		typ string
		to  session.State
	}{{"created", session.StateCreating}, {"ready", session.StateRunning}, {"slept", session.StateSleeping}} {
		from := s.State
		s.State = tr.to
		start := time.Now()
		err := down.Record(ctx, session.Event{SessionID: s.ID, UserID: s.UserID, Type: tr.typ, From: from, To: tr.to,
			At: t0.Add(time.Duration(i) * time.Hour), Session: s.Clone()})
		if !errors.Is(err, ErrQueued) || session.KindOf(err) != session.KindUnavailable {
			t.Fatalf("Record with Firestore down = %v, want ErrQueued and unavailable", err)
		}
		took := time.Since(start)
		if took > 3*time.Second {
			t.Errorf("Record took %v with Firestore down: the attempts are not bounded", took)
		}
		if i > 0 && took > 1500*time.Millisecond { // presumed down: one short attempt
			t.Errorf("Record %d took %v while Firestore was presumed down", i, took)
		}
	}
	info, err := good.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Events != 3 || info.Sessions[s.ID] != 3 {
		t.Errorf("pending: %+v, want 3 events of %s", info, s.ID)
	}
	if p, _ := good.IsPending(ctx, s.ID); !p {
		t.Error("IsPending = false with 3 events queued")
	}
	if _, err := good.Get(ctx, s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the record exists before Flush: %v", err)
	}

	// Flushing while Firestore is still down keeps everything queued.
	res, err := down.Flush(ctx)
	if err == nil || res.Written != 0 || res.Remaining != 3 {
		t.Errorf("Flush with Firestore down: %+v, %v; want an error and 3 remaining", res, err)
	}

	res, err = good.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 3 || res.Remaining != 0 || res.Dead != 0 {
		t.Errorf("Flush: %+v, want 3 written", res)
	}
	rec, err := good.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Session.State != session.StateSleeping || rec.Events != 3 || rec.LastEvent != "slept" {
		t.Errorf("record after Flush: %+v", rec)
	}
	evs, err := good.Events(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || !evs[0].Queued || evs[2].Type != "slept" {
		t.Errorf("timeline after Flush: %+v", evs)
	}
	if info, _ := good.Pending(ctx); info.Events != 0 || len(info.Sessions) != 0 {
		t.Errorf("pending after Flush: %+v", info)
	}
	if res, err := good.Flush(ctx); err != nil || res.Written != 0 {
		t.Errorf("second Flush: %+v, %v", res, err)
	}
}

// When Redis cannot take the event either, Record says both failed: nothing is dropped silently.
func TestRecordFailsLoudlyWhenBothStoresAreDown(t *testing.T) {
	c := testenv.NewClock(t0)
	r := New(deadFirestore(t), fastOptions(deadRedis(t), "x:", c))
	s := testSession("bo12th34", "dave", session.StateCreating, t0)
	err := r.Record(context.Background(), session.Event{SessionID: s.ID, Type: "created", To: s.State, At: t0, Session: s})
	if err == nil || errors.Is(err, ErrQueued) || !strings.Contains(err.Error(), "queueing it in redis failed") {
		t.Errorf("Record with both down = %v", err)
	}
	// And with no queue configured at all.
	r = New(deadFirestore(t), Options{Attempts: 1, AttemptTimeout: 200 * time.Millisecond})
	if err := r.Record(context.Background(), session.Event{SessionID: s.ID, Type: "created", To: s.State, At: t0}); err == nil || errors.Is(err, ErrQueued) {
		t.Errorf("Record without a queue = %v", err)
	}
}

// A cancelled request context does not lose the event: it is queued regardless.
func TestRecordQueuesEvenWhenTheCallerGaveUp(t *testing.T) {
	c := testenv.NewClock(t0)
	rdb, prefix := env.RedisFor(t)
	r := New(firestoreClient(t), fastOptions(rdb, prefix, c))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := testSession("ca12nc34", "erin", session.StateCreating, t0)
	err := r.Record(ctx, session.Event{SessionID: s.ID, Type: "created", To: s.State, At: t0, Session: s})
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("Record with a cancelled context = %v, want queued", err)
	}
	res, err := r.Flush(context.Background())
	if err != nil || res.Written != 1 {
		t.Fatalf("Flush: %+v, %v", res, err)
	}
	if _, err := r.Get(context.Background(), s.ID); err != nil {
		t.Errorf("record after Flush: %v", err)
	}
}

// A queued item Firestore can never take is set aside, not retried forever.
func TestFlushSetsMalformedEventsAside(t *testing.T) {
	ctx := context.Background()
	c := testenv.NewClock(t0)
	rdb, prefix := env.RedisFor(t)
	r := New(firestoreClient(t), fastOptions(rdb, prefix, c))
	if err := rdb.RPush(ctx, prefix+keyPending, "{not json", `{"id":"x","event":{"session_id":"BAD","type":"created","to":"creating","at":"2026-03-02T09:00:00Z"}}`).Err(); err != nil {
		t.Fatal(err)
	}
	s := testSession("ok12ok34", "frank", session.StateRunning, t0)
	p := &pendingEvent{ID: "good-one", Event: session.Event{SessionID: s.ID, UserID: s.UserID, Type: "created", To: s.State, At: t0, Actor: "api", Session: s}}
	if err := r.enqueue(ctx, p, errors.New("test")); err != nil {
		t.Fatal(err)
	}
	res, err := r.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 1 || res.Dead != 2 || res.Remaining != 0 {
		t.Errorf("Flush: %+v, want 1 written, 2 dead", res)
	}
	info, err := r.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Dead != 2 || info.Events != 0 || len(info.Sessions) != 0 {
		t.Errorf("pending: %+v", info)
	}
}

// A session that never expires (ttl 0: zero ExpiresAt) keeps no expiry in its durable record,
// so a reconcile that rebuilds it from Firestore does not make it expire.
func TestRecordKeepsANeverExpiringSession(t *testing.T) {
	ctx := context.Background()
	c := testenv.NewClock(t0)
	r := New(firestoreClient(t), Options{Now: c.Now})
	s := testSession("nx12cd34", "alice@example.com", session.StateCreating, t0)
	s.ExpiresAt = time.Time{}
	step(t, ctx, r, s, "created", session.StateCreating, t0, "")
	rec, err := r.Get(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Session.ExpiresAt.IsZero() {
		t.Fatalf("durable record of a never-expiring session expires at %v", rec.Session.ExpiresAt)
	}
}
