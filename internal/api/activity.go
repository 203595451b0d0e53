package api

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// The activity routes: real use of a workspace, reported by its IDE extension with the
// session's activity credential (or by any client with a key), and the state the extension
// times its going-to-sleep notice by. Both admit admin, tenant (its users' sessions) and the
// activity credential of that one session (another session is a 404, as a missing one).

// ActivityResponse is the answer of POST and GET /session/{uuid}/activity: the session's
// newest activity, its two idle limits and the deadlines they make, and the server's clock,
// which the extension times its notice by (sleep_at - now), never by its own.
type ActivityResponse struct {
	ID               string           `json:"uuid"`
	LastActivity     time.Time        `json:"last_activity"`
	IdleTimeout      session.Duration `json:"idle_timeout"`
	IdleConnectedMax session.Duration `json:"idle_connected_max"`
	// IdleAt is LastActivity + IdleTimeout: past it, a workspace without a connected tab
	// sleeps at the next sweep. Absent when IdleTimeout is 0.
	IdleAt *time.Time `json:"idle_at,omitempty"`
	// SleepAt is LastActivity + IdleConnectedMax: the sweep puts the workspace to sleep at its
	// first run at or after it, even with a tab open. Absent when either limit is 0.
	SleepAt *time.Time `json:"sleep_at,omitempty"`
	Now     time.Time  `json:"now"`
}

// activityResponse is sess's activity state at now.
func activityResponse(sess *session.Session, now time.Time) ActivityResponse {
	last := sess.LastActivity.UTC()
	out := ActivityResponse{ID: sess.ID, LastActivity: last, IdleTimeout: sess.IdleTimeout,
		IdleConnectedMax: sess.IdleConnectedMax, Now: now.UTC()}
	if sess.IdleTimeout > 0 {
		at := last.Add(sess.IdleTimeout.D())
		out.IdleAt = &at
		if sess.IdleConnectedMax > 0 {
			at := last.Add(sess.IdleConnectedMax.D())
			out.SleepAt = &at
		}
	}
	return out
}

// activity serves POST /session/{uuid}/activity: the caller saw the workspace used. The body
// is empty, {} or {"kind": one of activity.Kinds} (empty: activity.KindAPI); the kind is
// counted (hyperbola_activity_reports_total), every kind moves the last activity to now.
// 200 with the activity state; 404 unknown (or another session's credential); 409 deleting
// or deleted.
func (s *Server) activity(w http.ResponseWriter, r *http.Request) error {
	id, kind, err := s.activityInput(w, r)
	if err != nil {
		return err
	}
	t, ok := s.m.(Toucher)
	if !ok {
		return session.Unimplemented("this control plane's session manager does not record activity")
	}
	if err := s.ownSession(r.Context(), id); err != nil {
		return err
	}
	sess, err := t.Touch(r.Context(), id)
	if err != nil {
		return err
	}
	s.metrics.count(&s.metrics.touched)
	s.metrics.activityReport(kind)
	wire.WriteJSON(w, http.StatusOK, activityResponse(sess, s.now()))
	return nil
}

// activityState serves GET /session/{uuid}/activity: the activity state, changing nothing.
// 404 unknown (or another session's credential); 409 deleting or deleted, as a report.
func (s *Server) activityState(w http.ResponseWriter, r *http.Request) error {
	id, _, err := sessionInput(r)
	if err != nil {
		return err
	}
	p := PrincipalOf(r.Context())
	if err := ownCredential(p, id); err != nil {
		return err
	}
	sess, err := s.m.Get(r.Context(), id)
	if err != nil {
		return err
	}
	if p != nil {
		if err := owned(p, sess, id); err != nil {
			return err
		}
	}
	if sess.State == session.StateDeleting || sess.State == session.StateDeleted {
		return session.Conflict("session %s is %s", id, sess.State)
	}
	wire.WriteJSON(w, http.StatusOK, activityResponse(sess, s.now()))
	return nil
}

// activityInput reads POST /session/{uuid}/activity: no query, a body that is empty, {} or
// {"kind": ...} with a known kind (400 naming "kind" otherwise).
func (s *Server) activityInput(w http.ResponseWriter, r *http.Request) (string, string, error) {
	id, _, err := sessionInput(r)
	if err != nil {
		return "", "", err
	}
	var rep activity.Report
	if err := s.decode(w, r, &rep, false); err != nil {
		return "", "", err
	}
	if rep.Kind == "" {
		return id, activity.KindAPI, nil
	}
	if !slices.Contains(activity.Kinds, rep.Kind) {
		return "", "", session.Invalid("kind", "kind must be one of %s", strings.Join(activity.Kinds, ", "))
	}
	return id, rep.Kind, nil
}
