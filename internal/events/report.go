package events

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

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
// before it are not read), and of each the events within the window and the last one before
// it (the state at From). The records of sessions created after To are read and left out:
// selecting on created_at as well would need a composite index on two ranges.
func (r *Recorder) Usage(ctx context.Context, q UsageQuery) (*UsageReport, error) {
	now := r.opts.Now().UTC()
	if err := q.Check(now); err != nil {
		return nil, err
	}
	from, to := q.window(now)

	query := r.sessions().Where("active_until", ">=", from)
	if q.UserID != "" {
		query = query.Where("user_id", "==", q.UserID)
	}
	var recs []recordDoc
	err := each(ctx, query, "selecting sessions for the usage report", func(d *recordDoc) {
		if d.CreatedAt.IsZero() || d.CreatedAt.Before(to) { // not created after the window
			recs = append(recs, *d)
		}
	})
	if err != nil {
		return nil, err
	}

	timelines := make([]Timeline, len(recs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(usageReaders)
	for i := range recs {
		d := &recs[i]
		g.Go(func() error {
			evs, err := r.eventsIn(gctx, d.ID, from, to)
			if err != nil {
				return err
			}
			tl := Timeline{SessionID: d.ID, UserID: d.UserID, CreatedAt: d.CreatedAt.UTC()}
			if d.ActiveUntil.Before(farFuture) {
				tl.DeletedAt = d.ActiveUntil.UTC()
			}
			for _, e := range evs {
				tl.Points = append(tl.Points, Point{At: e.At, Seq: e.Seq, State: e.To, Storage: e.Storage, SleptBy: sleptBy(e)})
			}
			timelines[i] = tl
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
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
	return rep, nil
}
