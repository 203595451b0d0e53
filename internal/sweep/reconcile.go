package sweep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/reconcile"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Flusher writes the durable events queued while Firestore could not take them
// (*events.Recorder).
type Flusher interface {
	Flush(ctx context.Context) (*events.FlushResult, error)
}

// Reconciler runs one reconcile (internal/reconcile). *ReconcileRunner implements it: one run
// at a time across instances, a concurrent call answered with a session.ErrBusy error.
type Reconciler interface {
	Reconcile(ctx context.Context, dryRun bool) (*reconcile.Report, error)
}

// Leaser takes a global lease without waiting (*store.Store).
type Leaser interface {
	Lease(ctx context.Context, name string, ttl time.Duration) (release func(context.Context) error, ok bool, err error)
}

// Defaults of ReconcileRunner.
const (
	// ReconcileLeaseName names the lease every reconcile holds, whoever runs it (POST
	// /reconcile, the sweep).
	ReconcileLeaseName = "reconcile"
	// DefaultReconcileLeaseTTL is how long a reconcile holds its lease at most; a run is given
	// five sixths of it, so it ends before the lease can pass to another instance.
	DefaultReconcileLeaseTTL = 5 * time.Minute
)

// ReconcileRunner runs reconcile.Reconcile once at a time across instances: each run holds
// the store's lease ReconcileLeaseName, and a run that finds it taken does nothing and
// returns a session.ErrBusy error. It keeps no state between runs.
type ReconcileRunner struct {
	deps     reconcile.Deps
	opts     reconcile.Options
	leases   Leaser
	leaseTTL time.Duration
	log      *slog.Logger
}

var _ Reconciler = (*ReconcileRunner)(nil)

// NewReconcileRunner returns a runner of reconcile.Reconcile(deps, opts) serialized by leases.
// A leaseTTL of 0 is DefaultReconcileLeaseTTL.
func NewReconcileRunner(deps reconcile.Deps, leases Leaser, opts reconcile.Options, leaseTTL time.Duration) *ReconcileRunner {
	if leaseTTL <= 0 {
		leaseTTL = DefaultReconcileLeaseTTL
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	return &ReconcileRunner{deps: deps, opts: opts, leases: leases, leaseTTL: leaseTTL, log: log.With("component", "reconcile")}
}

// errReconcileBusy is what a run that finds the lease taken returns.
var errReconcileBusy = &session.Error{Kind: session.KindBusy, Message: "another reconcile is running; retry when it is done"}

// Reconcile runs once (changing nothing when dryRun), holding the lease. It returns an error
// wrapping session.ErrBusy when another run holds it, a session.ErrUnavailable one when the
// lease or the cluster cannot be read; what failed for single sessions is in the report.
func (r *ReconcileRunner) Reconcile(ctx context.Context, dryRun bool) (*reconcile.Report, error) {
	release, ok, err := r.leases.Lease(ctx, ReconcileLeaseName, r.leaseTTL)
	if err != nil {
		return nil, fmt.Errorf("taking the reconcile lease: %w", asUnavailable("redis", err))
	}
	if !ok {
		return nil, errReconcileBusy
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := release(rctx); err != nil {
			r.log.WarnContext(ctx, "releasing the reconcile lease", "err", err)
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, r.leaseTTL-r.leaseTTL/6)
	defer cancel()
	opts := r.opts
	opts.DryRun = dryRun
	rep, err := reconcile.Reconcile(rctx, r.deps, opts)
	if err != nil {
		return nil, asUnavailable("kubernetes", err)
	}
	return rep, nil
}

// asUnavailable keeps a session error's kind and makes any other error a dependency failure.
func asUnavailable(what string, err error) error {
	var se *session.Error
	if errors.As(err, &se) {
		return err
	}
	return session.Unavailable(what, err)
}

// ReconcileSummary is the sweep report's account of the reconcile it ran: the counts of
// reconcile.Report's lists.
type ReconcileSummary struct {
	// Busy: another reconcile held the lease; this sweep did not run one (the next sweep
	// tries again).
	Busy bool `json:"busy,omitempty"`
	// Error: the reconcile could not run (the next sweep tries again).
	Error          string `json:"error,omitempty"`
	Observed       int    `json:"observed"`
	FlushedEvents  int    `json:"flushed_events"`
	PendingEvents  int    `json:"pending_events"`
	Rebuilt        int    `json:"rebuilt"`
	Repaired       int    `json:"repaired"`
	Adopted        int    `json:"adopted"`
	Removed        int    `json:"removed"`
	BackupsStarted int    `json:"backups_started"`
	BackupsPending int    `json:"backups_pending"`
	Backfilled     int    `json:"backfilled"`
	Vanished       int    `json:"vanished"`
	Skipped        int    `json:"skipped"`
	Errors         int    `json:"errors"`
	DurationMS     int64  `json:"duration_ms"`
}

// Summarize counts rep's lists.
func Summarize(rep *reconcile.Report) *ReconcileSummary {
	if rep == nil {
		return &ReconcileSummary{}
	}
	return &ReconcileSummary{
		Observed: rep.Observed, FlushedEvents: rep.FlushedEvents, PendingEvents: rep.PendingEvents,
		Rebuilt: len(rep.Rebuilt), Repaired: len(rep.Repaired), Adopted: len(rep.Adopted), Removed: len(rep.Removed),
		BackupsStarted: len(rep.BackupsStarted), BackupsPending: len(rep.BackupsPending),
		Backfilled: len(rep.Backfilled), Vanished: len(rep.Vanished), Skipped: len(rep.Skipped),
		Errors: len(rep.Errors), DurationMS: rep.FinishedAt.Sub(rep.StartedAt).Milliseconds(),
	}
}
