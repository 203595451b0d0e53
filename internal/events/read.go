package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Record is a session's durable record as Firestore holds it.
type Record struct {
	Session     *session.Session `json:"session"`
	LastEvent   string           `json:"last_event"`
	LastEventAt time.Time        `json:"last_event_at"`
	LastActor   string           `json:"last_actor"`
	// Events is how many events were recorded for the session.
	Events int64 `json:"events"`
	// DeletedAt is when the session was deleted; zero while it lives.
	DeletedAt time.Time `json:"deleted_at,omitzero"`
}

// EventRecord is one stored event.
type EventRecord struct {
	ID        string        `json:"id"`
	SessionID string        `json:"session_id"`
	UserID    string        `json:"user_id"`
	Type      string        `json:"type"`
	From      session.State `json:"from,omitempty"`
	To        session.State `json:"to"`
	Actor     string        `json:"actor"`
	At        time.Time     `json:"at"`
	Detail    string        `json:"detail,omitempty"`
	Storage   string        `json:"storage,omitempty"`
	// Seq is the event's commit order within its session.
	Seq int64 `json:"seq"`
	// Queued is true when the event waited in the Redis queue before Firestore took it.
	Queued     bool      `json:"queued,omitempty"`
	RecordedAt time.Time `json:"recorded_at"`
}

func (d *recordDoc) toRecord() *Record {
	r := &Record{Session: d.toSession(), LastEvent: d.LastEvent, LastEventAt: d.LastEventAt.UTC(),
		LastActor: d.LastActor, Events: d.Seq}
	if d.ActiveUntil.Before(farFuture) {
		r.DeletedAt = d.ActiveUntil.UTC()
	}
	return r
}

func (d *eventDoc) toEvent() EventRecord {
	return EventRecord{ID: d.ID, SessionID: d.SessionID, UserID: d.UserID, Type: d.Type,
		From: session.State(d.From), To: session.State(d.To), Actor: d.Actor, At: d.At.UTC(),
		Detail: d.Detail, Storage: d.Storage, Seq: d.Seq, Queued: d.Queued, RecordedAt: d.RecordedAt.UTC()}
}

// Get returns the durable record of session id: a session.KindNotFound error when there is
// none, a session.KindUnavailable one when Firestore cannot answer.
func (r *Recorder) Get(ctx context.Context, id string) (*Record, error) {
	if err := session.CheckID(id); err != nil {
		return nil, err
	}
	snap, err := r.sessions().Doc(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return nil, session.NotFound(id)
	}
	if err != nil {
		return nil, session.Unavailable("firestore", fmt.Errorf("reading record %s: %w", id, err))
	}
	var d recordDoc
	if err := snap.DataTo(&d); err != nil {
		return nil, fmt.Errorf("decoding record %s: %w", id, err)
	}
	return d.toRecord(), nil
}

// Session returns the session as its durable record last saw it (see Get for the errors).
func (r *Recorder) Session(ctx context.Context, id string) (*session.Session, error) {
	rec, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return rec.Session, nil
}

// sessionsBatch bounds the documents read in one batch.
const sessionsBatch = 300

// Sessions returns the durable records of ids that have one, by id, reading them in batches.
func (r *Recorder) Sessions(ctx context.Context, ids []string) (map[string]*session.Session, error) {
	out := make(map[string]*session.Session, len(ids))
	for chunk := range slices.Chunk(ids, sessionsBatch) {
		refs := make([]*firestore.DocumentRef, 0, len(chunk))
		for _, id := range chunk {
			if err := session.CheckID(id); err != nil {
				return nil, err
			}
			refs = append(refs, r.sessions().Doc(id))
		}
		snaps, err := r.fs.GetAll(ctx, refs)
		if err != nil {
			return nil, session.Unavailable("firestore", fmt.Errorf("reading %d records: %w", len(refs), err))
		}
		for _, snap := range snaps {
			if !snap.Exists() {
				continue
			}
			var d recordDoc
			if err := snap.DataTo(&d); err != nil {
				return nil, fmt.Errorf("decoding record %s: %w", snap.Ref.ID, err)
			}
			out[snap.Ref.ID] = d.toSession()
		}
	}
	return out, nil
}

// LiveSessions returns every session whose durable record is not deleted, by id.
func (r *Recorder) LiveSessions(ctx context.Context) ([]*session.Session, error) {
	var out []*session.Session
	err := each(ctx, r.sessions().Where("active_until", ">=", farFuture), "listing live records", func(d *recordDoc) {
		out = append(out, d.toSession())
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *session.Session) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Events returns the timeline of session id, oldest first (by time, then commit order).
func (r *Recorder) Events(ctx context.Context, id string) ([]EventRecord, error) {
	if err := session.CheckID(id); err != nil {
		return nil, err
	}
	return r.events(ctx, id, time.Time{}, time.Time{})
}

// eventsIn reads the events of session id that shape its timeline within [from, to): those in
// it and the last one before from (the state at from), by the events' index on at. Events at
// the same time as that last one are read too: commit order (seq) decides among them.
func (r *Recorder) eventsIn(ctx context.Context, id string, from, to time.Time) ([]EventRecord, error) {
	start := from
	last := r.sessions().Doc(id).Collection(EventsCollection).Where("at", "<", from).OrderBy("at", firestore.Desc).Limit(1)
	if err := each(ctx, last, "reading the event of "+id+" before the window", func(d *eventDoc) { start = d.At }); err != nil {
		return nil, err
	}
	return r.events(ctx, id, start, to)
}

// events reads session id's events at or after since and before until (each when not zero),
// oldest first.
func (r *Recorder) events(ctx context.Context, id string, since, until time.Time) ([]EventRecord, error) {
	q := r.sessions().Doc(id).Collection(EventsCollection).Query
	if !since.IsZero() {
		q = q.Where("at", ">=", since)
	}
	if !until.IsZero() {
		q = q.Where("at", "<", until)
	}
	var out []EventRecord
	if err := each(ctx, q, "reading events of "+id, func(d *eventDoc) { out = append(out, d.toEvent()) }); err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b EventRecord) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	return out, nil
}

// each decodes every document q selects into a T and hands it to fn, in the order Firestore
// returns them; what says what the reading was for, in errors.
func each[T any](ctx context.Context, q firestore.Query, what string, fn func(*T)) error {
	it := q.Documents(ctx)
	defer it.Stop()
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return session.Unavailable("firestore", fmt.Errorf("%s: %w", what, err))
		}
		var d T
		if err := snap.DataTo(&d); err != nil {
			return fmt.Errorf("%s: decoding %s: %w", what, snap.Ref.Path, err)
		}
		fn(&d)
	}
}
