package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// ListResponse is GET /sessions' answer.
type ListResponse struct {
	Sessions   []*session.Session `json:"sessions"`
	Count      int                `json:"count"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

// AppendJSON is encoding/json's output for the list (wire.JSONAppender), without reflection.
func (l ListResponse) AppendJSON(b []byte) ([]byte, error) {
	b = slices.Grow(b, 64+1024*len(l.Sessions)) // a session is under 1 KiB as a rule
	b = append(b, `{"sessions":`...)
	if l.Sessions == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range l.Sessions {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = s.AppendJSON(b); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(l.Count), 10)
	if l.NextCursor != "" {
		b = append(b, `,"next_cursor":`...)
		nc, err := json.Marshal(l.NextCursor)
		if err != nil {
			return nil, err
		}
		b = append(b, nc...)
	}
	return append(b, '}'), nil
}

// The session routes. Each reads its input (decode.go), calls the Manager, counts the
// outcome and answers; errors go back to the router's one error writer.

func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	req, err := s.createInput(w, r)
	if err != nil {
		return err
	}
	if err := s.scopeCreate(r.Context(), &req); err != nil {
		return err
	}
	sess, _, err := s.operate("create_accepted", &s.metrics.created, func(ctx context.Context) (*session.Session, error) {
		return s.m.Create(ctx, req)
	}, r)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/session/"+sess.ID+"/status")
	wire.WriteJSON(w, http.StatusCreated, sess)
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	id, q, err := sessionInput(r, "wait")
	if err != nil {
		return err
	}
	wait, err := queryWait(q)
	if err != nil {
		return err
	}
	start := s.now()
	sess, err := s.m.Get(r.Context(), id)
	if err != nil {
		return err
	}
	if p := PrincipalOf(r.Context()); p != nil {
		if err := owned(p, sess, id); err != nil {
			return err
		}
	}
	if wait > 0 && sess.Starting() { // the caller's own session: now it may wait on it
		if sess, err = s.m.Await(r.Context(), id, wait); err != nil {
			return err
		}
	}
	s.observeReady(sess, start)
	wire.WriteJSON(w, http.StatusOK, sess)
	return nil
}

func (s *Server) sleep(w http.ResponseWriter, r *http.Request) error {
	return s.transition(w, r, "sleep", &s.metrics.slept, s.m.Sleep)
}

func (s *Server) wake(w http.ResponseWriter, r *http.Request) error {
	return s.transition(w, r, "wake_accepted", &s.metrics.woken, s.m.Wake)
}

// transition serves sleep and wake: 200 with the session.
func (s *Server) transition(w http.ResponseWriter, r *http.Request, phase string, counter *int64Counter,
	fn func(ctx context.Context, id string) (*session.Session, error)) error {
	id, err := s.bareInput(w, r)
	if err != nil {
		return err
	}
	if err := s.ownSession(r.Context(), id); err != nil {
		return err
	}
	sess, start, err := s.operate(phase, counter, func(ctx context.Context) (*session.Session, error) {
		return fn(ctx, id)
	}, r)
	if err != nil {
		return err
	}
	s.observeReady(sess, start)
	wire.WriteJSON(w, http.StatusOK, sess)
	return nil
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) error {
	id, req, err := s.updateInput(w, r)
	if err != nil {
		return err
	}
	if err := s.ownSession(r.Context(), id); err != nil {
		return err
	}
	sess, _, err := s.operate("update", &s.metrics.updated, func(ctx context.Context) (*session.Session, error) {
		return s.m.Update(ctx, id, req)
	}, r)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, sess)
	return nil
}

// delete answers 202 while the backup runs, 200 once the session is deleted.
func (s *Server) delete(w http.ResponseWriter, r *http.Request) error {
	id, opts, err := s.deleteInput(w, r)
	if err != nil {
		return err
	}
	if err := s.ownSession(r.Context(), id); err != nil {
		return err
	}
	sess, _, err := s.operate("delete_accepted", &s.metrics.deleted, func(ctx context.Context) (*session.Session, error) {
		return s.m.Delete(ctx, id, opts)
	}, r)
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if sess.State == session.StateDeleted {
		status = http.StatusOK
	}
	wire.WriteJSON(w, status, sess)
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	opts, err := listInput(r)
	if err != nil {
		return err
	}
	p := PrincipalOf(r.Context())
	out := ListResponse{Sessions: []*session.Session{}}
	if scopeList(p, &opts.UserID) {
		res, err := s.m.List(r.Context(), opts)
		if err != nil {
			return err
		}
		out.NextCursor = res.NextCursor
		for _, sess := range res.Sessions {
			if p.Allows(sess.UserID) {
				out.Sessions = append(out.Sessions, sess)
			}
		}
	}
	out.Count = len(out.Sessions)
	wire.WriteJSON(w, http.StatusOK, out)
	return nil
}

// operate runs one change through the Manager with r's context; a success is counted and its
// phase timed. It returns when the call started.
func (s *Server) operate(phase string, counter *int64Counter, call func(ctx context.Context) (*session.Session, error),
	r *http.Request) (*session.Session, time.Time, error) {
	start := s.now()
	sess, err := call(r.Context())
	if err != nil {
		return nil, start, err
	}
	s.metrics.phase(phase, s.now().Sub(start))
	s.metrics.count(counter)
	return sess, start, nil
}

// observeReady records how long a session took to turn running, when this request saw it
// turn (its record was written during the request).
func (s *Server) observeReady(sess *session.Session, start time.Time) {
	if sess == nil || sess.State != session.StateRunning || sess.UpdatedAt.Before(start) {
		return
	}
	// Wake sets LastActivity to the wake's start; a created session's activity starts at CreatedAt.
	if sess.LastActivity.Sub(sess.CreatedAt) > time.Second {
		s.metrics.phase("wake_to_running", sess.UpdatedAt.Sub(sess.LastActivity))
		return
	}
	s.metrics.phase("create_to_running", sess.UpdatedAt.Sub(sess.CreatedAt))
}
