package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/clientip"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func decodeSession(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, w.Body.String())
	}
	return m
}

func TestRoutesHappyPath(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.fakes.Seed(seedSession("cd34ef56"))
	cases := []struct {
		q      req
		status int
		call   string
	}{
		{req{method: "POST", target: "/session/create", body: `{"user_id":"user@example.com","image":"nginx:1","storage":"6Gi","cpu":"500m","memory":"1Gi","idle_timeout":"30m","idle_connected_max":"4h","backup_on_delete":false,"labels":{"team":"a"},"state":"sleeping","ttl":"0"}`,
			header: map[string]string{"Idempotency-Key": "req-1"}}, 201, "Create"},
		{req{method: "GET", target: "/session/ab12cd34/status"}, 200, "Get"},
		{req{method: "POST", target: "/session/ab12cd34/sleep"}, 200, "Sleep"},
		{req{method: "POST", target: "/session/ab12cd34/sleep", body: `{}`}, 200, "Sleep"},
		{req{method: "POST", target: "/session/ab12cd34/wake"}, 200, "Wake"},
		{req{method: "PATCH", target: "/session/ab12cd34", body: `{"storage":"10Gi","idle_timeout":600,"idle_connected_max":0,"labels":{},"ttl":"72h"}`, ct: "application/merge-patch+json"}, 200, "Update"},
		{req{method: "DELETE", target: "/session/cd34ef56?skip_backup=true"}, 200, "Delete"},
		{req{method: "GET", target: "/sessions?user_id=user%40example.com&status=running&limit=10&cursor=MTIzOmFiMTJjZDM0"}, 200, "List"},
		{req{method: "GET", target: "/health", noKey: true}, 200, ""},
	}
	for _, c := range cases {
		t.Run(c.q.method+" "+c.q.target, func(t *testing.T) {
			before := len(ts.spy.Calls(""))
			w := ts.do(t, c.q)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body.String())
			}
			calls := ts.spy.Calls("")
			if c.call != "" && (len(calls) != before+1 || calls[len(calls)-1].Op != c.call || calls[len(calls)-1].Err != nil) {
				t.Fatalf("calls %v, want %s", calls, c.call)
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Fatal("responses must not be cached")
			}
		})
	}
	// The create request reached the Service whole: the record holds every member, and the
	// idempotency key returns the same session again.
	created := ts.spy.IDs("Create")[0]
	got, err := ts.fakes.Store.Get(context.Background(), created)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != "user@example.com" || got.Image != "nginx:1" || got.Storage != "6Gi" || got.CPU != "500m" || got.Memory != "1Gi" ||
		got.IdleTimeout.D() != 30*time.Minute || got.BackupOnDelete || got.Labels["team"] != "a" || got.State != session.StateSleeping ||
		!got.ExpiresAt.IsZero() {
		t.Fatalf("created record %+v", got)
	}
	w := ts.do(t, cases[0].q)
	m := decodeSession(t, w)
	if m["uuid"] != created {
		t.Fatalf("the idempotency key was lost: a retry made %v, not %s", m["uuid"], created)
	}
	for _, k := range []string{"uuid", "user_id", "status", "workspace_url", "password"} {
		if _, ok := m[k]; !ok {
			t.Errorf("create answer lacks %q: %s", k, w.Body.String())
		}
	}
	if w.Header().Get("Location") != "/session/"+created+"/status" {
		t.Errorf("Location %q", w.Header().Get("Location"))
	}
	// The status answer never carries a password.
	w = ts.do(t, req{method: "GET", target: "/session/" + created + "/status"})
	if w.Code != 200 || strings.Contains(w.Body.String(), "password") {
		t.Fatalf("status %d carries a password: %s", w.Code, w.Body.String())
	}
	// The update request: storage, idle timeout, labels removed, ttl from creation; the image kept.
	up, err := ts.fakes.Store.Get(context.Background(), seedID)
	if err != nil {
		t.Fatal(err)
	}
	seed := seedSession(seedID)
	if up.Storage != "10Gi" || up.IdleTimeout.D() != 10*time.Minute || len(up.Labels) != 0 || up.Image != seed.Image ||
		!up.ExpiresAt.Equal(seed.CreatedAt.Add(72*time.Hour)) {
		t.Fatalf("updated record %+v", up)
	}
	// Delete: skip_backup reached the Service (no backup Job, the volume deleted).
	for _, c := range ts.fakes.Cluster.Calls() {
		if strings.HasPrefix(c, "backup cd34ef56") {
			t.Fatalf("skip_backup lost: %q", ts.fakes.Cluster.Calls())
		}
	}
	if !slices.Contains(ts.fakes.Cluster.Calls(), "delete cd34ef56 pvc=true") {
		t.Fatalf("cluster calls %q", ts.fakes.Cluster.Calls())
	}
	// List's options: the filter, the page size and the cursor.
	w = ts.do(t, req{method: "GET", target: "/sessions?status=sleeping&limit=1"})
	var lr ListResponse
	if err := json.Unmarshal(w.Body.Bytes(), &lr); err != nil || lr.Count != 1 || lr.NextCursor != "" || lr.Sessions[0].ID != created {
		t.Fatalf("sleeping: %s (%v)", w.Body.String(), err)
	}
	ts.fakes.Seed(seedSession("ef56ab12"))
	w = ts.do(t, req{method: "GET", target: "/sessions?user_id=user%40example.com&limit=1"})
	if err := json.Unmarshal(w.Body.Bytes(), &lr); err != nil || lr.Count != 1 || lr.NextCursor == "" {
		t.Fatalf("first page: %s (%v)", w.Body.String(), err)
	}
	first := lr.Sessions[0].ID
	w = ts.do(t, req{method: "GET", target: "/sessions?user_id=user%40example.com&limit=1&cursor=" + lr.NextCursor})
	if err := json.Unmarshal(w.Body.Bytes(), &lr); err != nil || lr.Count != 1 || lr.Sessions[0].ID == first {
		t.Fatalf("second page: %s (%v)", w.Body.String(), err)
	}
}

// TestDeleteStatus: 202 while the backup runs, 200 once the session is deleted.
func TestDeleteStatus(t *testing.T) {
	ts := newTestServer(t, Options{})
	w := ts.do(t, req{method: "DELETE", target: "/session/ab12cd34"})
	if w.Code != http.StatusAccepted || decodeSession(t, w)["status"] != "deleting" {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	ts.fakes.Cluster.FinishBackup(seedID, 1, session.BackupSucceeded, "")
	w = ts.do(t, req{method: "DELETE", target: "/session/ab12cd34"})
	if w.Code != http.StatusOK || decodeSession(t, w)["status"] != "deleted" {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

func TestEmptyListIsArray(t *testing.T) {
	ts := newTestServer(t, Options{})
	w := ts.do(t, req{method: "GET", target: "/sessions?status=failed"})
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"sessions":[]`) {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

// TestErrorMapping: each session error kind has its status, its code and its field, and an
// internal error says nothing of its cause.
func TestErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
		field  string
		retry  bool
	}{
		{session.Invalid("storage", "storage cannot shrink"), 400, "invalid_argument", "storage", false},
		{session.NotFound("ab12cd34"), 404, "not_found", "", false},
		{session.Conflict("session is deleting"), 409, "conflict", "", false},
		{&session.Error{Kind: session.KindBusy, Message: "locked"}, 409, "busy", "", true},
		{&session.Error{Kind: session.KindRateLimited, Message: "slow down"}, 429, "rate_limited", "", false},
		{session.Unavailable("redis", errors.New("dial tcp 10.0.0.3:6379: refused")), 503, "unavailable", "", true},
		{&session.Error{Kind: session.KindBackup, Message: "backup failed, the volume was kept"}, 500, "backup_failed", "", false},
		{&session.Error{Kind: session.KindInternal, Message: "secret detail at 10.0.0.3"}, 500, "internal", "", false},
		{fmt.Errorf("wrapped: %w", errors.New("secret detail at 10.0.0.3")), 500, "internal", "", false},
		{&session.Error{Kind: "weird", Message: "secret detail at 10.0.0.3"}, 500, "internal", "", false},
		{fmt.Errorf("applying: %w", context.DeadlineExceeded), 503, "unavailable", "", false},
	}
	for _, c := range cases {
		t.Run(c.code+"/"+c.err.Error(), func(t *testing.T) {
			ts := newTestServer(t, Options{})
			ts.spy.Fail("Wake", c.err)
			w := ts.do(t, req{method: "POST", target: "/session/ab12cd34/wake"})
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			e := errorOf(t, w)
			if e.Error.Code != c.code || e.Error.Field != c.field {
				t.Fatalf("error %+v", e.Error)
			}
			if strings.Contains(w.Body.String(), "10.0.0.3") {
				t.Fatalf("the answer leaks the cause: %s", w.Body.String())
			}
			if c.retry != (w.Header().Get("Retry-After") != "") {
				t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	ts := newTestServer(t, Options{})
	w := ts.do(t, req{method: "GET", target: "/health", noKey: true, header: map[string]string{HeaderRequestID: "abc-123"}})
	if got := w.Header().Get(HeaderRequestID); got != "abc-123" {
		t.Fatalf("a valid id is kept: got %q", got)
	}
	w = ts.do(t, req{method: "GET", target: "/health", noKey: true, header: map[string]string{HeaderRequestID: "bad id\twith spaces"}})
	if got := w.Header().Get(HeaderRequestID); len(got) != 32 || strings.Contains(got, " ") {
		t.Fatalf("an invalid id is replaced: got %q", got)
	}
	w = ts.do(t, req{method: "GET", target: "/nope", noKey: true})
	if e := errorOf(t, w); len(e.RequestID) != 32 {
		t.Fatalf("generated id %q", e.RequestID)
	}
}

// panicking is a Manager whose Get panics.
type panicking struct{ session.Manager }

func (panicking) Get(context.Context, string) (*session.Session, error) { panic("the manager panics") }

func TestPanicIs500JSON(t *testing.T) {
	ts := newBareServer()
	ts.Server = ts.serve(panicking{ts.spy}, Deps{}, Options{})
	w := ts.do(t, req{method: "GET", target: "/session/ab12cd34/status"})
	if w.Code != 500 {
		t.Fatalf("status %d", w.Code)
	}
	if e := errorOf(t, w); e.Error.Code != "internal" || strings.Contains(w.Body.String(), "manager panics") {
		t.Fatalf("%s", w.Body.String())
	}
	if !strings.Contains(ts.log.String(), "panic serving request") {
		t.Fatal("the panic was not logged")
	}
}

func TestAccessLogHoldsNoSecrets(t *testing.T) {
	ts := newTestServer(t, Options{})
	w := ts.do(t, req{method: "POST", target: "/session/create", body: `{"user_id":"u"}`})
	password, _ := decodeSession(t, w)["password"].(string)
	if password == "" {
		t.Fatalf("create answered no password: %s", w.Body.String())
	}
	ts.do(t, req{method: "GET", target: "/sessions", noKey: true, header: map[string]string{HeaderAPIKey: "wrong-secret-key"}})
	log := ts.log.String()
	for _, secret := range []string{testKey, "wrong-secret-key", password} {
		if strings.Contains(log, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, log)
		}
	}
	for _, want := range []string{`"route":"POST /session/create"`, `"status":201`, `"request_id"`, `"client_ip":"192.0.2.1"`, `"duration_ms"`} {
		if !strings.Contains(log, want) {
			t.Fatalf("the access log lacks %s:\n%s", want, log)
		}
	}
}

func TestBearerKey(t *testing.T) {
	ts := newTestServer(t, Options{})
	w := ts.do(t, req{method: "GET", target: "/sessions", noKey: true, header: map[string]string{"Authorization": "Bearer other-key"}})
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
}

func TestNoKeysConfigured(t *testing.T) {
	ts := newTestServer(t, Options{APIKeys: []string{}})
	if w := ts.do(t, req{method: "GET", target: "/sessions", header: map[string]string{HeaderAPIKey: ""}}); w.Code != 401 {
		t.Fatalf("%d", w.Code)
	}
	if w := ts.do(t, req{method: "GET", target: "/health"}); w.Code != 200 {
		t.Fatalf("health %d", w.Code)
	}
}

func TestRateLimits(t *testing.T) {
	ts := newTestServer(t, Options{CreateLimit: 2, KeyLimit: 3})
	create := req{method: "POST", target: "/session/create", body: `{"user_id":"u"}`}
	for i := 0; i < 2; i++ {
		w := ts.do(t, create)
		if w.Code != 201 || w.Header().Get("RateLimit-Limit") != "2" || w.Header().Get("RateLimit-Remaining") != fmt.Sprint(1-i) {
			t.Fatalf("create %d: %d %v", i, w.Code, w.Header())
		}
	}
	w := ts.do(t, create)
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" || w.Header().Get("RateLimit-Remaining") != "0" || w.Header().Get("RateLimit-Reset") != "60" {
		t.Fatalf("third create: %d %v", w.Code, w.Header())
	}
	if e := errorOf(t, w); e.Error.Code != "rate_limited" {
		t.Fatal(e)
	}
	// Creates count against the IP, the rest against the key (hashed, never the key itself).
	for i := 0; i < 3; i++ {
		if w := ts.do(t, req{method: "GET", target: "/sessions"}); w.Code != 200 {
			t.Fatalf("list %d: %d", i, w.Code)
		}
	}
	if w := ts.do(t, req{method: "GET", target: "/session/ab12cd34/status"}); w.Code != 429 {
		t.Fatalf("fourth keyed request: %d", w.Code)
	}
	// another key has its own budget
	if w := ts.do(t, req{method: "GET", target: "/sessions", noKey: true, header: map[string]string{HeaderAPIKey: "other-key"}}); w.Code != 200 {
		t.Fatalf("other key: %d", w.Code)
	}
	for _, k := range ts.lim.keys {
		if strings.Contains(k, testKey) || strings.Contains(k, "other-key") {
			t.Fatalf("a rate-limit key holds the API key: %q", k)
		}
	}
	if ts.lim.keys[0] != "create:ip:192.0.2.1" {
		t.Fatalf("create limit key %q", ts.lim.keys[0])
	}
	// the probes have budgets of their own, per address
	if w := ts.do(t, req{method: "GET", target: "/health", noKey: true}); w.Code != 200 || w.Header().Get("RateLimit-Limit") != "120" {
		t.Fatal(w.Code, w.Header())
	}
	// a limiter that cannot answer refuses with 503, but for the probes, which fail open
	ts.lim.Err = errors.New("redis down")
	w = ts.do(t, create)
	if e := errorOf(t, w); w.Code != 503 || e.Error.Code != "unavailable" {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	for _, probe := range []string{"/health", "/ready"} {
		if w := ts.do(t, req{method: "GET", target: probe, noKey: true}); w.Code != 200 {
			t.Fatalf("%s with the limiter down: %d %s", probe, w.Code, w.Body.String())
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := clientip.ParseTrusted([]string{"10.0.0.0/8", "192.168.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		peer, xff, want string
	}{
		{"203.0.113.9:5555", "", "203.0.113.9"},
		{"203.0.113.9:5555", "1.2.3.4", "203.0.113.9"},                        // untrusted peer: XFF ignored
		{"10.1.2.3:80", "1.2.3.4", "1.2.3.4"},                                 // trusted peer
		{"10.1.2.3:80", "6.6.6.6, 1.2.3.4, 10.9.9.9", "1.2.3.4"},              // walk from the right past proxies; the spoofed left is ignored
		{"10.1.2.3:80", "6.6.6.6, 1.2.3.4, 192.168.1.1", "1.2.3.4"},           // single-address proxy
		{"10.1.2.3:80", "10.2.2.2, 10.3.3.3", "10.2.2.2"},                     // all proxies: the leftmost
		{"10.1.2.3:80", "garbage, 10.3.3.3", "10.3.3.3"},                      // unreadable hop: the last trusted one
		{"[::ffff:10.1.2.3]:80", "2001:db8::1", "2001:db8::1"},                // mapped peer
		{"10.1.2.3:80", "", "10.1.2.3"},                                       // trusted but no header
		{"192.168.1.2:80", "1.2.3.4", "192.168.1.2"},                          // near a single address is not it
		{"10.1.2.3:80", "::ffff:5.6.7.8", "5.6.7.8"},                          // mapped hop
		{"10.1.2.3:80", "1.1.1.1,   2.2.2.2  ", "2.2.2.2"},                    // spaces
		{"bad-remote", "1.2.3.4", "invalid IP"},                               // unparsable peer
		{"10.1.2.3:80", "1.2.3.4, 10.0.0.1, unknown", "10.1.2.3"},             // unreadable rightmost hop
		{"10.1.2.3:80", strings.Repeat("9.9.9.9,", 3) + "8.8.8.8", "8.8.8.8"}, // many hops
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := clientip.Of(r, trusted); got.String() != c.want {
			t.Errorf("peer %s xff %q: got %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	if _, err := clientip.ParseTrusted([]string{"10.0.0.0/33"}); err == nil {
		t.Fatal("a bad CIDR is accepted")
	}
	_ = netip.Addr{}
}

func TestCreateLimitUsesForwardedIP(t *testing.T) {
	trusted, _ := clientip.ParseTrusted([]string{"192.0.2.0/24"})
	ts := newTestServer(t, Options{TrustedProxies: trusted})
	ts.do(t, req{method: "POST", target: "/session/create", body: `{"user_id":"u"}`, header: map[string]string{"X-Forwarded-For": "198.51.100.7"}})
	if ts.lim.keys[0] != "create:ip:198.51.100.7" {
		t.Fatalf("key %q", ts.lim.keys[0])
	}
}

func TestMetrics(t *testing.T) {
	ts := newTestServer(t, Options{})
	ts.do(t, req{method: "POST", target: "/session/create", body: `{"user_id":"u"}`})
	ts.do(t, req{method: "GET", target: "/session/ab12cd34/status"})
	ts.do(t, req{method: "GET", target: "/nope"})
	w := ts.do(t, req{method: "GET", target: "/metrics"})
	var m MetricsResponse
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if m.Counters["creates"] != 1 || m.Counters["requests"] != 3 || m.Counters["client_errors"] != 1 ||
		m.Sessions.ByState["running"] != 1 || m.Sessions.ByState["creating"] != 1 || m.Sessions.Total != 2 || // the seed and the new one
		len(m.Sessions.ByState) != len(session.States) {
		t.Fatalf("%+v", m)
	}
	for _, accept := range []string{"text/plain", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"} {
		w = ts.do(t, req{method: "GET", target: "/metrics", header: map[string]string{"Accept": accept}})
		body := w.Body.String()
		for _, want := range []string{
			`hyperbola_http_request_duration_seconds_bucket{code="201",route="POST /session/create"`,
			`hyperbola_http_request_duration_seconds_count{code="404",route="unmatched"} 1`,
			`hyperbola_lifecycle_phase_duration_seconds_count{phase="create_accepted"} 1`,
			`hyperbola_sessions{state="running"} 1`,
			`hyperbola_api_creates_total 1`,
			`go_goroutines`,
		} {
			if !strings.Contains(body, want) {
				t.Fatalf("Accept %q: the exposition lacks %s:\n%s", accept, want, body)
			}
		}
	}
	w = ts.do(t, req{method: "GET", target: "/metrics/prometheus"})
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") || !strings.Contains(w.Body.String(), "hyperbola_http_request_duration_seconds") {
		t.Fatalf("%v %s", w.Header(), w.Body.String())
	}
	// JSON stays the default for curl and for clients asking for JSON.
	for _, accept := range []string{"*/*", "application/json", "application/json, text/plain;q=0.5"} {
		w = ts.do(t, req{method: "GET", target: "/metrics", header: map[string]string{"Accept": accept}})
		if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("Accept %q gave %s", accept, w.Header().Get("Content-Type"))
		}
	}
}

func TestRegistriesArePerServer(t *testing.T) {
	a, b := newTestServer(t, Options{}), newTestServer(t, Options{})
	if a.Registry() == b.Registry() {
		t.Fatal("two servers share a registry")
	}
}

func TestActorHeaderBelievesOnlyTerraform(t *testing.T) {
	for header, want := range map[string]string{"": "api", "terraform": "terraform", "sweep": "api", "reconcile": "api"} {
		r := httptest.NewRequest(http.MethodGet, "/sessions", nil)
		if header != "" {
			r.Header.Set(HeaderActor, header)
		}
		if got := session.ActorOf(actorFrom(r)); got != want {
			t.Errorf("%s %q: actor %q, want %q", HeaderActor, header, got, want)
		}
	}
}
