// Package sweep is the scheduled idle sweep: Cloud Scheduler calls it every minute (the
// IdleSweep function, or POST /sweep on the API) and each call
//
//   - deletes the sessions whose SESSION_TTL has passed (with their backup),
//   - drives forward the pending steps it finds (creating, waking, deleting sessions),
//   - probes code-server's /healthz on every running workspace whose recorded idle deadline
//     (last real use + its idle_timeout) has passed, and applies the two-tier idle rule below;
//   - names the sessions stuck in one pending step for longer than Options.StuckAfter in its
//     report, and logs each at WARN by id and step;
//   - keeps the warm path as configured (Deps.Warmer: placeholder pods and the image
//     pre-pull), a failure of which is counted and logged and never stops the rest;
//   - in gateway routing, keeps the shared Gateway as configured (Deps.Gateway), likewise;
//   - writes the durable events queued while Firestore was unreachable (Deps.Flusher), and,
//     once every Options.ReconcileEvery across all instances, runs a reconcile
//     (Deps.Reconciler).
//
// Its cost follows the sessions that are due, never all of them: the candidates come from
// the store's idle and expiry indexes (sorted sets read by score). One sweep runs at a time
// across instances (a Redis lease). The sweep keeps no state but the lease: every transition
// goes through the session Service, atomically under the session's lock, so a sweep that
// dies midway leaves no session half-moved, and the next sweep simply carries on.
//
// The idle rule has two tiers. Last activity is real use only: a create, a wake, or a report on
// POST /session/{id}/activity (the IDE extension's, or a client's). code-server's heartbeat
// beats every minute while any tab is connected, so it says a tab is open, not that anyone
// uses it, and it never moves the last activity. For a candidate (last activity + idle_timeout
// at or before now) the probe's heartbeat decides:
//
//   - no tab connected (heartbeat + idle_timeout at or before now): it sleeps, reason "idle";
//   - a tab connected, but no use for the session's idle_connected_max (not 0): it sleeps
//     anyway, reason "connected_cap" (Report.SleptConnected counts these);
//   - else it is kept, and its idle deadline deferred to when one of the two can first apply
//     (heartbeat + idle_timeout, or last activity + idle_connected_max when earlier), so a
//     tab left open is probed again then rather than every minute.
//
// idle_connected_max 0 (the sessions made before it existed) keeps the heartbeat rule alone.
// The reason is recorded on the durable "slept" event, which the usage report reads.
//
// A probe that fails (timeout, connection refused, an answer other than 200, a body that is
// not code-server's heartbeat) never puts a workspace to sleep: it is counted, logged, and the
// workspace stays a candidate for the next sweep.
package sweep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Actor is who the sweep's transitions are recorded as (session.WithActor).
const Actor = "sweep"

// Sessions is what the sweep needs from the session core (*session.Service). Every
// transition re-reads the session under its lock.
type Sessions interface {
	Delete(ctx context.Context, id string, opts session.DeleteOptions) (*session.Session, error)
	Advance(ctx context.Context, id string) error
	// SleepIfIdle puts the session to sleep only when, under its lock, it is running and idle
	// at now for reason (session.IdleFor), recording the reason; it reports whether it did.
	SleepIfIdle(ctx context.Context, id string, now time.Time, reason session.SleepReason) (bool, error)
	// PruneBackups removes up to limit archives past the backup retention and finishes the
	// removals under way.
	PruneBackups(ctx context.Context, now time.Time, limit int) (*session.BackupPrune, error)
}

// Store is what the sweep needs from the session store (*store.Store).
type Store interface {
	// Get returns the record, with LastActivity the newest recorded activity.
	Get(ctx context.Context, id string) (*session.Session, error)
	// IdleCandidates returns up to limit awake sessions whose idle deadline is before now.
	IdleCandidates(ctx context.Context, now time.Time, limit int) ([]string, error)
	// Expired returns up to limit sessions whose ExpiresAt is at or before now.
	Expired(ctx context.Context, now time.Time, limit int) ([]string, error)
	// Lease takes a global lease without waiting; ok is false when another holder has it.
	Lease(ctx context.Context, name string, ttl time.Duration) (release func(context.Context) error, ok bool, err error)
	// Pending returns up to limit sessions with a pending step, the least recently updated first.
	Pending(ctx context.Context, limit int) ([]string, error)
	// Stuck returns up to limit sessions whose pending step began before before, the oldest
	// first, and how many there are in all.
	Stuck(ctx context.Context, before time.Time, limit int) ([]*session.Session, int, error)
	// DeferIdle moves a session's idle deadline (not its activity) to until, when later: a
	// workspace whose probe failed is not probed again before Options.ProbeBackoff, and one
	// kept awake by an open tab not before either tier of the idle rule can apply.
	DeferIdle(ctx context.Context, id string, until time.Time) error
}

// PodAddrs finds the workspaces' pods (*kube.Cluster): the sweep needs it when its probe URL
// names the pod's address ({pod_ip}).
type PodAddrs interface {
	// WorkspacePodIPs returns the address of each session's Ready workspace pod, by session
	// id, from one list of the workspace pods; a session without a Ready pod is absent.
	WorkspacePodIPs(ctx context.Context) (map[string]string, error)
}

// Warmer keeps the warm path (*kube.Cluster): placeholder capacity and the workspace image on
// every node, as configured; sized zero, it removes them.
type Warmer interface {
	Warm(ctx context.Context) error
}

// Gateway keeps the shared Gateway of gateway routing (*kube.Cluster): it applies it in
// gateway mode and does nothing in ingress mode.
type Gateway interface {
	EnsureGateway(ctx context.Context) error
}

// VolumePool keeps the warm volume pool filled (*kube.Cluster): the sweep runs it on every
// call, as nothing else may run in the background.
type VolumePool interface {
	FillVolumePool(ctx context.Context) error
}

// Deps are the sweep's parts. Sessions and Store are required.
type Deps struct {
	Sessions Sessions
	Store    Store
	// Prober asks code-server for its heartbeat; nil builds an HTTPProber from the Options.
	Prober Prober
	// PodAddrs lists the Ready workspace pods' addresses, once per sweep with idle
	// candidates; required when Prober is a PodProber that needs them (a {pod_ip} URL).
	PodAddrs PodAddrs
	// Now is the clock (time.Now when nil). Use the Service's and the store's clock.
	Now    func() time.Time
	Logger *slog.Logger
	// Flusher, when set, writes the queued durable events on every sweep (*events.Recorder).
	Flusher Flusher
	// Reconciler, when set, runs a reconcile once every Options.ReconcileEvery; nil, never.
	Reconciler Reconciler
	// Warmer, when set, keeps the warm path on every sweep.
	Warmer Warmer
	// Gateway, when set, keeps the shared Gateway on every sweep.
	Gateway Gateway
	// VolumePool, when set, is filled on every sweep (a no-op with the pool off).
	VolumePool VolumePool
}

// Options tune a Sweeper. Zero values take the defaults noted.
type Options struct {
	// Concurrency bounds the probes (and transitions) in flight (16).
	Concurrency int
	// ProbeTimeout bounds one probe (2s).
	ProbeTimeout time.Duration
	// LeaseTTL is how long the sweep lease is held at most (3m). A sweep starts no new work
	// after two thirds of it, so it is done before another instance may take the lease.
	LeaseTTL time.Duration
	// LeaseName names the lease in the store ("sweep").
	LeaseName string
	// IdleLimit is the most idle candidates one sweep looks at (1000).
	IdleLimit int
	// ExpiredLimit is the most expired sessions one sweep deletes (100).
	ExpiredLimit int
	// PendingLimit is the most pending steps one sweep drives (200).
	PendingLimit int
	// BackupLimit is the most archives one sweep removes (100).
	BackupLimit int
	// ProbeBackoff is how long a workspace whose probe failed is left unprobed (5m).
	ProbeBackoff time.Duration
	// RetryFailedAfter is how long an expired session in state failed (its backup failed) is
	// left before the sweep deletes it again, so a backup that keeps failing does not start a
	// Job every minute (1h).
	RetryFailedAfter time.Duration
	// StuckAfter is how long a session may stay in one pending step before the report names
	// it as stuck (DefaultStuckAfter).
	StuckAfter time.Duration

	// ReconcileEvery is how often a sweep runs a reconcile, across every instance (10m).
	// The period is a lease in the store (ReconcileDueName), not a clock in
	// memory: the first sweep after it lapses runs the reconcile and takes it again.
	ReconcileEvery time.Duration
	// ReconcileDueName names that lease ("reconcile-due").
	ReconcileDueName string

	// The probe URL: a template with {id}, {pod_ip}, {namespace}, {port} and {domain}
	// (DefaultProbeURL when ""; PodProbeURL reaches the pod's address, resolved through
	// Deps.PodAddrs; PublicProbeURL goes through the Ingress and its certificate). Used only
	// when Deps.Prober is nil.
	ProbeURL  string
	Namespace string // HYPERBOLA_NAMESPACE
	Port      int32  // USER_POD_PORT
	Domain    string // HYPERBOLA_DOMAIN
}

func (o *Options) defaults() {
	defI := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defI(&o.Concurrency, 16)
	defI(&o.IdleLimit, 1000)
	defI(&o.ExpiredLimit, 100)
	defI(&o.PendingLimit, 200)
	defI(&o.BackupLimit, 100)
	defD(&o.ProbeTimeout, 2*time.Second)
	defD(&o.LeaseTTL, 3*time.Minute)
	defD(&o.ProbeBackoff, 5*time.Minute)
	defD(&o.RetryFailedAfter, time.Hour)
	defD(&o.StuckAfter, DefaultStuckAfter)
	defD(&o.ReconcileEvery, 10*time.Minute)
	if o.ReconcileDueName == "" {
		o.ReconcileDueName = "reconcile-due"
	}
	if o.LeaseName == "" {
		o.LeaseName = "sweep"
	}
	if o.ProbeURL == "" {
		o.ProbeURL = DefaultProbeURL
	}
}

// Report is what one sweep did. It is the HTTP answer and the sweep's log line.
type Report struct {
	// Skipped is true when another sweep held the lease: this one did nothing.
	Skipped bool `json:"skipped"`
	// Candidates are the sessions whose recorded idle deadline had passed.
	Candidates int `json:"candidates"`
	// Probed counts the probes made; ProbeErrors the ones that failed, by reason in
	// ProbeErrorsBy.
	Probed        int            `json:"probed"`
	ProbeErrors   int            `json:"probe_errors"`
	ProbeErrorsBy map[string]int `json:"probe_errors_by,omitempty"`
	// Slept counts the workspaces put to sleep, for either reason; SleptConnected those of them
	// put to sleep with a tab still connected, past their idle_connected_max ("connected_cap").
	// KeptActive counts the candidates kept awake (a tab connected within the idle timeout and
	// the cap not reached, or activity recorded meanwhile).
	Slept          int `json:"slept"`
	SleptConnected int `json:"slept_connected"`
	KeptActive     int `json:"kept_active"`
	// Deferred counts the candidates left for a later sweep without a probe: not running yet
	// (the pending steps move them), without a Ready pod to ask (a {pod_ip} probe URL), busy
	// (another transition held the lock), backing off after a failed probe, or not reached
	// before the sweep's time ran out (or because the pods could not be listed).
	Deferred int `json:"deferred"`
	// Expired counts the sessions past SESSION_TTL found; Deleted the deletes started.
	Expired int `json:"expired"`
	Deleted int `json:"deleted"`
	// BackupsExhausted names the expired sessions left alone because their backup failed too
	// often (a delete would be refused): someone must look at them.
	BackupsExhausted []string `json:"backups_exhausted,omitempty"`
	// Pending counts the sessions with a pending step found; Advanced the ones driven.
	Pending  int `json:"pending"`
	Advanced int `json:"advanced"`
	// Stuck names the sessions that have been in one pending step for longer than
	// Options.StuckAfter, read after this sweep drove the pending steps: the oldest first, at
	// most MaxStuckListed of them. StuckCount counts them all. A stuck step is one the cluster
	// does not finish (a pod that never becomes ready, a backup Job that hangs, objects that
	// are never removed); docs/operations/operations.md says what to do about each.
	Stuck      []StuckSession `json:"stuck,omitempty"`
	StuckCount int            `json:"stuck_count"`
	// Errors counts failures other than probes (Redis, the cluster, a transition).
	Errors int `json:"errors"`
	// LimitReached names the batches that were full ("expired", "pending", "idle"): more is
	// left for the next sweeps.
	LimitReached []string `json:"limit_reached,omitempty"`
	// BackupsRemoved names the archives this sweep removed (past HYPERBOLA_BACKUP_RETENTION,
	// or removals asked for that finished); BackupsRemoving the ones whose removal runs on,
	// BackupsFailed the removals that failed, with why (tried again next time).
	BackupsRemoved  []string `json:"backups_removed,omitempty"`
	BackupsRemoving []string `json:"backups_removing,omitempty"`
	BackupsFailed   []string `json:"backups_failed,omitempty"`
	// WarmError is why keeping the warm path failed (counted in Errors too); the next sweep
	// tries again.
	WarmError string `json:"warm_error,omitempty"`
	// GatewayError is why keeping the shared Gateway failed (counted in Errors too); the
	// next sweep tries again.
	GatewayError string `json:"gateway_error,omitempty"`
	// FlushedEvents counts the queued durable events this sweep wrote to Firestore.
	FlushedEvents int `json:"flushed_events"`
	// Reconciled is the reconcile this sweep ran; absent when none was due.
	Reconciled *ReconcileSummary `json:"reconciled,omitempty"`
	StartedAt  time.Time         `json:"started_at"`
	DurationMS int64             `json:"duration_ms"`
}

// LogAttrs returns the report as slog attributes.
func (r *Report) LogAttrs() []any {
	return []any{
		"skipped", r.Skipped, "candidates", r.Candidates, "probed", r.Probed,
		"probe_errors", r.ProbeErrors, "slept", r.Slept, "slept_connected", r.SleptConnected, "kept_active", r.KeptActive,
		"deferred", r.Deferred, "expired", r.Expired, "deleted", r.Deleted, "backups_exhausted", r.BackupsExhausted,
		"pending", r.Pending, "advanced", r.Advanced, "stuck", r.StuckCount, "errors", r.Errors,
		"limit_reached", r.LimitReached, "backups_removed", r.BackupsRemoved,
		"backups_removing", len(r.BackupsRemoving), "backups_failed", r.BackupsFailed, "flushed_events", r.FlushedEvents, "warm_error", r.WarmError,
		"gateway_error", r.GatewayError,
		"reconciled", r.Reconciled != nil, "duration_ms", r.DurationMS,
	}
}

// tally is a Report being filled in by concurrent workers.
type tally struct {
	mu sync.Mutex
	r  Report
}

func (t *tally) add(f func(r *Report)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.r)
}

func (t *tally) snapshot() *Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.r
	r.ProbeErrorsBy = maps.Clone(t.r.ProbeErrorsBy)
	r.LimitReached = append([]string(nil), t.r.LimitReached...)
	r.BackupsRemoved = append([]string(nil), t.r.BackupsRemoved...)
	r.BackupsRemoving = append([]string(nil), t.r.BackupsRemoving...)
	r.BackupsFailed = append([]string(nil), t.r.BackupsFailed...)
	r.Stuck = append([]StuckSession(nil), t.r.Stuck...)
	if t.r.Reconciled != nil {
		c := *t.r.Reconciled
		r.Reconciled = &c
	}
	return &r
}

// Sweeper runs sweeps. It is safe for concurrent use (concurrent runs are serialized by the
// lease, across instances too) and keeps no state between runs.
type Sweeper struct {
	sessions   Sessions
	store      Store
	prober     Prober
	podProber  PodProber // the prober, when its probes need the pod's address
	pods       PodAddrs
	flusher    Flusher
	reconciler Reconciler
	warmer     Warmer
	gateway    Gateway
	pool       VolumePool
	now        func() time.Time
	log        *slog.Logger
	opts       Options
	err        error // a configuration error, returned by every Run
}

// New returns a Sweeper. A configuration error (a bad probe URL template, a missing part)
// is returned by every Run; check it up front with Err.
func New(deps Deps, opts Options) *Sweeper {
	opts.defaults()
	s := &Sweeper{sessions: deps.Sessions, store: deps.Store, prober: deps.Prober, pods: deps.PodAddrs,
		flusher: deps.Flusher, reconciler: deps.Reconciler, warmer: deps.Warmer, gateway: deps.Gateway, pool: deps.VolumePool, now: deps.Now, log: deps.Logger, opts: opts}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "sweep")
	switch {
	case s.sessions == nil:
		s.err = errors.New("sweep: no session service")
	case s.store == nil:
		s.err = errors.New("sweep: no store")
	}
	if s.prober == nil {
		p, err := NewHTTPProber(ProbeOptions{URLTemplate: opts.ProbeURL, Namespace: opts.Namespace, Port: opts.Port, Domain: opts.Domain})
		if err != nil {
			s.err = errors.Join(s.err, err)
		} else {
			s.prober = p
		}
	}
	if pp, ok := s.prober.(PodProber); ok && pp.NeedsPodIP() {
		s.podProber = pp
		if s.pods == nil {
			s.err = errors.Join(s.err, fmt.Errorf("sweep: the probe URL names the pod's address (%s) but nothing lists the pods", PodIPPlaceholder))
		}
	}
	return s
}

// Err reports a configuration error (nil when the Sweeper can run).
func (s *Sweeper) Err() error { return s.err }

// Options returns the effective options (defaults filled in).
func (s *Sweeper) Options() Options { return s.opts }

// Run sweeps once: expired sessions, pending steps, idle candidates, then the event queue and,
// when one is due, a reconcile. It returns a report
// in every case; the error is for the failures that stopped part of the sweep (the lease or
// an index could not be read), per-session failures are counted in the report and logged.
// When another sweep holds the lease, Run returns a report with Skipped set and no error.
// Every goroutine Run starts has ended when it returns.
func (s *Sweeper) Run(ctx context.Context) (*Report, error) {
	start := time.Now()
	t := &tally{r: Report{StartedAt: s.now().UTC()}}
	finish := func(err error) (*Report, error) {
		t.add(func(r *Report) { r.DurationMS = time.Since(start).Milliseconds() })
		rep := t.snapshot()
		switch {
		case err != nil:
			s.log.ErrorContext(ctx, "sweep failed", append(rep.LogAttrs(), "err", err)...)
		case rep.Skipped:
			s.log.InfoContext(ctx, "sweep skipped: another sweep holds the lease", rep.LogAttrs()...)
		default:
			s.log.InfoContext(ctx, "sweep done", rep.LogAttrs()...)
		}
		return rep, err
	}
	if s.err != nil {
		return finish(s.err)
	}
	release, ok, err := s.store.Lease(ctx, s.opts.LeaseName, s.opts.LeaseTTL)
	if err != nil {
		return finish(fmt.Errorf("taking the sweep lease: %w", err))
	}
	if !ok {
		t.add(func(r *Report) { r.Skipped = true })
		return finish(nil)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := release(rctx); err != nil {
			s.log.WarnContext(ctx, "releasing the sweep lease", "err", err)
		}
	}()
	ctx = session.WithActor(ctx, Actor)
	// No new work starts after two thirds of the lease: what has started finishes well
	// before the lease expires and another instance may begin.
	stop, cancel := context.WithTimeout(ctx, s.opts.LeaseTTL*2/3)
	defer cancel()

	now := s.now()
	handled := map[string]bool{}
	err = errors.Join(
		s.expire(ctx, stop, now, t, handled),
		s.pending(ctx, stop, t, handled),
		s.idle(ctx, stop, now, t, handled),
		// After the pending steps were driven, so a step this sweep finished is not named.
		s.stuck(ctx, t),
	)
	// Archives past their retention, after the sessions' own work.
	err = errors.Join(err, s.pruneBackups(stop, now, t))
	// After the sessions' own work: placeholders are capacity for later creates.
	s.warm(stop, t)
	s.ensureGateway(stop, t)
	// After the sessions' own work, so an unreachable Firestore never delays a sleep.
	s.flush(stop, t)
	s.fillPool(stop, t)
	// The lease was taken after start: ending a twelfth of it before start+LeaseTTL ends in time.
	s.reconcileIfDue(ctx, stop, start.Add(s.opts.LeaseTTL-s.opts.LeaseTTL/12), t)
	return finish(err)
}

// pruneBackups removes the archives past the retention (session.Service.PruneBackups) and
// reports them.
func (s *Sweeper) pruneBackups(stop context.Context, now time.Time, t *tally) error {
	select {
	case <-stop.Done(): // the sweep's time is up: the next one prunes
		return nil
	default:
	}
	p, err := s.sessions.PruneBackups(stop, now, s.opts.BackupLimit)
	if p != nil {
		t.add(func(r *Report) {
			r.BackupsRemoved, r.BackupsRemoving, r.BackupsFailed = p.Removed, p.Removing, p.Failed
			if len(p.Removed)+len(p.Removing)+len(p.Failed) >= s.opts.BackupLimit {
				r.LimitReached = append(r.LimitReached, "backups")
			}
		})
		for _, f := range p.Failed {
			s.log.ErrorContext(stop, "removing an archive failed; the next sweep tries again", "backup", f)
		}
	}
	if err != nil {
		t.add(func(r *Report) { r.Errors++ })
		return fmt.Errorf("pruning backups: %w", err)
	}
	return nil
}

// warm keeps the warm path, within the sweep's time. A failure is counted and logged: the
// sessions' work is done, and the next sweep tries again.
func (s *Sweeper) warm(stop context.Context, t *tally) {
	if s.warmer == nil || stop.Err() != nil {
		return
	}
	if err := s.warmer.Warm(stop); err != nil {
		t.add(func(r *Report) { r.Errors++; r.WarmError = err.Error() })
		s.log.ErrorContext(stop, "keeping the warm path; the next sweep tries again", "err", err)
	}
}

// ensureGateway keeps the shared Gateway, within the sweep's time. A failure is counted and
// logged: the routes already attached keep serving, and the next sweep tries again.
func (s *Sweeper) ensureGateway(stop context.Context, t *tally) {
	if s.gateway == nil || stop.Err() != nil {
		return
	}
	if err := s.gateway.EnsureGateway(stop); err != nil {
		t.add(func(r *Report) { r.Errors++; r.GatewayError = err.Error() })
		s.log.ErrorContext(stop, "keeping the gateway; the next sweep tries again", "err", err)
	}
}

// flush writes the queued durable events, within the sweep's time. A failure is counted and
// logged: the queue keeps the events for the next sweep.
func (s *Sweeper) flush(stop context.Context, t *tally) {
	if s.flusher == nil || stop.Err() != nil {
		return
	}
	res, err := s.flusher.Flush(stop)
	if res != nil {
		t.add(func(r *Report) { r.FlushedEvents = res.Written })
	}
	if err != nil {
		t.add(func(r *Report) { r.Errors++ })
		s.log.WarnContext(stop, "flushing queued events; they stay queued for the next sweep", "err", err)
	}
}

// fillPool tops the warm volume pool up, within the sweep's time. A failure is counted and
// logged: creates go the cold way meanwhile, and the next sweep tries again.
func (s *Sweeper) fillPool(stop context.Context, t *tally) {
	if s.pool == nil || stop.Err() != nil {
		return
	}
	if err := s.pool.FillVolumePool(stop); err != nil {
		t.add(func(r *Report) { r.Errors++ })
		s.log.WarnContext(stop, "filling the warm volume pool; the next sweep tries again", "err", err)
	}
}

// reconcileIfDue runs a reconcile when none ran in the last ReconcileEvery, on any instance:
// it takes the due lease for ReconcileEvery and keeps it. A reconcile that could not run
// (another one held its lease, or it failed) gives the due lease back, so the next sweep
// tries again. The reconcile must end before this sweep's lease does.
func (s *Sweeper) reconcileIfDue(ctx, stop context.Context, until time.Time, t *tally) {
	if s.reconciler == nil || stop.Err() != nil {
		return
	}
	release, ok, err := s.store.Lease(ctx, s.opts.ReconcileDueName, s.opts.ReconcileEvery)
	if err != nil {
		t.add(func(r *Report) { r.Errors++ })
		s.log.ErrorContext(ctx, "reading whether a reconcile is due", "err", err)
		return
	}
	if !ok {
		return // one ran within ReconcileEvery
	}
	giveBack := func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := release(rctx); err != nil {
			s.log.WarnContext(ctx, "giving the reconcile-due lease back", "err", err)
		}
	}
	rctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	began := time.Now()
	rep, err := s.reconciler.Reconcile(rctx, false)
	sum := Summarize(rep)
	sum.DurationMS = time.Since(began).Milliseconds() // wall time: the sweep's clock may be a test's
	switch {
	case errors.Is(err, session.ErrBusy):
		sum.Busy = true
		giveBack()
		s.log.InfoContext(ctx, "reconcile due, but another one is running; the next sweep tries again")
	case err != nil:
		sum.Error = err.Error()
		t.add(func(r *Report) { r.Errors++ })
		giveBack()
		s.log.ErrorContext(ctx, "reconcile failed; the next sweep tries again", "err", err)
	}
	t.add(func(r *Report) { r.Reconciled = sum })
}

// forEach runs fn on every id with at most n at a time, starting none after stop is done,
// and waits for all of them. It returns how many ids it did not start.
func forEach(stop context.Context, ids []string, n int, fn func(id string)) int {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	started := 0
loop:
	for _, id := range ids {
		select {
		case <-stop.Done():
			break loop
		case sem <- struct{}{}:
		}
		if stop.Err() != nil {
			<-sem
			break
		}
		started++
		wg.Go(func() {
			defer func() { <-sem }()
			fn(id)
		})
	}
	wg.Wait()
	return len(ids) - started
}

// expire deletes the sessions past their SESSION_TTL through the Service (with their backup
// when the session asks for one).
func (s *Sweeper) expire(ctx, stop context.Context, now time.Time, t *tally, handled map[string]bool) error {
	ids, err := s.store.Expired(ctx, now, s.opts.ExpiredLimit)
	if err != nil {
		t.add(func(r *Report) { r.Errors++ })
		return fmt.Errorf("reading expired sessions: %w", err)
	}
	t.add(func(r *Report) {
		r.Expired = len(ids)
		if len(ids) >= s.opts.ExpiredLimit {
			r.LimitReached = append(r.LimitReached, "expired")
		}
	})
	for _, id := range ids {
		handled[id] = true
	}
	forEach(stop, ids, s.opts.Concurrency, func(id string) { s.expireOne(ctx, id, now, t) })
	return nil
}

// read gets session id's record for the sweep: false when it is gone, or (counted as an
// error and logged as what was being read) when it cannot be read.
func (s *Sweeper) read(ctx context.Context, id, what string, t *tally) (*session.Session, bool) {
	sess, err := s.store.Get(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		return nil, false
	} else if err != nil {
		t.add(func(r *Report) { r.Errors++ })
		s.log.ErrorContext(ctx, "reading "+what, "id", id, "err", err)
		return nil, false
	}
	return sess, true
}

func (s *Sweeper) expireOne(ctx context.Context, id string, now time.Time, t *tally) {
	log := s.log.With("id", id)
	sess, ok := s.read(ctx, id, "an expired session", t)
	if !ok {
		return
	}
	switch sess.State {
	case session.StateDeleted:
		return
	case session.StateDeleting: // a delete under way: drive it
		if err := s.sessions.Advance(ctx, id); err != nil {
			t.add(func(r *Report) { r.Errors++ })
			log.ErrorContext(ctx, "advancing an expired session's delete", "err", err)
			return
		}
		t.add(func(r *Report) { r.Advanced++ })
		return
	}
	if sess.ExpiresAt.IsZero() || sess.ExpiresAt.After(now) {
		// Its ttl changed since the index was read (0: it never expires): leave it.
		log.DebugContext(ctx, "session no longer expired", "expires_at", sess.ExpiresAt)
		return
	}
	switch sess.State {
	case session.StateFailed: // its backup failed: try again, but not every minute
		if since := s.now().Sub(sess.UpdatedAt); since < s.opts.RetryFailedAfter {
			log.DebugContext(ctx, "expired session failed; retrying its delete later", "reason", sess.Reason, "since", since)
			return
		}
	}
	got, err := s.sessions.Delete(ctx, id, session.DeleteOptions{})
	if err != nil {
		if errors.Is(err, session.ErrBusy) {
			log.InfoContext(ctx, "expired session busy; deleting it on a later sweep")
			return
		}
		if sess.State == session.StateFailed && errors.Is(err, session.ErrConflict) {
			t.add(func(r *Report) { r.BackupsExhausted = append(r.BackupsExhausted, id) })
			log.WarnContext(ctx, "expired session kept: its backup failed too often", "reason", sess.Reason, "err", err)
			return
		}
		t.add(func(r *Report) { r.Errors++ })
		log.ErrorContext(ctx, "deleting an expired session", "err", err)
		return
	}
	t.add(func(r *Report) { r.Deleted++ })
	log.InfoContext(ctx, "expired session deleted", "user_id", sess.UserID, "expires_at", sess.ExpiresAt,
		"state", got.State, "pending", got.Pending, "backup", got.BackupLocation)
}

// pending drives forward the pending steps of the sessions that have one.
func (s *Sweeper) pending(ctx, stop context.Context, t *tally, handled map[string]bool) error {
	ids, full, err := s.pendingIDs(ctx)
	if err != nil {
		t.add(func(r *Report) { r.Errors++ })
		return err
	}
	var todo []string
	for _, id := range ids {
		if !handled[id] {
			handled[id] = true
			todo = append(todo, id)
		}
	}
	t.add(func(r *Report) {
		r.Pending = len(todo)
		if full {
			r.LimitReached = append(r.LimitReached, "pending")
		}
	})
	forEach(stop, todo, s.opts.Concurrency, func(id string) {
		if err := s.sessions.Advance(ctx, id); err != nil && !errors.Is(err, session.ErrNotFound) {
			t.add(func(r *Report) { r.Errors++ })
			s.log.ErrorContext(ctx, "advancing a pending step", "id", id, "err", err)
			return
		}
		t.add(func(r *Report) { r.Advanced++ })
	})
	return nil
}

// pendingIDs reads the sessions with a pending step from the store's pending index.
func (s *Sweeper) pendingIDs(ctx context.Context) ([]string, bool, error) {
	ids, err := s.store.Pending(ctx, s.opts.PendingLimit)
	if err != nil {
		return nil, false, fmt.Errorf("reading pending sessions: %w", err)
	}
	return ids, len(ids) >= s.opts.PendingLimit, nil
}

// idle probes the running workspaces whose recorded idle deadline has passed and puts the
// idle ones to sleep.
func (s *Sweeper) idle(ctx, stop context.Context, now time.Time, t *tally, handled map[string]bool) error {
	ids, err := s.store.IdleCandidates(ctx, now, s.opts.IdleLimit)
	if err != nil {
		t.add(func(r *Report) { r.Errors++ })
		return fmt.Errorf("reading idle candidates: %w", err)
	}
	var todo []string
	skipped := 0
	for _, id := range ids {
		if handled[id] {
			skipped++
			continue
		}
		handled[id] = true
		todo = append(todo, id)
	}
	t.add(func(r *Report) {
		r.Candidates = len(ids)
		r.Deferred += skipped
		if len(ids) >= s.opts.IdleLimit {
			r.LimitReached = append(r.LimitReached, "idle")
		}
	})
	if len(ids) >= s.opts.IdleLimit {
		s.log.WarnContext(ctx, "the idle batch is full: more idle candidates wait for the next sweeps", "limit", s.opts.IdleLimit)
	}
	var addrs map[string]string
	if s.podProber != nil && len(todo) > 0 {
		// one list for the whole batch, never a read per candidate, within the sweep's time
		if addrs, err = s.pods.WorkspacePodIPs(stop); err != nil {
			t.add(func(r *Report) { r.Errors++; r.Deferred += len(todo) })
			return fmt.Errorf("listing the workspace pods to probe: %w", err)
		}
	}
	left := forEach(stop, todo, s.opts.Concurrency, func(id string) { s.idleOne(ctx, id, addrs, t) })
	if left > 0 {
		t.add(func(r *Report) { r.Deferred += left })
		s.log.WarnContext(ctx, "sweep out of time: candidates left for the next sweep", "left", left)
	}
	return nil
}

// idleAt reports whether sess is idle at now: its newest recorded activity plus its idle
// timeout is at or before now.
func idleAt(sess *session.Session, now time.Time) bool {
	return !sess.LastActivity.Add(sess.IdleTimeout.D()).After(now)
}

// idleOne decides one candidate: probe, then record the heartbeat or put it to sleep. addrs
// are the Ready pods' addresses when the probes need them.
func (s *Sweeper) idleOne(ctx context.Context, id string, addrs map[string]string, t *tally) {
	log := s.log.With("id", id)
	sess, ok := s.read(ctx, id, "an idle candidate", t)
	if !ok {
		return
	}
	timeout := sess.IdleTimeout.D()
	if sess.State != session.StateRunning || timeout <= 0 {
		// creating or waking: no code-server to ask yet; its pending step moves it
		t.add(func(r *Report) { r.Deferred++ })
		return
	}
	if !idleAt(sess, s.now()) { // activity was recorded since the index was read
		t.add(func(r *Report) { r.KeptActive++ })
		return
	}

	ip := addrs[id]
	if s.podProber != nil && ip == "" {
		// running by its record, but no Ready pod to ask (starting, restarting, going away):
		// like a workspace that is not running yet, left for a later sweep
		t.add(func(r *Report) { r.Deferred++ })
		log.DebugContext(ctx, "no ready pod to probe; left for a later sweep")
		return
	}
	pctx, cancel := context.WithTimeout(ctx, s.opts.ProbeTimeout)
	hb, err := s.probe(pctx, id, ip)
	cancel()
	t.add(func(r *Report) { r.Probed++ })
	if err != nil {
		reason := ReasonOf(err)
		t.add(func(r *Report) {
			r.ProbeErrors++
			if r.ProbeErrorsBy == nil {
				r.ProbeErrorsBy = map[string]int{}
			}
			r.ProbeErrorsBy[reason]++
		})
		log.WarnContext(ctx, "probe failed; the workspace stays awake", "reason", reason, "err", err,
			"last_activity", sess.LastActivity)
		s.backOff(ctx, id, log)
		return
	}

	now := s.now()
	reason, until := decide(sess, hb.Last, now)
	if reason == "" {
		t.add(func(r *Report) { r.KeptActive++ })
		// Not probed again before either tier can apply. The index takes deadlines strictly
		// before a sweep's time, and the rule applies at until itself: a millisecond earlier.
		if err := s.store.DeferIdle(ctx, id, until.Add(-time.Millisecond)); err != nil {
			log.WarnContext(ctx, "deferring the idle deadline of a connected workspace; it is probed again next sweep", "err", err)
		}
		log.DebugContext(ctx, "workspace connected", "heartbeat", hb.Last, "status", hb.Status, "until", until)
		return
	}
	s.sleep(ctx, sess, hb, now, reason, t, log)
}

// decide applies the idle rule to a candidate whose heartbeat is last: the reason to put it to
// sleep, or "" and when to look at it again. A heartbeat from the future (a pod clock ahead of
// ours) counts as now: it must not keep a workspace awake for ever.
func decide(sess *session.Session, last, now time.Time) (session.SleepReason, time.Time) {
	if last.After(now) {
		last = now
	}
	connectedUntil := last.Add(sess.IdleTimeout.D())
	if !connectedUntil.After(now) {
		return session.SleepIdle, time.Time{}
	}
	if capAt := sess.LastActivity.Add(sess.IdleConnectedMax.D()); sess.IdleConnectedMax > 0 {
		if !capAt.After(now) {
			return session.SleepConnectedCap, time.Time{}
		}
		if capAt.Before(connectedUntil) {
			return "", capAt
		}
	}
	return "", connectedUntil
}

// probe asks session id's code-server for its heartbeat, at its pod's address ip when the
// prober needs one.
func (s *Sweeper) probe(ctx context.Context, id, ip string) (Heartbeat, error) {
	if s.podProber != nil {
		return s.podProber.ProbePod(ctx, id, ip)
	}
	return s.prober.Probe(ctx, id)
}

// sleep puts an idle workspace to sleep for reason through the Service, which looks at its
// record again under its lock.
func (s *Sweeper) sleep(ctx context.Context, sess *session.Session, hb Heartbeat, now time.Time, reason session.SleepReason, t *tally, log *slog.Logger) {
	id := sess.ID
	slept, err := s.sessions.SleepIfIdle(ctx, id, now, reason)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return
	case errors.Is(err, session.ErrBusy), errors.Is(err, session.ErrConflict):
		t.add(func(r *Report) { r.Deferred++ })
		log.InfoContext(ctx, "idle workspace busy; left for a later sweep", "err", err)
		return
	case err != nil:
		t.add(func(r *Report) { r.Errors++ })
		log.ErrorContext(ctx, "putting an idle workspace to sleep", "err", err)
		return
	case !slept:
		t.add(func(r *Report) { r.KeptActive++ })
		return
	}
	t.add(func(r *Report) {
		r.Slept++
		if reason == session.SleepConnectedCap {
			r.SleptConnected++
		}
	})
	log.InfoContext(ctx, "idle workspace put to sleep", "user_id", sess.UserID, "reason", reason,
		"last_activity", sess.LastActivity, "heartbeat", hb.Last, "idle_timeout", sess.IdleTimeout.D(),
		"idle_connected_max", sess.IdleConnectedMax.D())
}

// backOff leaves a workspace whose probe failed unprobed for ProbeBackoff.
func (s *Sweeper) backOff(ctx context.Context, id string, log *slog.Logger) {
	if err := s.store.DeferIdle(ctx, id, s.now().Add(s.opts.ProbeBackoff)); err != nil {
		log.WarnContext(ctx, "deferring the next probe", "err", err)
	}
}
