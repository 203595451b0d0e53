package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Defaults of Options.
const (
	DefaultCollection     = "sessions"
	EventsCollection      = "events" // the subcollection of a session's record
	DefaultPrefix         = "hyperbola:"
	DefaultAttempts       = 3
	DefaultBackoff        = 100 * time.Millisecond
	DefaultAttemptTimeout = 5 * time.Second
	DefaultCooldown       = 30 * time.Second
	// degradedTimeout bounds the single attempt made while Firestore is presumed down.
	degradedTimeout   = time.Second
	DefaultFlushLimit = 1000
	DefaultCurrency   = "USD"
)

// Options configures a Recorder. Zero values take the defaults noted.
type Options struct {
	// Collection is the root collection of the records ("sessions").
	Collection string
	// Redis holds the queue of events Firestore could not take; nil means no queue (a failed
	// write is then only reported).
	Redis redis.UniversalClient
	// Prefix is the Redis key prefix ("hyperbola:", the store's).
	Prefix string
	// Attempts is how many times a write is tried before the event is queued (3).
	Attempts int
	// Backoff is the wait after the first failed attempt; it doubles after each (100ms).
	Backoff time.Duration
	// AttemptTimeout bounds one attempt (5s): the Firestore client retries an unreachable
	// server on its own for as long as the context lets it.
	AttemptTimeout time.Duration
	// Cooldown is how long Firestore is presumed down after a write fell through to the queue
	// (30s): meanwhile Record makes a single short attempt, so an outage does not add the
	// whole retry budget to every transition.
	Cooldown time.Duration
	// FlushLimit bounds how many queued events one Flush writes (1000).
	FlushLimit int
	// PricePerRunningHour is the cost of one workspace running for an hour (0: free).
	PricePerRunningHour float64
	// StoragePricePerGBMonth is the cost of one GiB of volume kept for a month (730 hours),
	// running or not; 0 leaves storage out of the costs.
	StoragePricePerGBMonth float64
	// Currency names the currency of the prices ("USD").
	Currency string
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives the errors and warnings (slog.Default).
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Collection == "" {
		o.Collection = DefaultCollection
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	if o.Cooldown <= 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.FlushLimit <= 0 {
		o.FlushLimit = DefaultFlushLimit
	}
	if o.Currency == "" {
		o.Currency = DefaultCurrency
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Recorder writes session records and events to Firestore and reads them back (records,
// timelines, the usage report). It implements session.Recorder.
type Recorder struct {
	fs   *firestore.Client
	rdb  redis.UniversalClient
	opts Options
	log  *slog.Logger
	// downUntil (unix ns, wall clock) is when Firestore stops being presumed down.
	downUntil atomic.Int64
}

var _ session.Recorder = (*Recorder)(nil)

// New returns a Recorder writing through client.
func New(client *firestore.Client, opts Options) *Recorder {
	opts.defaults()
	return &Recorder{fs: client, rdb: opts.Redis, opts: opts, log: opts.Logger.With("component", "events")}
}

// Options returns the effective options (defaults filled in).
func (r *Recorder) Options() Options { return r.opts }

// ErrQueued is wrapped by Record's error when Firestore could not take the event and it was
// queued in Redis instead: it is not lost, and Flush writes it later.
var ErrQueued = errors.New("event queued for reconcile")

// farFuture is active_until of a session that has not been deleted.
var farFuture = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// recordDoc is the durable record: sessions/{id}.
type recordDoc struct {
	ID           string `firestore:"id"`
	UserID       string `firestore:"user_id"`
	State        string `firestore:"state"`
	Reason       string `firestore:"reason"`
	Pending      string `firestore:"pending"`
	WorkspaceURL string `firestore:"workspace_url"`
	Image        string `firestore:"image"`
	Storage      string `firestore:"storage"`
	CPU          string `firestore:"cpu"`
	Memory       string `firestore:"memory"`
	IdleTimeout  string `firestore:"idle_timeout"` // a Go duration, "15m0s"
	// IdleConnectedMax likewise; "" (records written before it) reads as 0, no cap.
	IdleConnectedMax string            `firestore:"idle_connected_max"`
	BackupOnDelete   bool              `firestore:"backup_on_delete"`
	Labels           map[string]string `firestore:"labels"`
	CreatedAt        time.Time         `firestore:"created_at"`
	UpdatedAt        time.Time         `firestore:"updated_at"`
	LastActivity     time.Time         `firestore:"last_activity"`
	ExpiresAt        time.Time         `firestore:"expires_at"`
	BackupLocation   string            `firestore:"backup_location"`
	Attempt          int               `firestore:"attempt"`
	// ActiveUntil is when the session was deleted, farFuture while it lives: the usage report
	// selects the sessions with active_until >= From.
	ActiveUntil time.Time `firestore:"active_until"`
	LastEvent   string    `firestore:"last_event"`
	LastEventAt time.Time `firestore:"last_event_at"`
	LastActor   string    `firestore:"last_actor"`
	// Seq counts the events recorded for the session; each event carries its number.
	Seq        int64     `firestore:"seq"`
	RecordedAt time.Time `firestore:"recorded_at,serverTimestamp"`

	// What the usage report reads instead of the session's events before its window (see
	// prevDoc and Usage). SleptBy is the sweep's cause of the sleeping span the session is
	// in, SleptSince the time of the event that set it (every event that leaves the session
	// asleep keeps it; any other sets it, "" unless a "slept" event of the sweep). SleepKnown
	// says both are known: a record last written before they were kept, or asleep since then,
	// has it false.
	SleptBy    string    `firestore:"slept_by"`
	SleptSince time.Time `firestore:"slept_since"`
	SleepKnown bool      `firestore:"sleep_known"`
	// LateAt is the latest time of an event written out of order (before LastEventAt, as a
	// queued event flushed late): zero when there has been none since the field was kept.
	LateAt time.Time `firestore:"late_at"`
	// OneUser says every event of the session carries the record's user id: set when the
	// record is created, cleared for good by an event with another (or none). The per-user
	// report reads events by user id only for such sessions.
	OneUser bool `firestore:"one_user"`
}

// prevDoc is what an event written in order (not before its record's LastEventAt) stores of
// the record just before it: the state the session was in, from prevDoc.At, up to the event.
// The usage report takes it for the state at the start of its window from the first event
// within the window, instead of reading the last event before the window.
type prevDoc struct {
	// First: the event created the record; there was no state before it.
	First bool `firestore:"first"`
	// At is the record's LastEventAt: the time of the event in order before this one.
	At         time.Time `firestore:"at"`
	State      string    `firestore:"state"`
	Storage    string    `firestore:"storage"`
	SleptBy    string    `firestore:"slept_by"`
	SleptSince time.Time `firestore:"slept_since"`
}

// eventDoc is one transition: sessions/{id}/events/{eid}.
type eventDoc struct {
	ID        string    `firestore:"id"`
	SessionID string    `firestore:"session_id"`
	UserID    string    `firestore:"user_id"`
	Type      string    `firestore:"type"`
	From      string    `firestore:"from"`
	To        string    `firestore:"to"`
	Actor     string    `firestore:"actor"`
	At        time.Time `firestore:"at"`
	Detail    string    `firestore:"detail"`
	Storage   string    `firestore:"storage"`
	Seq       int64     `firestore:"seq"`
	Queued    bool      `firestore:"queued"`
	// RecordedAt is when Firestore took it (later than At for a queued event).
	RecordedAt time.Time `firestore:"recorded_at,serverTimestamp"`
	// Prev is the record before the event, for an event written in order whose record knew
	// it (see prevDoc); absent on an event written out of order or before it was kept.
	Prev *prevDoc `firestore:"prev,omitempty"`
}

// pendingEvent is an event on its way to Firestore, with the id chosen for it before the
// first attempt (so a retry or a replay never stores it twice). It is what the queue holds.
type pendingEvent struct {
	ID       string        `json:"id"`
	Event    session.Event `json:"event"`
	QueuedAt time.Time     `json:"queued_at,omitzero"`
	Error    string        `json:"error,omitempty"`
}

// eventID is sortable by time and unique: the event's time and 8 random hex characters.
func eventID(at time.Time) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return at.UTC().Format("20060102T150405.000000Z") + "-" + hex.EncodeToString(b[:]), nil
}

// checkEvent validates an event before anything is written.
func checkEvent(ev *session.Event) error {
	switch {
	case !session.ValidID(ev.SessionID):
		return session.Invalid("session_id", "event session id %q is not a session id", ev.SessionID)
	case ev.Type == "":
		return session.Invalid("type", "event type is empty")
	case !ev.To.Valid():
		return session.Invalid("to", "event state %q is not a state", ev.To)
	case ev.From != "" && !ev.From.Valid():
		return session.Invalid("from", "event state %q is not a state", ev.From)
	case ev.At.IsZero():
		return session.Invalid("at", "event time is zero")
	}
	return nil
}

// Record writes the event and the session's record in one transaction, trying a few times.
// When that fails it queues the event in Redis and returns an error wrapping ErrQueued; when
// queueing fails too the error says both. Record runs to the end even when ctx is cancelled
// after the cluster changed: the queueing does not depend on the caller's context.
func (r *Recorder) Record(ctx context.Context, ev session.Event) error {
	ev.At = ev.At.UTC().Truncate(time.Microsecond) // Firestore keeps microseconds
	if ev.Actor == "" {
		ev.Actor = session.ActorOf(ctx)
	}
	if ev.UserID == "" && ev.Session != nil {
		ev.UserID = ev.Session.UserID
	}
	if ev.Session != nil {
		ev.Session = ev.Session.Clone()
		ev.Session.Password = ""
	}
	if err := checkEvent(&ev); err != nil {
		return fmt.Errorf("recording event of session %s: %w", ev.SessionID, err)
	}
	id, err := eventID(ev.At)
	if err != nil {
		return err
	}
	p := &pendingEvent{ID: id, Event: ev}
	werr := r.writeRetrying(ctx, p)
	if werr == nil {
		return nil
	}
	werr = session.Unavailable("firestore", werr)
	if qerr := r.enqueue(ctx, p, werr); qerr != nil {
		r.log.ErrorContext(ctx, "event lost: firestore and the redis queue both failed",
			"id", ev.SessionID, "type", ev.Type, "at", ev.At, "firestore_err", werr, "redis_err", qerr)
		return fmt.Errorf("recording %s event of session %s: %w; queueing it in redis failed too: %w", ev.Type, ev.SessionID, werr, qerr)
	}
	r.log.WarnContext(ctx, "firestore write failed; event queued for reconcile", "id", ev.SessionID, "type", ev.Type, "err", werr)
	return fmt.Errorf("recording %s event of session %s: %w: %w", ev.Type, ev.SessionID, ErrQueued, werr)
}

// writeRetrying tries write up to Attempts times with a doubling backoff, within ctx; while
// Firestore is presumed down (a recent write fell through to the queue) it tries once, briefly.
func (r *Recorder) writeRetrying(ctx context.Context, p *pendingEvent) error {
	attempts, timeout := r.opts.Attempts, r.opts.AttemptTimeout
	if time.Now().UnixNano() < r.downUntil.Load() {
		attempts, timeout = 1, min(timeout, degradedTimeout)
	}
	wait := r.opts.Backoff
	for attempt := 1; ; attempt++ {
		err := r.writeOnce(ctx, p, timeout)
		if err == nil {
			r.downUntil.Store(0)
			return nil
		}
		if !retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return err // the caller gave up: that says nothing about Firestore
		}
		if attempt >= attempts {
			r.downUntil.Store(time.Now().Add(r.opts.Cooldown).UnixNano())
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// writeOnce is one attempt, bounded by timeout.
func (r *Recorder) writeOnce(ctx context.Context, p *pendingEvent, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return r.write(ctx, p)
}

// retryable reports whether a failed write may succeed when tried again (or later, from the
// queue). Only a request Firestore rejects as malformed never will.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var se *session.Error
	if errors.As(err, &se) && se.Kind == session.KindInvalid {
		return false
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.InvalidArgument, codes.OutOfRange:
			return false
		}
	}
	return true
}

func (r *Recorder) sessions() *firestore.CollectionRef { return r.fs.Collection(r.opts.Collection) }

// write stores the event and updates the record in one transaction. It is idempotent: when the
// event's document exists already, nothing changes.
func (r *Recorder) write(ctx context.Context, p *pendingEvent) error {
	ev := p.Event
	recRef := r.sessions().Doc(ev.SessionID)
	evRef := recRef.Collection(EventsCollection).Doc(p.ID)
	err := r.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snaps, err := tx.GetAll([]*firestore.DocumentRef{recRef, evRef})
		if err != nil {
			return err
		}
		if snaps[1].Exists() {
			return nil // stored by an earlier attempt whose reply was lost, or by another Flush
		}
		var rec recordDoc
		exists := snaps[0].Exists()
		if exists {
			if err := snaps[0].DataTo(&rec); err != nil {
				return fmt.Errorf("decoding record %s: %w", ev.SessionID, err)
			}
		}
		next := rec
		inOrder := !exists || !ev.At.Before(rec.LastEventAt)
		if inOrder {
			next = applyEvent(rec, exists, &ev)
		}
		next.Seq = rec.Seq + 1
		storage := next.Storage
		if ev.Session != nil && ev.Session.Storage != "" {
			storage = ev.Session.Storage
		}
		doc := eventDoc{
			ID: p.ID, SessionID: ev.SessionID, UserID: ev.UserID, Type: ev.Type,
			From: string(ev.From), To: string(ev.To), Actor: ev.Actor, At: ev.At,
			Detail: ev.Detail, Storage: storage, Seq: next.Seq, Queued: !p.QueuedAt.IsZero(),
		}
		keepForReport(rec, exists, inOrder, &next, &doc)
		if err := tx.Set(evRef, doc); err != nil {
			return err
		}
		return tx.Set(recRef, next)
	})
	if err != nil {
		return fmt.Errorf("firestore: writing %s event of session %s: %w", ev.Type, ev.SessionID, err)
	}
	return nil
}

// keepForReport fills in what the usage report reads instead of the events before its window:
// the record's sleep cause, late events and users (next, the record after the event; rec,
// the one before), and the record before an event written in order (doc.Prev).
func keepForReport(rec recordDoc, exists, inOrder bool, next *recordDoc, doc *eventDoc) {
	// applyEvent builds the record afresh from a snapshot: carry the fields over.
	next.SleptBy, next.SleptSince, next.SleepKnown, next.LateAt = rec.SleptBy, rec.SleptSince, rec.SleepKnown, rec.LateAt
	next.OneUser = (!exists || rec.OneUser) && doc.UserID == next.UserID && (!exists || rec.UserID == next.UserID)
	if !inOrder {
		if doc.At.After(next.LateAt) {
			next.LateAt = doc.At
		}
		return
	}
	switch {
	case !exists:
		doc.Prev = &prevDoc{First: true}
	case rec.SleepKnown || session.State(rec.State) != session.StateSleeping:
		// Not asleep, the cause does not count; asleep, it is known.
		doc.Prev = &prevDoc{At: rec.LastEventAt, State: rec.State, Storage: rec.Storage, SleptBy: rec.SleptBy, SleptSince: rec.SleptSince}
	}
	e := EventRecord{Type: doc.Type, Detail: doc.Detail}
	switch {
	case session.State(doc.To) != session.StateSleeping:
		next.SleptBy, next.SleptSince, next.SleepKnown = "", doc.At, true
	case sleptBy(e) != "" || !exists || session.State(rec.State) != session.StateSleeping:
		next.SleptBy, next.SleptSince, next.SleepKnown = string(sleptBy(e)), doc.At, true
	}
	// Otherwise the session stays asleep: the cause is kept (known or not).
}

// applyEvent returns the record after ev: the session's snapshot when the event carries one,
// the event's own fields otherwise.
func applyEvent(rec recordDoc, exists bool, ev *session.Event) recordDoc {
	next := rec
	if s := ev.Session; s != nil {
		next = recordDoc{
			ID: ev.SessionID, UserID: s.UserID, State: string(s.State), Reason: s.Reason,
			Pending: string(s.Pending), WorkspaceURL: s.WorkspaceURL, Image: s.Image,
			Storage: s.Storage, CPU: s.CPU, Memory: s.Memory, IdleTimeout: s.IdleTimeout.D().String(),
			IdleConnectedMax: s.IdleConnectedMax.D().String(), BackupOnDelete: s.BackupOnDelete, Labels: maps.Clone(s.Labels),
			CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC(), LastActivity: s.LastActivity.UTC(),
			ExpiresAt: s.ExpiresAt.UTC(), BackupLocation: s.BackupLocation, Attempt: s.Attempt,
		}
		if next.BackupLocation == "" {
			next.BackupLocation = rec.BackupLocation // a snapshot never forgets where the backup is
		}
	}
	next.ID = ev.SessionID
	if ev.UserID != "" {
		next.UserID = ev.UserID
	}
	next.State = string(ev.To)
	if next.CreatedAt.IsZero() {
		next.CreatedAt = ev.At
	}
	if next.UpdatedAt.IsZero() || (ev.Session == nil && next.UpdatedAt.Before(ev.At)) {
		next.UpdatedAt = ev.At
	}
	if ev.To == session.StateDeleted {
		next.ActiveUntil = ev.At
	} else {
		next.ActiveUntil = farFuture
	}
	next.LastEvent, next.LastEventAt, next.LastActor = ev.Type, ev.At, ev.Actor
	next.RecordedAt = time.Time{} // server time
	if !exists && next.Labels == nil {
		next.Labels = map[string]string{}
	}
	return next
}

// toSession turns a record back into a session.
func (d *recordDoc) toSession() *session.Session {
	s := &session.Session{
		ID: d.ID, UserID: d.UserID, State: session.State(d.State), Reason: d.Reason,
		Pending: session.Pending(d.Pending), WorkspaceURL: d.WorkspaceURL, Image: d.Image,
		Storage: d.Storage, CPU: d.CPU, Memory: d.Memory, BackupOnDelete: d.BackupOnDelete,
		CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), LastActivity: d.LastActivity.UTC(),
		ExpiresAt: d.ExpiresAt.UTC(), BackupLocation: d.BackupLocation, Attempt: d.Attempt,
	}
	if len(d.Labels) > 0 {
		s.Labels = maps.Clone(d.Labels)
	}
	if d.IdleTimeout != "" {
		if t, err := time.ParseDuration(d.IdleTimeout); err == nil {
			s.IdleTimeout = session.Duration(t)
		}
	}
	if d.IdleConnectedMax != "" {
		if t, err := time.ParseDuration(d.IdleConnectedMax); err == nil {
			s.IdleConnectedMax = session.Duration(t)
		}
	}
	return s
}
