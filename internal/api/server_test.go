package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

const testKey = "test-key-0123456789"

// seedID is the session every test server holds: user@example.com's, running, 5Gi, backed up
// on delete.
const seedID = "ab12cd34"

// seedSession is a running session as it is after its last transition, created an hour before
// the fakes' clock.
func seedSession(id string) *session.Session {
	at := sessiontest.Epoch.Add(-time.Hour)
	return &session.Session{
		ID: id, UserID: "user@example.com", State: session.StateRunning, WorkspaceURL: session.WorkspaceURL(id, "example.test"),
		Image: "codercom/code-server:4.96.4", Storage: "5Gi", CPU: "250m", Memory: "256Mi",
		IdleTimeout: session.Duration(15 * time.Minute), BackupOnDelete: true,
		CreatedAt: at, UpdatedAt: at, LastActivity: at, ExpiresAt: at.Add(24 * time.Hour),
	}
}

// manager is the Spy seen only as a session.Manager: a server on it has no Toucher.
type manager struct{ session.Manager }

// fakeLimiter admits n requests per key, then refuses.
type fakeLimiter struct {
	mu    sync.Mutex
	n     map[string]int
	keys  []string
	Err   error
	Limit int
}

func (l *fakeLimiter) Allow(_ context.Context, key string, perMinute int) (RateResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Err != nil {
		return RateResult{}, l.Err
	}
	if l.n == nil {
		l.n = map[string]int{}
	}
	l.keys = append(l.keys, key)
	l.n[key]++
	lim := perMinute
	if l.Limit > 0 {
		lim = l.Limit
	}
	if l.n[key] > lim {
		return RateResult{Allowed: false, Limit: lim, RetryAfter: 1500 * time.Millisecond, ResetAfter: time.Minute}, nil
	}
	return RateResult{Allowed: true, Limit: lim, Remaining: lim - l.n[key], ResetAfter: time.Duration(l.n[key]) * time.Minute / time.Duration(lim)}, nil
}

// testServer is the Server on the real session.Service, which runs on the in-memory fakes
// and is seen through a Spy (its calls, and a failure on request).
type testServer struct {
	*Server
	fakes *sessiontest.Fakes
	spy   *sessiontest.Spy
	lim   *fakeLimiter
	log   *bytes.Buffer
}

// newTestServer serves the Spy as a plain Manager (no Toucher), with seedID's session seeded.
func newTestServer(t testing.TB, opts Options) *testServer {
	t.Helper()
	ts := newBareServer()
	ts.Server = ts.serve(manager{ts.spy}, Deps{}, opts)
	return ts
}

// newBareServer makes the fakes, seeded, and the Spy; serve makes the Server.
func newBareServer() *testServer {
	f := sessiontest.New()
	f.Seed(seedSession(seedID))
	return &testServer{fakes: f, spy: sessiontest.NewSpy(f.Service(session.Options{Domain: "example.test"})),
		lim: &fakeLimiter{}, log: &bytes.Buffer{}}
}

// serve makes the Server on m, with the test limiter, health and log unless deps sets them.
func (ts *testServer) serve(m session.Manager, deps Deps, opts Options) *Server {
	if opts.APIKeys == nil {
		opts.APIKeys = []string{"other-key", testKey}
	}
	deps.Manager, deps.Limiter = m, ts.lim
	if deps.Health == nil {
		deps.Health = HealthFunc(func(context.Context) map[string]error { return map[string]error{"redis": nil, "kubernetes": nil} })
	}
	deps.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: ts.log}, nil))
	return New(deps, opts)
}

// writes describes everything the fakes hold that a request could have changed: the
// cluster's calls, the events, the store's records (seedID's in full) and activity.
func (ts *testServer) writes(t testing.TB) string {
	t.Helper()
	rec, err := ts.fakes.Store.Get(context.Background(), seedID)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("cluster %q, applied %d, events %q, records %d, %s %+v, touches %v",
		ts.fakes.Cluster.Calls(), len(ts.fakes.Cluster.Applied()), ts.fakes.Recorder.Types(""), ts.fakes.Store.Len(),
		seedID, *rec, ts.fakes.Store.Touches(seedID))
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// req is one request to run against a Server.
type req struct {
	method, target, body string
	header               map[string]string
	noKey                bool
	ct                   string // Content-Type; "-" for none; default application/json when there is a body
}

func (ts *testServer) do(t testing.TB, q req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r := httptest.NewRequest(q.method, "http://api.test"+q.target, body)
	if !q.noKey {
		r.Header.Set(HeaderAPIKey, testKey)
	}
	switch {
	case q.ct == "-":
	case q.ct != "":
		r.Header.Set("Content-Type", q.ct)
	case q.body != "":
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, r)
	return w
}

// errorOf decodes and checks the one error shape.
func errorOf(t testing.TB, w *httptest.ResponseRecorder) wire.ErrorBody {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, body %q", ct, w.Body.String())
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatalf("body is not JSON: %v: %q", err, w.Body.String())
	}
	var e wire.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("body is not the error shape: %v: %q", err, w.Body.String())
	}
	if e.Error.Code == "" || e.Error.Message == "" || e.RequestID == "" {
		t.Fatalf("error shape lacks code, message or request_id: %q", w.Body.String())
	}
	if e.RequestID != w.Header().Get(HeaderRequestID) {
		t.Fatalf("request_id %q differs from the header %q", e.RequestID, w.Header().Get(HeaderRequestID))
	}
	return e
}
