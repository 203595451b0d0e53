package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// testClock is a clock the test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// countingHealth reports the checks in result and counts its calls.
type countingHealth struct {
	calls  atomic.Int32
	result func() map[string]error
}

func (h *countingHealth) Check(context.Context) map[string]error {
	h.calls.Add(1)
	return h.result()
}

func newHealthServer(t *testing.T, h HealthChecker, clock *testClock, opts Options) *testServer {
	t.Helper()
	ts := newBareServer()
	ts.Server = ts.serve(manager{ts.spy}, Deps{Health: h, Now: clock.Now}, opts)
	return ts
}

// TestLivenessAsksNothing: GET /health is 200 {"status":"ok"} without a key, whatever the
// dependencies say, and never asks them.
func TestLivenessAsksNothing(t *testing.T) {
	h := &countingHealth{result: func() map[string]error { return map[string]error{"redis": errors.New("down")} }}
	ts := newHealthServer(t, h, &testClock{t: sessiontest.Epoch}, Options{})
	w := ts.do(t, req{method: "GET", target: "/health", noKey: true})
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"status":"ok"}` {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if n := h.calls.Load(); n != 0 {
		t.Fatalf("liveness asked the dependencies %d times", n)
	}
	if w := ts.do(t, req{method: "GET", target: "/health?verbose=1", noKey: true}); w.Code != 400 {
		t.Fatalf("an unknown parameter: %d", w.Code)
	}
}

// TestReadinessCached: GET /ready answers the checks, 503 naming the failed ones (their
// details in the log only), and asks the dependencies again only once its answer is older
// than ReadyCacheTTL.
func TestReadinessCached(t *testing.T) {
	var kubeErr atomic.Pointer[error]
	h := &countingHealth{result: func() map[string]error {
		out := map[string]error{"redis": nil, "kubernetes": nil}
		if e := kubeErr.Load(); e != nil {
			out["kubernetes"] = *e
		}
		return out
	}}
	clock := &testClock{t: sessiontest.Epoch}
	ts := newHealthServer(t, h, clock, Options{ReadyCacheTTL: 2 * time.Second})
	ready := func() *httptest.ResponseRecorder { return ts.do(t, req{method: "GET", target: "/ready", noKey: true}) }

	w := ready()
	var body HealthResponse
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 200 || body.Status != "ok" ||
		body.Checks["redis"] != "ok" || body.Checks["kubernetes"] != "ok" {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	down := errors.New("dial 10.0.0.3: refused")
	kubeErr.Store(&down)
	clock.Add(time.Second)
	if w := ready(); w.Code != 200 || h.calls.Load() != 1 {
		t.Fatalf("within the TTL: %d, %d checks", w.Code, h.calls.Load())
	}
	clock.Add(time.Second)
	w = ready()
	e := errorOf(t, w)
	if w.Code != 503 || h.calls.Load() != 2 || e.Status != "unavailable" || e.Checks["kubernetes"] != "unavailable" ||
		e.Checks["redis"] != "ok" || !strings.Contains(e.Error.Message, "kubernetes") || w.Header().Get("Retry-After") != "5" ||
		strings.Contains(w.Body.String(), "10.0.0.3") {
		t.Fatalf("%d after %d checks: %s", w.Code, h.calls.Load(), w.Body.String())
	}
	if !strings.Contains(ts.log.String(), "10.0.0.3") {
		t.Fatalf("the failure's detail is not in the log: %s", ts.log.String())
	}
	// a failure is cached as well: a flood during an outage does not add to it
	if w := ready(); w.Code != 503 || h.calls.Load() != 2 {
		t.Fatalf("a cached failure: %d, %d checks", w.Code, h.calls.Load())
	}
}

// TestReadinessCoalesces: callers that arrive while a check runs wait for it; one check
// answers them all, and a waiter whose request ends gets its own context's error.
func TestReadinessCoalesces(t *testing.T) {
	const callers = 8
	started, release := make(chan struct{}), make(chan struct{})
	h := &countingHealth{result: func() map[string]error {
		close(started)
		<-release
		return map[string]error{"redis": nil}
	}}
	rd := &readiness{health: h, ttl: time.Minute, timeout: time.Minute, now: time.Now,
		logf: func(context.Context, string, error) {}}
	results := make(chan readyResult, callers)
	go func() {
		res, err := rd.result(context.Background())
		if err != nil {
			t.Error(err)
		}
		results <- res
	}()
	<-started
	for range callers - 1 {
		go func() {
			res, err := rd.result(context.Background())
			if err != nil {
				t.Error(err)
			}
			results <- res
		}()
	}
	gone, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() {
		_, err := rd.result(gone)
		left <- err
	}()
	waitFor(t, func() bool { rd.mu.Lock(); defer rd.mu.Unlock(); return rd.waiting == callers })
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("a waiter that went away: %v", err)
	}
	close(release)
	for range callers {
		if res := <-results; res.checks["redis"] != "ok" {
			t.Fatalf("%+v", res)
		}
	}
	if n := h.calls.Load(); n != 1 {
		t.Fatalf("%d callers made %d checks", callers, n)
	}
}

// waitFor yields until cond holds (it watches state another goroutine changes under a lock).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		runtime.Gosched()
	}
}
