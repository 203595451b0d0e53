package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// MaxUsageWindow is the longest window one usage report covers: 93 days, so that any calendar
// quarter fits. It bounds what one report reads: the sessions alive within the window and
// their events there.
const MaxUsageWindow = 93 * 24 * time.Hour

// Check validates a usage query as Usage runs it at now: a well-formed user id when one is
// given, a from (required), from before to (to is now when zero or in the future) and a window
// no longer than MaxUsageWindow. A caller without the report's clock passes the zero now: the
// window is then checked as given, and its length only when to is given.
func (q UsageQuery) Check(now time.Time) error {
	if q.UserID != "" {
		if err := session.CheckUserID(q.UserID); err != nil {
			return err
		}
	}
	if q.From.IsZero() {
		return session.Invalid("from", "from is required: the report covers a window of at most %d days", MaxUsageWindow/(24*time.Hour))
	}
	from, to := q.window(now)
	if to.IsZero() {
		return nil
	}
	if !from.Before(to) {
		return session.Invalid("from", "from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if to.Sub(from) > MaxUsageWindow {
		field := "from"
		if !q.To.IsZero() {
			field = "to"
		}
		return session.Invalid(field, "the window from %s to %s is longer than %d days", from.Format(time.RFC3339), to.Format(time.RFC3339),
			MaxUsageWindow/(24*time.Hour))
	}
	return nil
}

// window is the query's [from, to) in UTC: to is now when zero or in the future (unless now
// is zero).
func (q UsageQuery) window(now time.Time) (from, to time.Time) {
	from, to = q.From.UTC(), q.To.UTC()
	if !now.IsZero() && (q.To.IsZero() || to.After(now.UTC())) {
		to = now.UTC()
	}
	return from, to
}

// usageReaders bounds the timelines read at once.
const usageReaders = 8

// sleptBy is why the idle sweep put the session to sleep, for its "slept" events (their
// detail); "" for any other event, and for a sleep asked for.
func sleptBy(e EventRecord) session.SleepReason {
	if e.Type != "slept" {
		return ""
	}
	switch r := session.SleepReason(e.Detail); r {
	case session.SleepIdle, session.SleepConnectedCap:
		return r
	}
	return ""
}

// Usage reports, from the event timelines, the hours each session spent running, sleeping and
// stopped within [q.From, q.To), per session, per user and in total, with the estimated cost
// and the savings against always-on, and the hours the connected cap saved (Usage.SavedHours).
// A state still open at To counts until To (To is now when
// zero or in the future). Time before a session's first event is unknown and not counted.
//
// It reads, by index, the records of the sessions alive at or after From (those deleted
// before it are not read), then every event within the window in one collection-group query
// (see windowEvents), and takes the state at From from what the write path kept (see
// timelines): two queries whatever the number of sessions. Only a session whose
// records do not tell its state at From (written before those fields were kept, events out of
// order near From, no event within the window but some after it) is read as before, its events
// within the window and the last one before it, on its own; every session is, while Firestore
// lacks the collection-group index (still building). The records of sessions created
// after To are read and left out: selecting on created_at as well would need a composite index
// on two ranges.
func (r *Recorder) Usage(ctx context.Context, q UsageQuery) (*UsageReport, error) {
	rep, _, err := r.usage(ctx, q, false)
	return rep, err
}

// usage is Usage, and how many sessions it read on their own; bySession reads every session's
// events on its own, as Usage did before the collection-group query (the tests compare the
// two).
func (r *Recorder) usage(ctx context.Context, q UsageQuery, bySession bool) (*UsageReport, int, error) {
	now := r.opts.Now().UTC()
	if err := q.Check(now); err != nil {
		return nil, 0, err
	}
	from, to := q.window(now)

	query := r.sessions().Where("active_until", ">=", from)
	if q.UserID != "" {
		query = query.Where("user_id", "==", q.UserID)
	}
	// Only the fields the report reads (timelineOf, startPoint): less to send and decode.
	query = query.Select("id", "user_id", "created_at", "active_until", "state", "storage", "last_event_at",
		"slept_by", "slept_since", "sleep_known", "late_at", "one_user")
	var recs []recordDoc
	err := each(ctx, query, "selecting sessions for the usage report", func(d *recordDoc) {
		if d.CreatedAt.IsZero() || d.CreatedAt.Before(to) { // not created after the window
			recs = append(recs, *d)
		}
	})
	if err != nil {
		return nil, 0, err
	}

	var timelines []Timeline
	var alone int
	if bySession {
		alone = len(recs)
		all := make([]int, len(recs))
		for i := range all {
			all[i] = i
		}
		timelines = make([]Timeline, len(recs))
		err = r.readTimelines(ctx, recs, all, timelines, from, to)
	} else {
		timelines, alone, err = r.timelines(ctx, recs, q.UserID, from, to)
		r.log.DebugContext(ctx, "usage report read", "sessions", len(recs), "read_alone", alone)
	}
	if err != nil {
		return nil, 0, err
	}

	prices := Prices{PerRunningHour: r.opts.PricePerRunningHour, PerGBMonth: r.opts.StoragePricePerGBMonth, Currency: r.opts.Currency}
	rep := BuildReport(timelines, from, to, prices)
	rep.UserID = q.UserID
	rep.GeneratedAt = now
	if info, err := r.Pending(ctx); err == nil {
		rep.PendingEvents = info.Events
	} else {
		r.log.WarnContext(ctx, "usage report: reading the event queue", "err", err)
		rep.PendingEvents = -1
	}
	return rep, alone, nil
}

// timelineOf is session d's timeline without its points.
func timelineOf(d *recordDoc) Timeline {
	tl := Timeline{SessionID: d.ID, UserID: d.UserID, CreatedAt: d.CreatedAt.UTC()}
	if d.ActiveUntil.Before(farFuture) {
		tl.DeletedAt = d.ActiveUntil.UTC()
	}
	return tl
}

// pointOf is event e's point.
func pointOf(e EventRecord) Point {
	return Point{At: e.At, Seq: e.Seq, State: e.To, Storage: e.Storage, SleptBy: sleptBy(e)}
}

// readTimelines reads the timelines of recs[i] for each i of which, each session on its own
// (its events within the window and the last one before it, two queries), usageReaders at once,
// into timelines[i].
func (r *Recorder) readTimelines(ctx context.Context, recs []recordDoc, which []int, timelines []Timeline, from, to time.Time) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(usageReaders)
	for _, i := range which {
		d := &recs[i]
		g.Go(func() error {
			evs, err := r.eventsIn(gctx, d.ID, from, to)
			if err != nil {
				return err
			}
			tl := timelineOf(d)
			for _, e := range evs {
				tl.Points = append(tl.Points, pointOf(e))
			}
			timelines[i] = tl
			return nil
		})
	}
	return g.Wait()
}

// timelines returns the timelines of recs within [from, to) (recs selected by userID when it is
// not ""), and how many sessions were read on their own. It reads the window's events in one
// query and takes each session's state at from from its records (startPoint); a session whose
// records do not tell it is read on its own (readTimelines).
func (r *Recorder) timelines(ctx context.Context, recs []recordDoc, userID string, from, to time.Time) ([]Timeline, int, error) {
	timelines := make([]Timeline, len(recs))
	var alone []int
	inWindow, err := r.windowEvents(ctx, userID, from, to)
	noIndex := errors.Is(err, errNoIndex)
	if noIndex {
		// A deployment whose indexes are still building: the report is slower, not wrong.
		r.log.WarnContext(ctx, "usage report: reading every session on its own", "err", err)
		err = nil
	}
	if err != nil {
		return nil, 0, err
	}
	for i := range recs {
		d := &recs[i]
		w := inWindow[d.ID] // nil: no event within the window
		var start *Point
		ok := false
		if !noIndex {
			start, ok = startPoint(d, w, userID != "", from)
		}
		if !ok {
			alone = append(alone, i)
			continue
		}
		tl := timelineOf(d)
		if start != nil {
			tl.Points = append(tl.Points, *start)
		}
		if w != nil {
			tl.Points = append(tl.Points, w.points...)
		}
		timelines[i] = tl
	}
	if err := r.readTimelines(ctx, recs, alone, timelines, from, to); err != nil {
		return nil, 0, err
	}
	return timelines, len(alone), nil
}

// startPoint returns the point that stands, in session d's timeline, for its events before
// from: what the last of them left (nil when there is none), as reading them would give it (see
// eventsIn); w holds its events within the window (nil when none), and byUser says they were
// selected by the record's user id. ok is false when d's records do not tell it:
//   - no event within the window: the record tells the state it is in since LastEventAt, if
//     that is before from and the record knows its sleep cause (an event after the window
//     would be the one to read);
//   - otherwise the first event within the window tells the record before it (eventDoc.Prev)
//     if it was written in order when the record knew its sleep cause, unless an event written
//     out of order later may lie between the two (recordDoc.LateAt), or the event in order
//     before it is within the window yet was not read;
//   - by user, only when every event of the session carries the record's user id.
//
// An event written out of order before the first event within the window lies before the
// record's LastEventAt then, so before the event it was written after: never the last one
// before from.
func startPoint(d *recordDoc, w *windowTimeline, byUser bool, from time.Time) (start *Point, ok bool) {
	if byUser && !d.OneUser {
		return nil, false
	}
	if w == nil {
		if !d.SleepKnown || !d.LastEventAt.Before(from) {
			return nil, false
		}
		return &Point{At: d.LastEventAt.UTC(), State: session.State(d.State), Storage: d.Storage,
			SleptBy: causeAt(d.SleptBy, d.SleptSince, d.LastEventAt)}, true
	}
	p := w.firstPrev
	switch {
	case p == nil:
		return nil, false
	case !d.LateAt.IsZero() && (p.First || !d.LateAt.Before(p.At)):
		return nil, false
	case p.First:
		return nil, true
	case !p.At.Before(from):
		return nil, false
	}
	return &Point{At: p.At.UTC(), State: session.State(p.State), Storage: p.Storage, SleptBy: causeAt(p.SleptBy, p.SleptSince, p.At)}, true
}

// causeAt is the sleep cause the events at time at alone give (Spans starts a timeline's
// cause at its first point): the one the record kept when an event at that time set it, none
// when it was kept from earlier. Reading only the events at and after the last time before
// the window, the report has always counted a sleeping span that an event left asleep (an
// update) before the window as without a cause; this keeps that result.
func causeAt(by string, since, at time.Time) session.SleepReason {
	if !since.Equal(at) {
		return ""
	}
	return session.SleepReason(by)
}

// errNoIndex says Firestore cannot serve windowEvents' query yet: it lacks (or is still
// building) the collection-group index.
var errNoIndex = errors.New("the collection-group index on events is missing or still building")

// windowTimeline is one session's events within the report's window: their points (in the
// order read; Spans sorts them), and the first one's time, seq and Prev.
type windowTimeline struct {
	points    []Point
	firstAt   time.Time
	firstSeq  int64
	firstPrev *prevDoc
}

// windowEvents reads every event within [from, to) of this recorder's sessions (those of
// userID only, when not ""), by session id, as points (what the report keeps of them): one
// collection-group query on the events' "at" (and "user_id"), served by the collection-group
// indexes the Firestore module declares (infra/modules/firestore). The query spans every collection named "events" in the
// database: events under another root collection (another deployment, or a test, sharing the
// database with its own Options.Collection) are read, billed and dropped, so a database shared
// by several deployments makes each one's report read all their events in the window.
func (r *Recorder) windowEvents(ctx context.Context, userID string, from, to time.Time) (map[string]*windowTimeline, error) {
	q := r.fs.CollectionGroup(EventsCollection).Where("at", ">=", from).Where("at", "<", to)
	if userID != "" {
		q = q.Where("user_id", "==", userID)
	}
	q = q.Select("at", "seq", "type", "to", "detail", "storage", "prev") // what pointOf and startPoint read
	root := r.sessions().Path
	out := map[string]*windowTimeline{}
	it := q.Documents(ctx)
	defer it.Stop()
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if status.Code(err) == codes.FailedPrecondition {
			return nil, fmt.Errorf("%w: %w", errNoIndex, err)
		}
		if err != nil {
			return nil, session.Unavailable("firestore", fmt.Errorf("reading the events within the usage window: %w", err))
		}
		rec := snap.Ref.Parent.Parent
		if rec == nil || rec.Parent == nil || rec.Parent.Path != root {
			continue
		}
		var d eventDoc
		if err := snap.DataTo(&d); err != nil {
			return nil, fmt.Errorf("reading the events within the usage window: decoding %s: %w", snap.Ref.Path, err)
		}
		w := out[rec.ID]
		if w == nil {
			w = &windowTimeline{}
			out[rec.ID] = w
		}
		e := d.toEvent()
		if len(w.points) == 0 || cmp.Or(e.At.Compare(w.firstAt), cmp.Compare(e.Seq, w.firstSeq)) < 0 {
			w.firstAt, w.firstSeq, w.firstPrev = e.At, e.Seq, d.Prev
		}
		w.points = append(w.points, pointOf(e))
	}
	return out, nil
}
