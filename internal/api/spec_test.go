package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api/apispec"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

const specPath = "../../docs/api/openapi.yaml"

// TestSpecMatchesRoutes fails when a route registered in the mux is missing from
// docs/api/openapi.yaml, or the document names a route that does not exist.
func TestSpecMatchesRoutes(t *testing.T) {
	spec, err := apispec.Load(context.Background(), specPath)
	if err != nil {
		t.Fatal(err)
	}
	routes := newTestServer(t, Options{}).Routes()
	sort.Strings(routes)
	ops := spec.Operations()
	for _, r := range routes {
		if !slices.Contains(ops, r) {
			t.Errorf("route %q is served but missing from %s", r, specPath)
		}
	}
	for _, op := range ops {
		if !slices.Contains(routes, op) {
			t.Errorf("%s names %q, which is not served", specPath, op)
		}
	}
}

// TestSpecDescribesAnswers replays good and bad requests against the unit server and checks
// each answer against the document.
func TestSpecDescribesAnswers(t *testing.T) {
	spec, err := apispec.Load(context.Background(), specPath)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Options{CreateLimit: 3, AuthFailLimit: 1, ProbeLimit: 2})
	reqs := []req{
		{method: "POST", target: "/session/create", body: `{"user_id":"u","idle_timeout":"20m","labels":{"a":"b"}}`},
		{method: "POST", target: "/session/create", body: `{"user_id":1}`},
		{method: "POST", target: "/session/create", body: `{"user_id":"u"}`, ct: "text/plain"},
		{method: "POST", target: "/session/create", body: `{"user_id":"u"}`},
		{method: "POST", target: "/session/create", body: `{"user_id":"u"}`}, // 429
		{method: "GET", target: "/session/ab12cd34/status"},
		{method: "GET", target: "/session/ABCDEFGH/status"},
		{method: "GET", target: "/session/ab12cd34/status", noKey: true},
		{method: "GET", target: "/session/ab12cd34/status", header: map[string]string{HeaderAPIKey: "wrong"}}, // 429: failed keys
		{method: "POST", target: "/session/ab12cd34/sleep"},
		{method: "POST", target: "/session/ab12cd34/wake", body: `{}`},
		{method: "PATCH", target: "/session/ab12cd34", body: `{"cpu":"1","labels":null}`},
		{method: "DELETE", target: "/session/ab12cd34?skip_backup=false"},
		{method: "GET", target: "/sessions?limit=2"},
		{method: "GET", target: "/sessions?limit=-2"},
		{method: "GET", target: "/health", noKey: true},
		{method: "GET", target: "/health?x=1", noKey: true},
		{method: "GET", target: "/health", noKey: true}, // 429
		{method: "GET", target: "/ready", noKey: true},
		{method: "GET", target: "/metrics"},
		{method: "GET", target: "/metrics", header: map[string]string{"Accept": "text/plain"}},
		{method: "GET", target: "/metrics/prometheus"},
		{method: "GET", target: "/session/ab12cd34/activity"},
		{method: "GET", target: "/session/ab12cd34/activity", noKey: true, header: map[string]string{"Authorization": "Bearer hbact_ab12cd34_x"}}, // 429: failed keys
	}
	for _, q := range reqs {
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
	// and the failure paths of the Manager
	ts.spy.Fail("Wake", errForSpec)
	w := ts.do(t, req{method: "POST", target: "/session/ab12cd34/wake"})
	r := httptest.NewRequest(http.MethodPost, "http://api.test/session/ab12cd34/wake", nil)
	if err := spec.CheckResponse(context.Background(), r, w.Code, w.Header(), w.Body.Bytes()); err != nil {
		t.Error(err)
	}
}

var errForSpec = session.Conflict("session ab12cd34 is deleting: it cannot wake")

// TestSpecCheckerCatchesMismatches: the checker is not a rubber stamp.
func TestSpecCheckerCatchesMismatches(t *testing.T) {
	spec, err := apispec.Load(context.Background(), specPath)
	if err != nil {
		t.Fatal(err)
	}
	h := map[string][]string{"Content-Type": {"application/json"}}
	for _, c := range []struct {
		method, target string
		status         int
		body           string
	}{
		{"POST", "/session/create", 201, `{"uuid":"ab12cd34"}`},                                              // required members missing
		{"GET", "/sessions", 200, `{"sessions":[],"count":0,"extra":1}`},                                     // unknown member
		{"GET", "/health", 200, `{"status":"fine","checks":{}}`},                                             // not in the enum
		{"GET", "/session/ab12cd34/status", 404, `{"error":{"code":"nope","message":"x"},"request_id":"r"}`}, // unknown code
		{"GET", "/nowhere", 404, `{}`},                                                                       // not a route
		{"POST", "/session/ab12cd34/activity", 200, `{"uuid":"ab12cd34","last_activity":"2026-01-01T00:00:00Z","status":"running"}`},
		{"GET", "/session/ab12cd34/activity", 200, `{"uuid":"ab12cd34","last_activity":"2026-01-01T00:00:00Z","idle_timeout":"15m0s","idle_connected_max":"0s"}`}, // now missing
		{"POST", "/sweep", 200, `{"skipped":false,"candidates":0}`},
		{"GET", "/usage", 200, `{"to":"2026-01-01T00:00:00Z","generated_at":"2026-01-01T00:00:00Z","prices":{},"total":{},"users":[],"sessions":[],"pending_events":0}`},
		{"GET", "/backups", 200, `{"backups":null}`}, // never null
		{"DELETE", "/backups/ab12cd34-20261126T020304Z", 200, `{"id":"ab12cd34-20261126T020304Z","session_id":"ab12cd34","user_id":"u","location":"x","size_bytes":1,"created_at":"2026-01-01T00:00:00Z","status":"gone"}`}, // not a backup status
		{"POST", "/reconcile", 409, `{"error":{"code":"busy","message":"x"},"request_id":"r","report":{}}`},
	} {
		r := httptest.NewRequest(c.method, "http://api.test"+c.target, nil)
		if err := spec.CheckResponse(context.Background(), r, c.status, h, []byte(c.body)); err == nil {
			t.Errorf("%s %s %d %s passed the check", c.method, c.target, c.status, c.body)
		}
	}
}
