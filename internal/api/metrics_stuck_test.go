package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api/apispec"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// pendingSince returns a session in state st, in step p since since.
func pendingSince(id string, st session.State, p session.Pending, since time.Time) *session.Session {
	s := seedSession(id)
	s.State, s.Pending, s.PendingSince, s.UpdatedAt = st, p, since, since
	return s
}

// scrape returns the Prometheus exposition of /metrics.
func (ts *testServer) scrape(t *testing.T) (int, string) {
	t.Helper()
	w := ts.do(t, req{method: "GET", target: "/metrics", header: map[string]string{"Accept": "text/plain"}})
	return w.Code, w.Body.String()
}

func TestMetricsStuckSessions(t *testing.T) {
	ts := newBareServer()
	now := ts.fakes.Clock.Now()
	ts.fakes.Seed(
		pendingSince("stk00001", session.StateDeleting, session.PendingBackup, now.Add(-2*time.Hour)),
		pendingSince("stk00002", session.StateCreating, session.PendingReady, now.Add(-31*time.Minute)),
		pendingSince("stk00003", session.StateWaking, session.PendingReady, now.Add(-45*time.Minute)),
		pendingSince("frs00001", session.StateCreating, session.PendingApply, now.Add(-29*time.Minute)), // under the limit
	)
	ts.Server = ts.serve(manager{ts.spy}, Deps{Stuck: ts.fakes.Store, Now: ts.fakes.Clock.Now}, Options{StuckAfter: 30 * time.Minute})

	code, body := ts.scrape(t)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	for _, want := range []string{
		`hyperbola_sessions_stuck{step="await-apply"} 0`,
		`hyperbola_sessions_stuck{step="await-ready"} 2`,
		`hyperbola_sessions_stuck{step="await-backup"} 1`,
		`hyperbola_sessions_stuck{step="await-removal"} 0`,
		`hyperbola_session_stuck_seconds{id="stk00001",step="await-backup"} 7200`,
		`hyperbola_session_stuck_seconds{id="stk00003",step="await-ready"} 2700`,
		`hyperbola_session_stuck_seconds{id="stk00002",step="await-ready"} 1860`,
		`# TYPE hyperbola_sessions_stuck gauge`,
		`# TYPE hyperbola_session_stuck_seconds gauge`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("the exposition lacks %s", want)
		}
	}
	for _, not := range []string{"frs00001", `id="` + seedID + `"`, `step="unknown"`} {
		if strings.Contains(body, not) {
			t.Errorf("the exposition names %s, which is not stuck", not)
		}
	}
	if t.Failed() {
		t.Log(body)
	}

	// The step ends: the session leaves both series.
	ts.fakes.Seed(pendingSince("stk00001", session.StateDeleted, session.PendingNone, time.Time{}))
	if _, body = ts.scrape(t); strings.Contains(body, "stk00001") || !strings.Contains(body, `hyperbola_sessions_stuck{step="await-backup"} 0`+"\n") {
		t.Fatalf("a finished step still shows:\n%s", body)
	}
}

func TestMetricsStuckBounded(t *testing.T) {
	ts := newBareServer()
	now := ts.fakes.Clock.Now()
	// More stuck than the series name, and more than a scrape reads.
	n := stuckReadLimit + 7
	ss := make([]*session.Session, n)
	for i := range ss {
		ss[i] = pendingSince(idN(i), session.StateCreating, session.PendingReady, now.Add(-time.Hour-time.Duration(n-i)*time.Second))
	}
	ts.fakes.Seed(ss...)
	ts.Server = ts.serve(manager{ts.spy}, Deps{Stuck: ts.fakes.Store, Now: ts.fakes.Clock.Now}, Options{})
	code, body := ts.scrape(t)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if got := strings.Count(body, "\nhyperbola_session_stuck_seconds{"); got != stuckSeriesLimit {
		t.Errorf("%d per-session series, want %d", got, stuckSeriesLimit)
	}
	if !strings.Contains(body, `hyperbola_session_stuck_seconds{id="`+idN(0)+`",step="await-ready"}`) ||
		strings.Contains(body, `id="`+idN(stuckSeriesLimit)+`"`) {
		t.Error("the per-session series are not the oldest")
	}
	for _, want := range []string{
		`hyperbola_sessions_stuck{step="await-ready"} 1000`,
		`hyperbola_sessions_stuck{step="unknown"} 7`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("the exposition lacks %s", want)
		}
	}
}

func idN(i int) string { return fmt.Sprintf("st%06d", i) }

func TestMetricsStuckUnavailable(t *testing.T) {
	ts := newBareServer()
	ts.fakes.Store.Fail("Stuck", session.Unavailable("redis", errors.New("connection refused")))
	ts.Server = ts.serve(manager{ts.spy}, Deps{Stuck: ts.fakes.Store, Now: ts.fakes.Clock.Now}, Options{})
	// A store that cannot answer fails the scrape (as hyperbola_sessions does): an alert on
	// "no data" sees it, a zero would hide it.
	if code, body := ts.scrape(t); code == 200 || !strings.Contains(body, "hyperbola_sessions_stuck") {
		t.Fatalf("%d %s", code, body)
	}
	// Without a source the series are left out and the rest is served.
	ts.Server = ts.serve(manager{ts.spy}, Deps{Now: ts.fakes.Clock.Now}, Options{})
	if code, body := ts.scrape(t); code != 200 || strings.Contains(body, "stuck") {
		t.Fatalf("%d %s", code, body)
	}
}

// TestSpecDescribesStuckInTheSweepReport: a sweep report naming stuck sessions, as the sweep
// writes it, matches the document's SweepReport.
func TestSpecDescribesStuckInTheSweepReport(t *testing.T) {
	spec, err := apispec.Load(context.Background(), specPath)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	for _, rep := range []*sweep.Report{
		{StartedAt: since.Add(time.Hour), StuckCount: 2, Stuck: []sweep.StuckSession{
			{ID: "ab12cd34", UserID: "u@example.com", Step: string(session.PendingBackup), Since: since, StuckSeconds: 3600},
			{ID: "ab12cd35", UserID: "v@example.com", Step: string(session.PendingReady), Since: since.Add(time.Minute), StuckSeconds: 3540},
		}},
		{StartedAt: since}, // none stuck
	} {
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		ts := newBareServer()
		ts.Server = ts.serve(manager{ts.spy}, Deps{Sweep: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		})}, Options{})
		w := ts.do(t, req{method: "POST", target: "/sweep"})
		r := httptest.NewRequest(http.MethodPost, "http://api.test/sweep", nil)
		if err := spec.CheckResponse(context.Background(), r, w.Code, w.Header(), w.Body.Bytes()); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
}
