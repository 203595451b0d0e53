// Package reconcile brings Redis, Firestore and Kubernetes back into agreement after one of
// them lost track: Redis (Memorystore basic tier) losing every key, objects created outside
// Hyperbola, records whose objects vanished. The sweep runs it, and POST /reconcile on demand.
//
// Kubernetes is the truth about what exists and whether it runs; Firestore (internal/events)
// is the truth about who owns a session and how it was asked for; Redis is a cache of both
// that the session Service works from. For every session with labelled objects:
//
//   - a Redis record exists: nothing to do here (the Service drives it); when Firestore has
//     no record of it, one is written (backfilled).
//   - no Redis record, a live Firestore record: the session Service rebuilds the Redis record
//     (session.Service.Rebuild, which decides the state under the session's lock) — owner, image,
//     storage, idle timeout, created time and backup location from Firestore (Kubernetes
//     annotations as the fallback), the state from the Deployment: 0 replicas → sleeping,
//     ready → running, otherwise creating or waking (waiting for the pod). A session that was
//     deleting goes on deleting (its backup is run again before the volume goes); a failed one
//     stays failed; an incomplete set is re-applied by the Service (pending apply).
//   - no record anywhere (or a deleted one), objects older than the grace period: a complete
//     set (all six kinds) is adopted as a new session; an incomplete one is removed — and its
//     volume only after a backup of it succeeded: the backup Job (attempt 0, which the Service
//     never uses) is started, and a later run removes the volume once it has succeeded. A
//     failed backup keeps the volume and is reported until someone looks.
//
// And for every live Firestore record with nothing left in the cluster and no Redis record,
// older than the grace period, the record is closed (a "vanished" event), so the usage report
// stops counting it.
//
// Races with requests in flight: a session being created has its Redis record before its
// first object, so its objects are never orphans while Redis holds it; if Redis is lost in
// between, the grace period (10 minutes by default, measured from the objects' creation)
// leaves young objects alone, and by the next run the queued "created" event has reached
// Firestore and the session is rebuilt instead. Every change to a session is made under the
// session's lock (the Service's own), after reading Redis again; Reserve never overwrites a
// record that appeared meanwhile. Reconcile decides no session's state itself: it finds the
// lost records and the orphans, and asks the Service to restore or adopt them.
package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Actor is who reconcile's events are recorded as.
const Actor = "reconcile"

// OrphanBackupAttempt is the backup attempt reconcile uses for a volume no record owns. The
// Service numbers its attempts from 1, so the two never share a Job.
const OrphanBackupAttempt = 0

// Defaults of Options.
const (
	DefaultGracePeriod = 10 * time.Minute
	DefaultLockTTL     = time.Minute
	DefaultWorkers     = 8
)

// Records is the durable side: *events.Recorder implements it (a nil Records
// when Firestore is not configured).
type Records interface {
	Record(ctx context.Context, ev session.Event) error
	Sessions(ctx context.Context, ids []string) (map[string]*session.Session, error)
	LiveSessions(ctx context.Context) ([]*session.Session, error)
	Flush(ctx context.Context) (*events.FlushResult, error)
	Pending(ctx context.Context) (*events.PendingInfo, error)
}

// Deps are what reconcile works on.
type Deps struct {
	Cluster session.Cluster
	Store   session.Store
	// Records are the durable records; nil when Firestore is not configured: then sessions are
	// rebuilt from Kubernetes alone (complete sets adopted) and nothing is ever removed.
	Records Records
	Now     func() time.Time // time.Now when nil
	Logger  *slog.Logger     // slog.Default when nil
}

// Options tune a run. Zero values take the defaults noted.
type Options struct {
	// GracePeriod: objects with no record are left alone until they are this old (10m), and
	// a record is closed only when it has not changed for this long.
	GracePeriod time.Duration
	// DryRun reports what would be done and changes nothing.
	DryRun bool
	// Domain names the workspace URL of adopted sessions: https://vs-code-<id>.<Domain>
	// ("preview.hyperbola.in").
	Domain string
	// IdleTimeout of adopted sessions whose objects do not say (15m).
	IdleTimeout time.Duration
	// IdleConnectedMax of adopted sessions (the cluster does not record it): 0 is no cap.
	IdleConnectedMax time.Duration
	// SessionTTL: an adopted session expires SessionTTL after its creation (24h), and not
	// sooner than a grace period from now.
	SessionTTL time.Duration
	// BackupRetention is how long the archive of an orphaned volume is kept in the catalog
	// (session.Options.BackupRetention: 0 is its default, negative keeps it forever).
	BackupRetention time.Duration
	// LockTTL is how long reconcile may hold a session's lock (1m).
	LockTTL time.Duration
	// Workers bounds the sessions handled at once (8).
	Workers int
}

func (o *Options) defaults() {
	if o.GracePeriod <= 0 {
		o.GracePeriod = DefaultGracePeriod
	}
	if o.Domain == "" {
		o.Domain = session.DefaultDomain
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 15 * time.Minute
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 24 * time.Hour
	}
	if o.LockTTL <= 0 {
		o.LockTTL = DefaultLockTTL
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
}

// Item is one session in the report.
type Item struct {
	ID     string               `json:"uuid"`
	UserID string               `json:"user_id,omitempty"`
	State  session.State        `json:"status,omitempty"`
	Kinds  []session.ObjectKind `json:"kinds,omitempty"`
	Detail string               `json:"detail,omitempty"`
}

// Report is what a run did (or, with DryRun, would do).
type Report struct {
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	DryRun     bool      `json:"dry_run"`
	// Observed is how many sessions have objects in the cluster.
	Observed int `json:"observed"`
	// FlushedEvents is how many queued events reached Firestore first; PendingEvents how many
	// are still queued (their sessions in PendingSessions).
	FlushedEvents   int            `json:"flushed_events"`
	PendingEvents   int            `json:"pending_events"`
	PendingSessions map[string]int `json:"pending_sessions,omitempty"`
	// Rebuilt: Redis records rebuilt from Firestore and the cluster.
	Rebuilt []Item `json:"rebuilt"`
	// Repaired: sessions whose objects had drifted from their record (a sleeping one with
	// replicas, a running one with none, routes the routing does not want), brought back to it
	// by the Service.
	Repaired []Item `json:"repaired"`
	// Adopted: complete sets of objects with no record, made into sessions.
	Adopted []Item `json:"adopted"`
	// Removed: incomplete sets with no record, deleted (their volume backed up first).
	Removed []Item `json:"removed"`
	// BackupsStarted: backups of orphaned volumes started in this run.
	BackupsStarted []Item `json:"backups_started"`
	// BackupsPending: orphaned volumes whose backup is running; a later run removes them.
	BackupsPending []Item `json:"backups_pending"`
	// Backfilled: Firestore records written for Redis records it did not have.
	Backfilled []Item `json:"backfilled"`
	// Vanished: live Firestore records closed because nothing of them is left.
	Vanished []Item `json:"vanished"`
	// Skipped: sessions left alone this time (too young, busy, a record appeared...).
	Skipped []Item `json:"skipped"`
	// Errors: what failed; the next run tries again.
	Errors []Item `json:"errors"`
}

// Changed reports whether the run changed (or would change) anything.
func (r *Report) Changed() bool {
	return len(r.Rebuilt)+len(r.Repaired)+len(r.Adopted)+len(r.Removed)+len(r.BackupsStarted)+len(r.Backfilled)+len(r.Vanished) > 0
}

type run struct {
	deps Deps
	svc  *session.Service // decides and writes the state of a lost record
	opts Options
	now  time.Time
	log  *slog.Logger

	mu  sync.Mutex
	rep *Report
}

// add appends it to the list picked by which, under the report's lock.
func (r *run) add(which func(*Report) *[]Item, it Item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := which(r.rep)
	*l = append(*l, it)
}

func (r *run) fail(it Item, err error) {
	it.Detail = joinDetail(it.Detail, err.Error())
	r.log.Error("reconcile", "id", it.ID, "err", err)
	r.add(func(p *Report) *[]Item { return &p.Errors }, it)
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + ": " + b
}

// Reconcile runs once over every session the cluster holds and every live durable record. It
// returns an error only when it could not look at the cluster at all; what failed for one
// session is in Report.Errors.
func Reconcile(ctx context.Context, deps Deps, opts Options) (*Report, error) {
	if deps.Cluster == nil || deps.Store == nil {
		return nil, errors.New("reconcile: a cluster and a store are required")
	}
	opts.defaults()
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	ctx = session.WithActor(ctx, Actor)
	svc := session.NewService(deps.Cluster, deps.Store, session.Options{Domain: opts.Domain, IdleTimeout: opts.IdleTimeout,
		IdleConnectedMax: opts.IdleConnectedMax, SessionTTL: opts.SessionTTL, LockTTL: opts.LockTTL, BackupRetention: opts.BackupRetention, Now: deps.Now, Logger: deps.Logger})
	r := &run{deps: deps, svc: svc, opts: opts, now: deps.Now().UTC(), log: deps.Logger.With("component", "reconcile"),
		rep: &Report{DryRun: opts.DryRun, Rebuilt: []Item{}, Repaired: []Item{}, Adopted: []Item{}, Removed: []Item{},
			BackupsStarted: []Item{}, BackupsPending: []Item{}, Backfilled: []Item{}, Vanished: []Item{},
			Skipped: []Item{}, Errors: []Item{}}}
	r.rep.StartedAt = r.now

	if deps.Records != nil && !opts.DryRun {
		res, err := deps.Records.Flush(ctx)
		if res != nil {
			r.rep.FlushedEvents = res.Written
		}
		if err != nil {
			r.fail(Item{Detail: "flushing queued events"}, err)
		}
	}

	observed, err := deps.Cluster.ObserveAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("reconcile: observing the cluster: %w", err)
	}
	r.rep.Observed = len(observed)
	ids := make([]string, 0, len(observed))
	for _, o := range observed {
		ids = append(ids, o.ID)
	}

	// The durable records of every observed session, in one batch. Without them (Firestore
	// down) a session with no Redis record cannot be told from an orphan: those are skipped.
	var durable map[string]*session.Session
	var durableErr error
	if deps.Records != nil {
		durable, durableErr = deps.Records.Sessions(ctx, ids)
		if durableErr != nil {
			r.fail(Item{Detail: "reading durable records"}, durableErr)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Workers)
	for _, o := range observed {
		g.Go(func() error {
			r.observed(gctx, o, durable, durableErr)
			return nil
		})
	}
	_ = g.Wait()

	if deps.Records != nil && durableErr == nil {
		r.vanished(ctx, observed)
	}
	if deps.Records != nil {
		if info, err := deps.Records.Pending(ctx); err == nil {
			r.rep.PendingEvents = info.Events
			if len(info.Sessions) > 0 {
				r.rep.PendingSessions = info.Sessions
			}
		} else {
			r.fail(Item{Detail: "reading the event queue"}, err)
		}
	}

	r.sort()
	r.rep.FinishedAt = deps.Now().UTC()
	r.log.Info("reconciled", "observed", r.rep.Observed, "rebuilt", len(r.rep.Rebuilt), "repaired", len(r.rep.Repaired), "adopted", len(r.rep.Adopted),
		"removed", len(r.rep.Removed), "backups_started", len(r.rep.BackupsStarted), "backups_pending", len(r.rep.BackupsPending),
		"backfilled", len(r.rep.Backfilled), "vanished", len(r.rep.Vanished), "errors", len(r.rep.Errors), "dry_run", opts.DryRun)
	return r.rep, nil
}

func (r *run) sort() {
	for _, l := range []*[]Item{&r.rep.Rebuilt, &r.rep.Repaired, &r.rep.Adopted, &r.rep.Removed, &r.rep.BackupsStarted, &r.rep.BackupsPending,
		&r.rep.Backfilled, &r.rep.Vanished, &r.rep.Skipped, &r.rep.Errors} {
		slices.SortStableFunc(*l, func(a, b Item) int { return cmp.Compare(a.ID, b.ID) })
	}
}

// observed handles one session that has objects in the cluster.
func (r *run) observed(ctx context.Context, o *session.Observed, durable map[string]*session.Session, durableErr error) {
	item := Item{ID: o.ID, UserID: o.UserID, Kinds: slices.Clone(o.Kinds)}
	rec, err := r.deps.Store.Get(ctx, o.ID)
	switch {
	case err == nil:
		r.backfill(ctx, rec, durable, durableErr)
		r.drift(ctx, rec, o, item)
		return
	case !errors.Is(err, session.ErrNotFound):
		r.fail(item, fmt.Errorf("reading the redis record: %w", err))
		return
	}
	if durableErr != nil {
		item.Detail = "no redis record, and the durable records cannot be read: left alone"
		r.add(func(p *Report) *[]Item { return &p.Skipped }, item)
		return
	}
	d := durable[o.ID]
	if d != nil && d.State != session.StateDeleted {
		r.rebuild(ctx, o, d, item)
		return
	}
	r.orphan(ctx, o, d, item)
}

// drift asks the Service to repair a session whose objects disagree with its record with
// nothing pending: a sleeping session whose Deployment has replicas (a pod runs and costs while
// the record says asleep), a running one with none (no pod, and nothing would ever start
// one), or one whose routes are not the ones the cluster's routing wants (Observed.Reroute:
// an Ingress left after the move to a Gateway, an HTTPRoute missing, or a route left on the
// activator after wake on access was turned off). Such drift is left by a call that landed after its instance lost the session's lock,
// or by a change made by hand. A transition in flight always has a pending step, so it is
// never taken for drift; a stale observation only makes the Service apply what the record
// already says.
func (r *run) drift(ctx context.Context, rec *session.Session, o *session.Observed, item Item) {
	if rec.Pending != session.PendingNone || !o.Has(session.ObjectDeployment) {
		return
	}
	switch {
	case rec.State == session.StateSleeping && o.DesiredReplicas > 0:
		item.Detail = fmt.Sprintf("sleeping with %d replica(s)", o.DesiredReplicas)
	case rec.State == session.StateRunning && o.DesiredReplicas == 0:
		item.Detail = "running with no replicas"
	case o.Reroute && (rec.State == session.StateRunning || rec.State == session.StateSleeping):
		// a move between routings: the workspace is applied again, which writes the routes
		// the routing wants and removes the one it no longer does (same host; the Deployment
		// and the volume are applied unchanged, so nothing restarts)
		item.Detail = fmt.Sprintf("routes %v are not the routing's", o.Kinds)
	default:
		return
	}
	item.State = rec.State
	if !r.opts.DryRun {
		if _, err := r.svc.Repair(ctx, rec.ID); err != nil {
			r.fail(item, fmt.Errorf("repairing: %w", err))
			return
		}
	}
	r.add(func(p *Report) *[]Item { return &p.Repaired }, item)
}

// backfill writes a durable record for a Redis record Firestore does not know. It does so
// under the session's lock, reading both again, so it never writes a stale snapshot over a
// transition made meanwhile.
func (r *run) backfill(ctx context.Context, rec *session.Session, durable map[string]*session.Session, durableErr error) {
	if r.deps.Records == nil || durableErr != nil || durable[rec.ID] != nil {
		return
	}
	if r.now.Sub(rec.CreatedAt) < r.opts.GracePeriod {
		return // created moments ago: its own "created" event is on its way
	}
	item := Item{ID: rec.ID, UserID: rec.UserID, State: rec.State, Detail: "durable record written from the redis record"}
	if r.opts.DryRun {
		r.add(func(p *Report) *[]Item { return &p.Backfilled }, item)
		return
	}
	r.withLock(ctx, item, func() error {
		cur, err := r.deps.Store.Get(ctx, rec.ID)
		if errors.Is(err, session.ErrNotFound) {
			return nil // deleted and gone meanwhile
		} else if err != nil {
			return fmt.Errorf("reading the redis record: %w", err)
		}
		again, err := r.deps.Records.Sessions(ctx, []string{rec.ID})
		if err != nil {
			return fmt.Errorf("reading the durable record: %w", err)
		}
		if again[rec.ID] != nil {
			return nil
		}
		item.State = cur.State
		if err := r.record(ctx, cur, "backfilled", "", item.Detail); err != nil {
			return err
		}
		r.add(func(p *Report) *[]Item { return &p.Backfilled }, item)
		return nil
	})
}

// record writes one of reconcile's events about s.
func (r *run) record(ctx context.Context, s *session.Session, typ string, from session.State, detail string) error {
	if r.deps.Records == nil {
		return nil
	}
	ev := session.Event{SessionID: s.ID, UserID: s.UserID, Type: typ, From: from, To: s.State, Actor: Actor,
		At: r.deps.Now().UTC(), Detail: detail, Session: s.Clone()}
	if err := r.deps.Records.Record(ctx, ev); err != nil {
		return fmt.Errorf("recording %s: %w", typ, err)
	}
	return nil
}

// withLock runs fn holding the session's lock (the Service's own); a session another
// transition holds is reported as skipped.
func (r *run) withLock(ctx context.Context, item Item, fn func() error) {
	release, err := r.deps.Store.Lock(ctx, item.ID, r.opts.LockTTL, 0)
	if errors.Is(err, session.ErrBusy) {
		item.Detail = "busy: another transition holds the session"
		r.add(func(p *Report) *[]Item { return &p.Skipped }, item)
		return
	}
	if err != nil {
		r.fail(item, fmt.Errorf("locking: %w", err))
		return
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := release.Release(uctx); err != nil {
			r.log.Warn("releasing session lock", "id", item.ID, "err", err)
		}
	}()
	if err := fn(); err != nil {
		r.fail(item, err)
	}
}

// locked runs fn holding the session's lock, when Redis still has no record of it; it reports
// the session as skipped otherwise. A dry run takes no lock.
func (r *run) locked(ctx context.Context, item Item, fn func() error) {
	if r.opts.DryRun {
		if err := fn(); err != nil {
			r.fail(item, err)
		}
		return
	}
	r.withLock(ctx, item, func() error {
		if _, err := r.deps.Store.Get(ctx, item.ID); err == nil {
			item.Detail = "a redis record appeared meanwhile"
			r.add(func(p *Report) *[]Item { return &p.Skipped }, item)
			return nil
		} else if !errors.Is(err, session.ErrNotFound) {
			return fmt.Errorf("reading the redis record: %w", err)
		}
		return fn()
	})
}

// rebuild has the Service write the Redis record of a session Firestore knows, its state
// from the cluster.
func (r *run) rebuild(ctx context.Context, o *session.Observed, d *session.Session, item Item) {
	s, ok := r.rebuildRecord(ctx, session.Rebuilding{Observed: o, Durable: d, DryRun: r.opts.DryRun}, item)
	if !ok {
		return
	}
	item.UserID, item.State = s.UserID, s.State
	item.Detail = fmt.Sprintf("from %s (firestore) to %s (cluster)", d.State, s.State)
	if s.Pending != session.PendingNone {
		item.Detail += ", pending " + string(s.Pending)
	}
	if !r.opts.DryRun {
		if err := r.record(ctx, s, "rebuilt", d.State, "redis record rebuilt from firestore and the cluster"); err != nil {
			r.fail(item, err) // the record is back; only the event is late (queued or lost loudly)
		}
	}
	r.add(func(p *Report) *[]Item { return &p.Rebuilt }, item)
}

// rebuildRecord asks the Service to write a lost record; a session another transition holds, or
// whose record appeared meanwhile, is reported as skipped.
func (r *run) rebuildRecord(ctx context.Context, in session.Rebuilding, item Item) (*session.Session, bool) {
	s, err := r.svc.Rebuild(ctx, in)
	switch {
	case errors.Is(err, session.ErrBusy):
		item.Detail = "busy: another transition holds the session"
		r.add(func(p *Report) *[]Item { return &p.Skipped }, item)
	case errors.Is(err, session.ErrConflict):
		item.Detail = "a redis record appeared meanwhile"
		r.add(func(p *Report) *[]Item { return &p.Skipped }, item)
	case err != nil:
		r.fail(item, err)
	default:
		return s, true
	}
	return nil, false
}

func (r *run) url(id string) string { return session.WorkspaceURL(id, r.opts.Domain) }

// orphan handles objects no live record owns (d is their deleted durable record, or nil).
func (r *run) orphan(ctx context.Context, o *session.Observed, d *session.Session, item Item) {
	if d != nil {
		item.UserID = cmp.Or(d.UserID, item.UserID)
		if r.now.Sub(d.UpdatedAt) < r.opts.GracePeriod {
			item.Detail = "deleted recently: its objects are going"
			r.add(func(p *Report) *[]Item { return &p.Skipped }, item)
			return
		}
	}
	if o.Created.IsZero() || r.now.Sub(o.Created) < r.opts.GracePeriod {
		item.Detail = fmt.Sprintf("no record, but younger than the grace period (%s)", r.opts.GracePeriod)
		r.add(func(p *Report) *[]Item { return &p.Skipped }, item)
		return
	}
	if o.Complete {
		r.adopt(ctx, o, d, item)
		return
	}
	if r.deps.Records == nil {
		item.Detail = "incomplete and without a record; with no durable records configured it is not removed"
		r.add(func(p *Report) *[]Item { return &p.Skipped }, item)
		return
	}
	r.remove(ctx, o, d, item)
}

// adopt has the Service make a complete set of objects into a session.
func (r *run) adopt(ctx context.Context, o *session.Observed, d *session.Session, item Item) {
	s, ok := r.rebuildRecord(ctx, session.Rebuilding{Observed: o, Durable: d, DryRun: r.opts.DryRun,
		ExpiresNotBefore: r.now.Add(r.opts.GracePeriod)}, item)
	if !ok {
		return
	}
	item.UserID, item.State = s.UserID, s.State
	item.Detail = "complete set with no record, adopted as " + string(s.State)
	if !r.opts.DryRun {
		if err := r.record(ctx, s, "adopted", "", item.Detail); err != nil {
			r.fail(item, err)
		}
	}
	r.add(func(p *Report) *[]Item { return &p.Adopted }, item)
}

// remove deletes an incomplete set with no record; a volume only once its backup succeeded.
func (r *run) remove(ctx context.Context, o *session.Observed, d *session.Session, item Item) {
	r.locked(ctx, item, func() error {
		if !o.Has(session.ObjectPVC) {
			item.Detail = "incomplete set with no record and no volume, removed"
			if !r.opts.DryRun {
				if err := r.deps.Cluster.DeleteWorkspace(ctx, o.ID, false); err != nil {
					return fmt.Errorf("removing: %w", err)
				}
				r.recordRemoval(ctx, o, d, item, "")
			}
			r.add(func(p *Report) *[]Item { return &p.Removed }, item)
			return nil
		}
		if r.opts.DryRun {
			item.Detail = "incomplete set with no record: its volume would be backed up, then everything removed"
			r.add(func(p *Report) *[]Item { return &p.Removed }, item)
			return nil
		}
		if o.Has(session.ObjectDeployment) && o.DesiredReplicas > 0 {
			// the volume is ReadWriteOnce: the pod lets go of it before the backup mounts it
			if err := r.deps.Cluster.Scale(ctx, o.ID, 0); err != nil {
				return fmt.Errorf("scaling to zero before the backup: %w", err)
			}
		}
		b, err := r.deps.Cluster.BackupStatus(ctx, o.ID, OrphanBackupAttempt)
		if err != nil {
			return fmt.Errorf("backup status: %w", err)
		}
		switch b.Phase {
		case session.BackupMissing:
			if b, err = r.deps.Cluster.StartBackup(ctx, o.ID, OrphanBackupAttempt); err != nil {
				return fmt.Errorf("starting the backup: %w", err)
			}
			item.Detail = joinDetail("backup started before removal", b.Location)
			r.add(func(p *Report) *[]Item { return &p.BackupsStarted }, item)
			if b.Phase != session.BackupSucceeded {
				return nil
			}
		case session.BackupRunning:
			item.Detail = joinDetail("backup running; the volume stays until it succeeds", b.Location)
			r.add(func(p *Report) *[]Item { return &p.BackupsPending }, item)
			return nil
		case session.BackupFailed:
			return fmt.Errorf("the backup of the orphaned volume failed, so it is kept (delete Job %d of the session to retry): %s", OrphanBackupAttempt, b.Reason)
		case session.BackupSucceeded:
		default:
			return fmt.Errorf("unknown backup phase %q", b.Phase)
		}
		// in the catalog before the volume goes, as a delete's backup is: its owner can restore it
		if err := r.svc.Catalog(ctx, o.ID, cmp.Or(item.UserID, "unknown"), o.Storage, b); err != nil {
			return fmt.Errorf("recording the backup: %w", err)
		}
		if err := r.deps.Cluster.DeleteWorkspace(ctx, o.ID, true); err != nil {
			return fmt.Errorf("removing after the backup: %w", err)
		}
		item.Detail = joinDetail("incomplete set with no record, removed after its backup", b.Location)
		r.recordRemoval(ctx, o, d, item, b.Location)
		r.add(func(p *Report) *[]Item { return &p.Removed }, item)
		return nil
	})
}

// recordRemoval leaves a durable record of what was removed, and where its volume went.
func (r *run) recordRemoval(ctx context.Context, o *session.Observed, d *session.Session, item Item, location string) {
	s := &session.Session{
		ID: o.ID, UserID: cmp.Or(item.UserID, "unknown"), State: session.StateDeleted, WorkspaceURL: r.url(o.ID),
		Image: o.Image, Storage: o.Storage, CPU: o.CPU, Memory: o.Memory, Labels: maps.Clone(o.Labels),
		CreatedAt: o.Created, UpdatedAt: r.now, LastActivity: o.Created, BackupLocation: location, Attempt: OrphanBackupAttempt,
	}
	if d != nil && location == "" {
		s.BackupLocation = d.BackupLocation
	}
	if err := r.record(ctx, s, "orphan_removed", "", item.Detail); err != nil {
		r.fail(item, err)
	}
}

// vanished closes the live durable records of sessions nothing is left of: no objects in the
// cluster, no Redis record, and no change for a grace period.
func (r *run) vanished(ctx context.Context, observed []*session.Observed) {
	live, err := r.deps.Records.LiveSessions(ctx)
	if err != nil {
		r.fail(Item{Detail: "listing live durable records"}, err)
		return
	}
	seen := make(map[string]bool, len(observed))
	for _, o := range observed {
		seen[o.ID] = true
	}
	for _, d := range live {
		if seen[d.ID] || r.now.Sub(d.UpdatedAt) < r.opts.GracePeriod {
			continue
		}
		item := Item{ID: d.ID, UserID: d.UserID, State: session.StateDeleted,
			Detail: fmt.Sprintf("was %s; nothing is left in the cluster or redis", d.State)}
		if _, err := r.deps.Store.Get(ctx, d.ID); err == nil {
			continue // the Service holds it: its pending steps notice the objects are gone
		} else if !errors.Is(err, session.ErrNotFound) {
			r.fail(item, fmt.Errorf("reading the redis record: %w", err))
			continue
		}
		if !r.opts.DryRun {
			s := d.Clone()
			from := s.State
			s.State, s.UpdatedAt = session.StateDeleted, r.now
			s.Await(session.PendingNone, r.now)
			if err := r.record(ctx, s, "vanished", from, item.Detail); err != nil {
				r.fail(item, err)
				continue
			}
		}
		r.add(func(p *Report) *[]Item { return &p.Vanished }, item)
	}
}
