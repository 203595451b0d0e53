package api

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// healthRetryAfter is what a failed readiness check asks a prober to wait.
const healthRetryAfter = 5 * time.Second

// LiveResponse is GET /health's answer: the process serves requests.
type LiveResponse struct {
	Status string `json:"status"`
}

// HealthResponse is GET /ready's answer when every dependency is reachable.
type HealthResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// livez serves GET /health (no API key), liveness: 200 {"status":"ok"} whenever the process
// can answer at all. It asks no dependency, so a Redis or cluster outage never makes a
// platform restart healthy instances (that is what /ready is for).
func (s *Server) livez(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, LiveResponse{Status: "ok"})
	return nil
}

// readyz serves GET /ready (no API key), readiness: 200 {"status":"ok","checks":{...}} or 503
// naming the dependencies that failed. The answer comes from readiness (cached, one check at a
// time); the failures' details go to the log, not to the caller.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	res, err := s.ready.result(r.Context())
	if err != nil {
		return err
	}
	if len(res.failed) > 0 {
		return &wire.Error{Code: string(session.KindUnavailable), Message: strings.Join(res.failed, ", ") + " unavailable",
			Checks: res.checks, RetryAfter: healthRetryAfter}
	}
	wire.WriteJSON(w, http.StatusOK, HealthResponse{Status: "ok", Checks: res.checks})
	return nil
}

// readiness runs the dependency checks at most once per ttl for the Server: an answer younger
// than ttl is served again, and callers that arrive while a check runs wait for that check
// instead of starting their own (a flood of /ready costs one Redis PING and one kube /readyz
// per ttl, not one per request, and never competes with creates for the kube client's rate).
// The check runs in the request of the caller that started it, so nothing outlives a request.
type readiness struct {
	health  HealthChecker
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time
	logf    func(ctx context.Context, name string, err error)

	mu      sync.Mutex
	last    readyResult // valid when !last.at.IsZero()
	running *readyCall  // the check under way, nil when none
	waiting int         // callers waiting for running (the tests watch it)
}

var errReadyAborted = errors.New("the readiness check it waited for did not finish")

// readyResult is one check's outcome.
type readyResult struct {
	at     time.Time
	checks map[string]string // name → "ok" or "unavailable"; shared, never written after the check
	failed []string          // the failed names, sorted
}

// readyCall is a check under way: done closes once res is set.
type readyCall struct {
	done chan struct{}
	res  readyResult
}

// result answers from the cache, from the check under way, or from a new check run here. A
// caller whose request ends while it waits gets its context's error.
func (rd *readiness) result(ctx context.Context) (readyResult, error) {
	rd.mu.Lock()
	if !rd.last.at.IsZero() && rd.now().Sub(rd.last.at) < rd.ttl {
		res := rd.last
		rd.mu.Unlock()
		return res, nil
	}
	if c := rd.running; c != nil {
		rd.waiting++
		rd.mu.Unlock()
		defer func() {
			rd.mu.Lock()
			rd.waiting--
			rd.mu.Unlock()
		}()
		select {
		case <-c.done:
			if c.res.at.IsZero() {
				return readyResult{}, session.Unavailable("health check", errReadyAborted)
			}
			return c.res, nil
		case <-ctx.Done():
			return readyResult{}, ctx.Err()
		}
	}
	c := &readyCall{done: make(chan struct{})}
	rd.running = c
	rd.mu.Unlock()

	// Whatever happens to the check (a panic included), the waiters are let go; a check that
	// did not finish leaves a zero result, which they answer as unavailable.
	defer func() {
		rd.mu.Lock()
		if !c.res.at.IsZero() {
			rd.last = c.res
		}
		rd.running = nil
		rd.mu.Unlock()
		close(c.done)
	}()
	// Not bound to this caller's request: others wait on it, and a caller that hangs up must
	// not fail their answer. The timeout bounds it instead.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rd.timeout)
	defer cancel()
	c.res = rd.check(cctx)
	return c.res, nil
}

// check asks every dependency once.
func (rd *readiness) check(ctx context.Context) readyResult {
	res := readyResult{checks: map[string]string{}}
	if rd.health != nil {
		for name, err := range rd.health.Check(ctx) {
			if err == nil {
				res.checks[name] = "ok"
				continue
			}
			res.checks[name] = "unavailable"
			res.failed = append(res.failed, name)
			rd.logf(ctx, name, err)
		}
	}
	sort.Strings(res.failed)
	res.at = rd.now()
	return res
}
