package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// GET /session/{uuid}/status?wait= holds a starting session's status until it runs: the
// answer comes from a read after the pod turned ready, in the same request. Without wait (or
// with 0s) the status is answered at once, as before.
func TestStatusWaitsForAStartingSession(t *testing.T) {
	ts := newTestServer(t, Options{})
	created, err := ts.spy.Create(t.Context(), session.CreateRequest{UserID: "user@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	id := created.ID
	stateOf := func(w *httptest.ResponseRecorder) session.State {
		t.Helper()
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		var s session.Session
		if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		return s.State
	}
	for _, target := range []string{"/session/" + id + "/status", "/session/" + id + "/status?wait=0s"} {
		if st := stateOf(ts.do(t, req{method: "GET", target: target})); st != session.StateCreating {
			t.Fatalf("%s: %s", target, st)
		}
	}

	first, release1 := ts.fakes.Cluster.Stall("Readiness")
	answered := make(chan *httptest.ResponseRecorder, 1)
	go func() { answered <- ts.do(t, req{method: "GET", target: "/session/" + id + "/status?wait=20s"}) }()
	<-first // the request's own read: the pod is not ready
	second, release2 := ts.fakes.Cluster.Stall("Readiness")
	release1()
	<-second // not ready: the request waits and reads again
	ts.fakes.Cluster.SetReady(id, true, "")
	release2()
	if st := stateOf(<-answered); st != session.StateRunning {
		t.Fatalf("waited: %s", st)
	}
	if n := len(ts.spy.Calls("Await")); n != 1 {
		t.Errorf("Await called %d times", n)
	}
}
