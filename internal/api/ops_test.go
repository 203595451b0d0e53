package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api/apispec"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/reconcile"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// fakeUsage answers a report built from one timeline, recording the query.
type fakeUsage struct {
	mu   sync.Mutex
	last *events.UsageQuery
	err  error
}

func (f *fakeUsage) Usage(_ context.Context, q events.UsageQuery) (*events.UsageReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = &q
	if f.err != nil {
		return nil, f.err
	}
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	tl := events.Timeline{SessionID: "ab12cd34", UserID: "user@example.com", CreatedAt: t0, Points: []events.Point{
		{At: t0, State: session.StateCreating, Storage: "5Gi"},
		{At: t0.Add(time.Minute), Seq: 1, State: session.StateRunning, Storage: "5Gi"},
		{At: t0.Add(61 * time.Minute), Seq: 2, State: session.StateSleeping, Storage: "5Gi"},
	}}
	rep := events.BuildReport([]events.Timeline{tl}, q.From, t0.Add(3*time.Hour),
		events.Prices{PerRunningHour: 0.1, PerGBMonth: 0.04, Currency: "USD"})
	rep.GeneratedAt = t0.Add(3 * time.Hour)
	return rep, nil
}

// fakeReconciler answers a small report, or err.
type fakeReconciler struct {
	mu   sync.Mutex
	dry  []bool
	err  error
	busy bool
}

func (f *fakeReconciler) Reconcile(_ context.Context, dryRun bool) (*reconcile.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dry = append(f.dry, dryRun)
	if f.busy {
		return nil, &session.Error{Kind: session.KindBusy, Message: "another reconcile is running"}
	}
	if f.err != nil {
		return nil, f.err
	}
	now := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	return &reconcile.Report{StartedAt: now, FinishedAt: now.Add(time.Second), DryRun: dryRun, Observed: 2,
		Rebuilt:        []reconcile.Item{{ID: "ab12cd34", UserID: "user@example.com", State: session.StateRunning, Kinds: []session.ObjectKind{session.ObjectDeployment}}},
		Repaired:       []reconcile.Item{},
		Adopted:        []reconcile.Item{},
		Removed:        []reconcile.Item{},
		BackupsStarted: []reconcile.Item{}, BackupsPending: []reconcile.Item{}, Backfilled: []reconcile.Item{},
		Vanished: []reconcile.Item{}, Skipped: []reconcile.Item{}, Errors: []reconcile.Item{{Detail: "reading the event queue: x"}},
	}, nil
}

// sweepStandIn is the sweep's handler stand-in: it records the key it was sent and answers
// the report shape.
type sweepStandIn struct {
	mu   sync.Mutex
	keys []string
}

func (s *sweepStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.keys = append(s.keys, r.Header.Get(HeaderAPIKey)+"|"+r.Header.Get("Authorization"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"skipped":false,"candidates":1,"probed":1,"probe_errors":0,"slept":1,"slept_connected":0,"kept_active":0,"deferred":0,`+
		`"expired":0,"deleted":0,"pending":0,"advanced":0,"stuck_count":0,"errors":0,"flushed_events":2,`+
		`"reconciled":{"observed":1,"flushed_events":0,"pending_events":0,"rebuilt":1,"repaired":0,"adopted":0,"removed":0,"backups_started":0,`+
		`"backups_pending":0,"backfilled":0,"vanished":0,"skipped":0,"errors":0,"duration_ms":3},`+
		`"started_at":"2026-11-26T02:00:00Z","duration_ms":12}`+"\n")
}

type opsServer struct {
	*testServer
	usage *fakeUsage
	rec   *fakeReconciler
	sweep *sweepStandIn
}

// newOpsServer is the unit server with every operations part, serving the Spy itself (a
// Toucher).
func newOpsServer(t testing.TB) *opsServer {
	t.Helper()
	o := &opsServer{testServer: newBareServer(), usage: &fakeUsage{}, rec: &fakeReconciler{}, sweep: &sweepStandIn{}}
	o.Server = o.serve(o.spy, Deps{Usage: o.usage, Reconciler: o.rec, Sweep: o.sweep}, Options{APIKeys: []string{testKey}})
	return o
}

func TestActivity(t *testing.T) {
	o := newOpsServer(t)
	o.fakes.Clock.Add(90 * time.Second)
	w := o.do(t, req{method: "POST", target: "/session/ab12cd34/activity"})
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || len(got) != 6 ||
		got["uuid"] != "ab12cd34" || got["last_activity"] != "2026-03-01T12:01:30Z" || got["idle_timeout"] != "15m0s" ||
		got["idle_connected_max"] != "0s" || got["idle_at"] != "2026-03-01T12:16:30Z" || got["now"] == nil {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if c := o.spy.Calls(""); len(c) != 1 || c[0].Op != "Touch" || c[0].ID != seedID {
		t.Fatalf("calls %v", c)
	}
	if at := o.fakes.Store.Touches(seedID); len(at) != 1 || !at[0].Equal(sessiontest.Epoch.Add(90*time.Second)) {
		t.Fatalf("activity recorded %v", at)
	}
	if w := o.do(t, req{method: "POST", target: "/session/ab12cd34/activity", body: `{}`}); w.Code != 200 {
		t.Fatalf("{} body: %d", w.Code)
	}
	if w.Header().Get("RateLimit-Limit") == "" {
		t.Fatal("activity is not limited per key")
	}
	for _, c := range []struct {
		q           req
		status      int
		code, field string
	}{
		{req{method: "POST", target: "/session/ABCDEFGH/activity"}, 400, "invalid_argument", "uuid"},
		{req{method: "POST", target: "/session/ab12cd34/activity?at=now"}, 400, "invalid_argument", "at"},
		{req{method: "POST", target: "/session/ab12cd34/activity", body: `{"at":1}`}, 400, "invalid_argument", "at"},
		{req{method: "POST", target: "/session/ab12cd34/activity", noKey: true}, 401, "unauthenticated", ""},
		{req{method: "POST", target: "/session/ab12cd34/activity", body: `{"kind":"typing"}`}, 400, "invalid_argument", "kind"},
		{req{method: "PUT", target: "/session/ab12cd34/activity"}, 405, "method_not_allowed", ""},
	} {
		w := o.do(t, c.q)
		e := errorOf(t, w)
		if w.Code != c.status || e.Error.Code != c.code || e.Error.Field != c.field {
			t.Errorf("%s %s: %d %+v", c.q.method, c.q.target, w.Code, e.Error)
		}
	}
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{session.NotFound("ab12cd34"), 404, "not_found"},
		{session.Conflict("session ab12cd34 is deleting"), 409, "conflict"},
		{session.Unavailable("redis", errors.New("down")), 503, "unavailable"},
	} {
		o.spy.Fail("Touch", c.err)
		w := o.do(t, req{method: "POST", target: "/session/ab12cd34/activity"})
		if e := errorOf(t, w); w.Code != c.status || e.Error.Code != c.code {
			t.Errorf("%v: %d %+v", c.err, w.Code, e.Error)
		}
	}

	// A Manager without Touch (the plain server's): 501, never a panic.
	ts := newTestServer(t, Options{})
	w = ts.do(t, req{method: "POST", target: "/session/ab12cd34/activity"})
	if e := errorOf(t, w); w.Code != 501 || e.Error.Code != string(session.KindUnimplemented) {
		t.Fatalf("no Toucher: %d %+v", w.Code, e.Error)
	}
}

func TestUsage(t *testing.T) {
	o := newOpsServer(t)
	now := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)
	o.Server = o.serve(o.spy, Deps{Usage: o.usage, Reconciler: o.rec, Sweep: o.sweep, Now: func() time.Time { return now }},
		Options{APIKeys: []string{testKey}})
	w := o.do(t, req{method: "GET", target: "/usage?user_id=user%40example.com&from=2026-11-01T00:00:00%2B02:00&to=2026-11-02T00:00:00Z"})
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	q := o.usage.last
	if q.UserID != "user@example.com" || !q.From.Equal(time.Date(2026, 10, 31, 22, 0, 0, 0, time.UTC)) || !q.To.Equal(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("query %+v", q)
	}
	var rep events.UsageReport
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || len(rep.Sessions) != 1 || rep.Total.RunningHours != 1+1.0/60 ||
		rep.Sessions[0].State != session.StateSleeping || rep.Prices.Currency != "USD" {
		t.Fatalf("%v %s", err, w.Body.String())
	}
	// An unescaped + offset arrives as a space and is read as the +.
	o.do(t, req{method: "GET", target: "/usage?from=2026-11-01T00:00:00+02:00"})
	if !o.usage.last.From.Equal(time.Date(2026, 10, 31, 22, 0, 0, 0, time.UTC)) || !o.usage.last.To.IsZero() {
		t.Fatalf("query %+v", o.usage.last)
	}
	// The longest window, up to now (to defaults to now, and is left to the report's clock).
	longest := now.Add(-events.MaxUsageWindow)
	if w := o.do(t, req{method: "GET", target: "/usage?from=" + longest.Format(time.RFC3339)}); w.Code != 200 ||
		*o.usage.last != (events.UsageQuery{From: longest}) {
		t.Fatalf("%d %+v", w.Code, o.usage.last)
	}
	// A window with its to is checked as given: the report's clock, not this one, clamps it.
	if w := o.do(t, req{method: "GET", target: "/usage?from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z"}); w.Code != 200 {
		t.Fatalf("a window after this clock's now: %d %s", w.Code, w.Body.String())
	}
	calls := o.usage.last
	for _, c := range []struct {
		target, field string
	}{
		{"/usage", "from"},                         // every record ever written: refused
		{"/usage?user_id=u%40example.com", "from"}, // one user's, as well
		{"/usage?from=" + longest.Add(-time.Second).Format(time.RFC3339), "from"},
		{"/usage?from=2026-01-01T00:00:00Z&to=2026-04-04T00:00:01Z", "to"}, // 93 days and a second
		{"/usage?from=2026-12-01T00:00:00Z", "from"},                       // after now
		{"/usage?from=yesterday", "from"},
		{"/usage?from=2026-11-01", "from"},
		{"/usage?to=1700000000", "to"},
		{"/usage?to=2026-13-01T00:00:00Z", "to"},
		{"/usage?from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z", "from"},
		{"/usage?from=2026-11-01T00:00:00Z&to=2026-11-01T00:00:00Z", "from"},
		{"/usage?user_id=", "user_id"},
		{"/usage?user_id=a&user_id=b", "user_id"},
		{"/usage?limit=5", "limit"},
	} {
		w := o.do(t, req{method: "GET", target: c.target})
		if e := errorOf(t, w); w.Code != 400 || e.Error.Code != "invalid_argument" || e.Error.Field != c.field {
			t.Errorf("%s: %d %+v", c.target, w.Code, e.Error)
		}
	}
	if o.usage.last != calls {
		t.Fatal("bad input reached the recorder")
	}
	o.usage.err = session.Unavailable("firestore", errors.New("down"))
	if w := o.do(t, req{method: "GET", target: "/usage?from=2026-11-01T00:00:00Z"}); w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("firestore down: %d %s", w.Code, w.Body.String())
	}

	// Without durable records: 501, with a message saying what to set.
	ts := newTestServer(t, Options{})
	w = ts.do(t, req{method: "GET", target: "/usage?from=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
	if e := errorOf(t, w); w.Code != 501 || e.Error.Code != string(session.KindUnimplemented) || !strings.Contains(e.Error.Message, "GOOGLE_CLOUD_PROJECT") ||
		w.Header().Get("Retry-After") != "" {
		t.Fatalf("no records: %d %+v", w.Code, e.Error)
	}
	// (a stack without Firestore passes no recorder at all, never a nil *events.Recorder:
	// internal/stack's TestNoFirestoreMeansNoRecorder)
}

func TestReconcileRoute(t *testing.T) {
	o := newOpsServer(t)
	w := o.do(t, req{method: "POST", target: "/reconcile"})
	var rep reconcile.Report
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || w.Code != 200 || rep.DryRun || len(rep.Rebuilt) != 1 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if w := o.do(t, req{method: "POST", target: "/reconcile?dry_run=true", body: `{}`}); w.Code != 200 || !strings.Contains(w.Body.String(), `"dry_run":true`) {
		t.Fatalf("dry run: %d %s", w.Code, w.Body.String())
	}
	if len(o.rec.dry) != 2 || o.rec.dry[0] || !o.rec.dry[1] {
		t.Fatalf("runs %v", o.rec.dry)
	}
	for _, c := range []struct {
		q     req
		field string
	}{
		{req{method: "POST", target: "/reconcile?dry_run=maybe"}, "dry_run"},
		{req{method: "POST", target: "/reconcile?force=1"}, "force"},
		{req{method: "POST", target: "/reconcile", body: `{"dry_run":true}`}, "dry_run"},
	} {
		w := o.do(t, c.q)
		if e := errorOf(t, w); w.Code != 400 || e.Error.Field != c.field {
			t.Errorf("%s: %d %+v", c.q.target, w.Code, e.Error)
		}
	}
	if len(o.rec.dry) != 2 {
		t.Fatal("bad input ran a reconcile")
	}
	o.rec.busy = true
	w = o.do(t, req{method: "POST", target: "/reconcile"})
	if e := errorOf(t, w); w.Code != 409 || e.Error.Code != "busy" || w.Header().Get("Retry-After") != "10" {
		t.Fatalf("busy: %d %+v %v", w.Code, e.Error, w.Header())
	}
	o.rec.busy, o.rec.err = false, session.Unavailable("kubernetes", errors.New("connection refused"))
	if w := o.do(t, req{method: "POST", target: "/reconcile"}); w.Code != 503 {
		t.Fatalf("cluster down: %d", w.Code)
	}
	if w := newTestServer(t, Options{}).do(t, req{method: "POST", target: "/reconcile"}); w.Code != 501 {
		t.Fatalf("no reconciler: %d", w.Code)
	}
}

func TestSweepRouteIsPublicAndNotLimited(t *testing.T) {
	o := newOpsServer(t)
	for _, q := range []req{
		{method: "POST", target: "/sweep", noKey: true, header: map[string]string{"Authorization": "Bearer eyJ.oidc.token"}},
		{method: "POST", target: "/sweep", body: `{}`},
	} {
		w := o.do(t, q)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"slept":1`) || w.Header().Get(HeaderRequestID) == "" {
			t.Fatalf("%d %s", w.Code, w.Body.String())
		}
		if w.Header().Get("RateLimit-Limit") != "" {
			t.Fatal("the sweep is limited per key")
		}
	}
	if len(o.sweep.keys) != 2 || o.sweep.keys[0] != "|Bearer eyJ.oidc.token" || o.sweep.keys[1] != testKey+"|" {
		t.Fatalf("the sweep saw %q", o.sweep.keys)
	}
	if len(o.lim.keys) != 0 {
		t.Fatalf("the limiter was asked: %v", o.lim.keys)
	}
	w := o.do(t, req{method: "GET", target: "/sweep"})
	if e := errorOf(t, w); w.Code != 405 || w.Header().Get("Allow") != "POST" || e.Error.Code != "method_not_allowed" {
		t.Fatalf("GET /sweep: %d %+v", w.Code, e.Error)
	}
	if w := newTestServer(t, Options{}).do(t, req{method: "POST", target: "/sweep"}); w.Code != 501 {
		t.Fatalf("no sweep: %d", w.Code)
	}
}

// TestSpecDescribesOperations checks the operations routes' answers, good and bad, against
// the document.
func TestSpecDescribesOperations(t *testing.T) {
	spec, err := apispec.Load(context.Background(), specPath)
	if err != nil {
		t.Fatal(err)
	}
	o := newOpsServer(t)
	plain := newTestServer(t, Options{})
	check := func(ts *testServer, q req) {
		t.Helper()
		w := ts.do(t, q)
		var body io.Reader
		if q.body != "" {
			body = strings.NewReader(q.body)
		}
		r := httptest.NewRequest(q.method, "http://api.test"+q.target, body)
		if err := spec.CheckResponse(context.Background(), r, w.Code, w.Header(), bytes.Clone(w.Body.Bytes())); err != nil {
			t.Error(err)
		}
	}
	for _, q := range []req{
		{method: "POST", target: "/session/ab12cd34/activity"},
		{method: "POST", target: "/session/ab12cd34/activity", body: `{"x":1}`},
		{method: "POST", target: "/session/ab12cd34/activity", body: `{"kind":"stay"}`},
		{method: "POST", target: "/session/ab12cd34/activity", body: `{"kind":"nope"}`},
		{method: "GET", target: "/session/ab12cd34/activity"},
		{method: "GET", target: "/session/zz99zz99/activity"},
		{method: "GET", target: "/session/ab12cd34/activity?x=1"},
		{method: "GET", target: "/usage?user_id=user%40example.com&from=2026-11-01T00:00:00Z"},
		{method: "GET", target: "/usage?from=nope"},
		{method: "POST", target: "/reconcile?dry_run=true"},
		{method: "POST", target: "/reconcile?dry_run=nope"},
		{method: "POST", target: "/sweep", noKey: true},
	} {
		check(o.testServer, q)
	}
	for _, q := range []req{
		{method: "POST", target: "/session/ab12cd34/activity"},
		{method: "GET", target: "/usage"},
		{method: "POST", target: "/reconcile"},
		{method: "POST", target: "/sweep"},
	} {
		check(plain, q) // 501s
	}
	o.rec.busy = true
	check(o.testServer, req{method: "POST", target: "/reconcile"})
	o.spy.Fail("Touch", session.Conflict("session ab12cd34 is deleting"))
	check(o.testServer, req{method: "POST", target: "/session/ab12cd34/activity"})
	// with a cap: sleep_at is in the answer
	sess := seedSession("ef56gh78")
	sess.IdleConnectedMax = session.Duration(2 * time.Hour)
	o.fakes.Seed(sess)
	check(o.testServer, req{method: "GET", target: "/session/ef56gh78/activity"})
}
