package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/reconcile"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// Toucher records client activity on a session: the newest activity becomes now, which moves
// its idle deadline. *session.Service implements it. When Deps.Manager implements it,
// POST /session/{uuid}/activity calls it; otherwise that route answers 501.
type Toucher interface {
	Touch(ctx context.Context, id string) (*session.Session, error)
}

// UsageReporter answers the usage report (*events.Recorder).
type UsageReporter interface {
	Usage(ctx context.Context, q events.UsageQuery) (*events.UsageReport, error)
}

// Reconciler runs one reconcile, once at a time across instances: a concurrent call returns
// an error wrapping session.ErrBusy (*sweep.ReconcileRunner).
type Reconciler interface {
	Reconcile(ctx context.Context, dryRun bool) (*reconcile.Report, error)
}

// reconcileRetryAfter is what a 409 busy from POST /reconcile asks the caller to wait: a
// reconcile takes seconds to minutes, not the second a session's lock does.
const reconcileRetryAfter = 10 * time.Second

// usageReport serves GET /usage?user_id=&from=&to= (RFC 3339 times; from required, before to,
// to defaulting to now, at most events.MaxUsageWindow apart). 501
// when the control plane has no durable records (Firestore, GOOGLE_CLOUD_PROJECT): retrying
// cannot help, which a 503 would suggest.
func (s *Server) usageReport(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "user_id", "from", "to")
	if err != nil {
		return err
	}
	uq, err := usageQuery(q, s.now())
	if err != nil {
		return err
	}
	if s.usage == nil {
		return session.Unimplemented("the usage report needs durable records: set GOOGLE_CLOUD_PROJECT (Firestore) on the control plane")
	}
	rep, err := s.usage.Usage(r.Context(), uq)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, rep)
	return nil
}

// reconcileNow serves POST /reconcile (?dry_run=true changes nothing): 200 with the report;
// 409 busy while another reconcile runs, on any instance.
func (s *Server) reconcileNow(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "dry_run")
	if err != nil {
		return err
	}
	dry, err := queryBool(q, "dry_run")
	if err != nil {
		return err
	}
	if err := s.noBody(w, r); err != nil {
		return err
	}
	if s.reconciler == nil {
		return session.Unimplemented("this control plane was built without reconcile")
	}
	rep, err := s.reconciler.Reconcile(r.Context(), dry)
	if errors.Is(err, session.ErrBusy) {
		return &wire.Error{Code: string(session.KindBusy), RetryAfter: reconcileRetryAfter,
			Message: "another reconcile is running; retry when it is done"}
	}
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, rep)
	return nil
}

// sweepNow serves POST /sweep through the sweep's own handler, which authenticates the caller
// itself (Cloud Scheduler's OIDC token or an API key), so the route is public here: the API's
// key check would refuse the token, and the per-key limit must not starve the sweep.
func (s *Server) sweepNow(w http.ResponseWriter, r *http.Request) error {
	if s.sweep == nil {
		return session.Unimplemented("this control plane was built without the sweep")
	}
	s.sweep.ServeHTTP(w, r)
	return nil
}

// wakeLinkNow serves POST /session/{uuid}/wake-link: a signed link that wakes the session
// from its address (wake on access). 501 when wake on access is off.
func (s *Server) wakeLinkNow(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if s.wakeLink == nil {
		return session.Unimplemented("wake on access is off (set HYPERBOLA_WAKE_SECRET)")
	}
	if err := s.ownSession(r.Context(), id); err != nil {
		return err
	}
	return s.wakeLink(w, r)
}
