package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/reconcile"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
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

// ActivityResponse is POST /session/{uuid}/activity's answer.
type ActivityResponse struct {
	ID           string    `json:"uuid"`
	LastActivity time.Time `json:"last_activity"`
}

// reconcileRetryAfter is what a 409 busy from POST /reconcile asks the caller to wait: a
// reconcile takes seconds to minutes, not the second a session's lock does.
const reconcileRetryAfter = 10 * time.Second

// unimplemented is the 501 of a route whose part this control plane was built without.
func unimplemented(msg string) error {
	return &HTTPError{Status: http.StatusNotImplemented, Code: CodeUnimplemented, Message: msg}
}

// activity serves POST /session/{uuid}/activity: the client saw its user active. 200 with the
// session's id and newest activity; 404 unknown; 409 deleting or deleted.
func (s *Server) activity(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	if err := s.decode(w, r, &struct{}{}, false); err != nil {
		return err
	}
	t, ok := s.m.(Toucher)
	if !ok {
		return unimplemented("this control plane's session manager does not record activity")
	}
	sess, err := t.Touch(r.Context(), id)
	if err != nil {
		return err
	}
	s.metrics.count(&s.metrics.touched)
	writeJSON(w, http.StatusOK, ActivityResponse{ID: sess.ID, LastActivity: sess.LastActivity.UTC()})
	return nil
}

// usageReport serves GET /usage?user_id=&from=&to= (RFC 3339 times; from before to). 501
// when the control plane has no durable records (Firestore, GOOGLE_CLOUD_PROJECT): retrying
// cannot help, which a 503 would suggest.
func (s *Server) usageReport(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "user_id", "from", "to")
	if err != nil {
		return err
	}
	var uq events.UsageQuery
	if v, ok := q["user_id"]; ok {
		if err := session.CheckUserID(v); err != nil {
			return err
		}
		uq.UserID = v
	}
	if uq.From, err = queryTime(q, "from"); err != nil {
		return err
	}
	if uq.To, err = queryTime(q, "to"); err != nil {
		return err
	}
	if !uq.From.IsZero() && !uq.To.IsZero() && !uq.From.Before(uq.To) {
		return badRequest("from", "from (%s) must be before to (%s)", uq.From.Format(time.RFC3339), uq.To.Format(time.RFC3339))
	}
	if s.usage == nil {
		return unimplemented("the usage report needs durable records: set GOOGLE_CLOUD_PROJECT (Firestore) on the control plane")
	}
	rep, err := s.usage.Usage(r.Context(), uq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// queryTime reads an RFC 3339 time from the query (the zero time when absent). A "+" of an
// offset that was not escaped arrives as a space and is read as the "+" it was.
func queryTime(q map[string]string, field string) (time.Time, error) {
	v, ok := q[field]
	if !ok {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil && strings.Count(v, " ") == 1 {
		t, err = time.Parse(time.RFC3339, strings.Replace(v, " ", "+", 1))
	}
	if err != nil {
		return time.Time{}, badRequest(field, "%s must be an RFC 3339 time such as 2026-01-31T00:00:00Z (escape a + offset as %%2B)", field)
	}
	return t.UTC(), nil
}

// reconcileNow serves POST /reconcile (?dry_run=true changes nothing): 200 with the report;
// 409 busy while another reconcile runs, on any instance.
func (s *Server) reconcileNow(w http.ResponseWriter, r *http.Request) error {
	q, err := query(r, "dry_run")
	if err != nil {
		return err
	}
	dry := false
	if v, ok := q["dry_run"]; ok {
		if dry, err = strconv.ParseBool(v); err != nil {
			return badRequest("dry_run", "dry_run must be true or false")
		}
	}
	if err := s.decode(w, r, &struct{}{}, false); err != nil {
		return err
	}
	if s.reconciler == nil {
		return unimplemented("this control plane was built without reconcile")
	}
	rep, err := s.reconciler.Reconcile(r.Context(), dry)
	if errors.Is(err, session.ErrBusy) {
		return &HTTPError{Status: http.StatusConflict, Code: string(session.KindBusy), RetryAfter: reconcileRetryAfter,
			Message: "another reconcile is running; retry when it is done"}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// sweepNow serves POST /sweep through the sweep's own handler, which authenticates the caller
// itself (Cloud Scheduler's OIDC token or an API key), so the route is public here: the API's
// key check would refuse the token, and the per-key limit must not starve the sweep.
func (s *Server) sweepNow(w http.ResponseWriter, r *http.Request) error {
	if s.sweep == nil {
		return unimplemented("this control plane was built without the sweep")
	}
	s.sweep.ServeHTTP(w, r)
	return nil
}

// wakeLinkNow serves POST /session/{uuid}/wake-link: a signed link that wakes the session
// from its address (wake on access). 501 when wake on access is off.
func (s *Server) wakeLinkNow(w http.ResponseWriter, r *http.Request) error {
	if _, err := pathID(r); err != nil {
		return err
	}
	if s.wakeLink == nil {
		return unimplemented("wake on access is off (set HYPERBOLA_WAKE_SECRET)")
	}
	return s.wakeLink(w, r)
}
