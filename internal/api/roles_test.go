package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// The callers of the role tests: an admin, two tenants with disjoint users (tenant A holds
// seedID's user by a pattern, tenant B one other user exactly), a metrics key, a sweep key,
// and no key at all.
const (
	adminKey   = "admin-key-0123456789"
	tenantAKey = "tenant-a-key-0123456789"
	tenantBKey = "tenant-b-key-0123456789"
	metricsKey = "metrics-key-0123456789"
	sweepKey   = "sweep-key-0123456789"
	// bobID is tenant B's session.
	bobID = "cd34ef56"
)

var roleKeys = []Key{
	{Name: "admin", Key: adminKey, Role: RoleAdmin},
	{Name: "tenant-a", Key: tenantAKey, Role: RoleTenant, Users: []string{"*@example.com"}},
	{Name: "tenant-b", Key: tenantBKey, Role: RoleTenant, Users: []string{"bob@other.test"}},
	{Name: "metrics", Key: metricsKey, Role: RoleMetrics},
	{Name: "sweep", Key: sweepKey, Role: RoleSweep},
}

// roleActivityKey is the role server's activity key: the activity credentials of seedID
// (the session every route is called on) and of bobID (another session) are callers too.
var roleActivityKey = []byte("role-test-activity-key-0123456789abcdef")

// caller is one column of the table: the key sent, and how the routes answer it.
type caller struct {
	name string
	key  string
}

var callers = []caller{{"admin", adminKey}, {"tenant-a", tenantAKey}, {"tenant-b", tenantBKey},
	{"metrics", metricsKey}, {"sweep", sweepKey}, {"none", ""},
	{"activity-own", activity.Token(roleActivityKey, seedID)}, {"activity-other", activity.Token(roleActivityKey, bobID)}}

// sweepAuthStandIn stands in for the sweep's handler behind its own authentication: it
// admits the keys the stack gives it (admin and sweep) and answers 401 to anything else.
type sweepAuthStandIn struct{}

func (sweepAuthStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if k := r.Header.Get(HeaderAPIKey); k != adminKey && k != sweepKey {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"skipped":false}`+"\n")
}

// newRoleServer is a server with every part, seedID (user@example.com's, tenant A's) and
// bobID (tenant B's) seeded, each with one archive, served over real HTTP on 127.0.0.1.
func newRoleServer(t *testing.T) (*httptest.Server, *testServer) {
	t.Helper()
	ts := newBareServer()
	bob := seedSession(bobID)
	bob.UserID = "bob@other.test"
	ts.fakes.Seed(bob)
	at := sessiontest.Epoch.Add(-2 * time.Hour)
	ts.seedBackups(t, backupOf(seedID, "user@example.com", at), backupOf(bobID, "bob@other.test", at))
	wakeLink := func(w http.ResponseWriter, _ *http.Request) error {
		wire.WriteJSON(w, http.StatusOK, map[string]string{"url": "https://example.test/wake"})
		return nil
	}
	ts.Server = ts.serve(ts.spy, Deps{Usage: &fakeUsage{}, Reconciler: &fakeReconciler{}, Sweep: sweepAuthStandIn{},
		WakeLink: wakeLink, Claims: ts.fakes.Store}, Options{APIKeys: []string{}, Keys: roleKeys, ActivityKey: roleActivityKey})
	srv := httptest.NewServer(ts.Server)
	t.Cleanup(srv.Close)
	return srv, ts
}

// call sends one request with key (none when empty) and returns the status and body.
func call(t *testing.T, srv *httptest.Server, method, target, key, body string, h ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequestWithContext(context.Background(), method, srv.URL+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		r.Header.Set(HeaderAPIKey, key)
	}
	for i := 0; i+1 < len(h); i += 2 {
		r.Header.Set(h[i], h[i+1])
	}
	res, err := srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// roleTable is what each route answers each caller, on tenant A's session and archive (and a
// create for tenant A's user). A tenant's list of another's users is a 200 that holds none of
// them (checked below). An activity credential is admitted on its own session's activity
// only: another session's is a 404 there, every other route a 403.
var roleTable = map[string]map[string]int{
	"POST /session/create":           {"admin": 201, "tenant-a": 201, "tenant-b": 404},
	"GET /session/{uuid}/status":     {"admin": 200, "tenant-a": 200, "tenant-b": 404},
	"POST /session/{uuid}/sleep":     {"admin": 200, "tenant-a": 200, "tenant-b": 404},
	"POST /session/{uuid}/wake":      {"admin": 200, "tenant-a": 200, "tenant-b": 404},
	"PATCH /session/{uuid}":          {"admin": 200, "tenant-a": 200, "tenant-b": 404},
	"DELETE /session/{uuid}":         {"admin": 202, "tenant-a": 202, "tenant-b": 404},
	"GET /sessions":                  {"admin": 200, "tenant-a": 200, "tenant-b": 200},
	"GET /backups":                   {"admin": 200, "tenant-a": 200, "tenant-b": 200},
	"DELETE /backups/{backup_id}":    {"admin": 200, "tenant-a": 200, "tenant-b": 404},
	"GET /health":                    {"admin": 200, "tenant-a": 200, "tenant-b": 200, "metrics": 200, "sweep": 200, "none": 200, "activity-own": 200, "activity-other": 200},
	"GET /ready":                     {"admin": 200, "tenant-a": 200, "tenant-b": 200, "metrics": 200, "sweep": 200, "none": 200, "activity-own": 200, "activity-other": 200},
	"GET /metrics":                   {"admin": 200, "metrics": 200},
	"GET /metrics/prometheus":        {"admin": 200, "metrics": 200},
	"POST /session/{uuid}/activity":  {"admin": 200, "tenant-a": 200, "tenant-b": 404, "activity-own": 200, "activity-other": 404},
	"GET /session/{uuid}/activity":   {"admin": 200, "tenant-a": 200, "tenant-b": 404, "activity-own": 200, "activity-other": 404},
	"POST /session/{uuid}/wake-link": {"admin": 200, "tenant-a": 200, "tenant-b": 404},
	"GET /usage":                     {"admin": 200},
	"POST /reconcile":                {"admin": 200},
	"POST /sweep":                    {"admin": 200, "sweep": 200, "none": 401},
}

// TestRoutesByRole walks every route the mux serves with every caller over real HTTP: a route
// the table does not admit a caller to is 401 without a key and 403 with a key of another
// role; a tenant on another tenant's session or archive is a 404, the same as a missing one.
func TestRoutesByRole(t *testing.T) {
	_, probe := newRoleServer(t)
	if got, want := len(probe.Routes()), len(roleTable); got != want {
		t.Fatalf("the mux serves %d routes, the table names %d: %q", got, want, probe.Routes())
	}
	backupID := backupOf(seedID, "", sessiontest.Epoch.Add(-2*time.Hour)).ID
	fill := strings.NewReplacer("{uuid}", seedID, "{backup_id}", backupID)
	for _, rt := range probe.Routes() {
		want, ok := roleTable[rt]
		if !ok {
			t.Fatalf("route %s is not in the role table", rt)
		}
		for _, c := range callers {
			t.Run(rt+"/"+c.name, func(t *testing.T) {
				srv, _ := newRoleServer(t) // each its own: deletes and sleeps change the seed
				method, path, _ := strings.Cut(rt, " ")
				body := ""
				switch {
				case rt == "POST /session/create":
					body = `{"user_id":"user@example.com"}`
				case method == http.MethodPost || method == http.MethodPatch:
					body = `{}`
				}
				target := fill.Replace(path)
				if rt == "GET /usage" { // a window is required: the last hour
					target += "?from=" + time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
				}
				code, got := call(t, srv, method, target, c.key, body)
				exp, admitted := want[c.name]
				switch {
				case admitted:
				case c.key == "":
					exp = 401
				default:
					exp = 403
				}
				if code != exp {
					t.Fatalf("%s as %s: %d, want %d: %s", rt, c.name, code, exp, got)
				}
				if exp == 403 && !strings.Contains(got, `"code":"forbidden"`) {
					t.Fatalf("403 body %s", got)
				}
				if exp == 404 && rt != "POST /session/create" && !strings.Contains(got, `"code":"not_found"`) {
					t.Fatalf("404 body %s", got)
				}
			})
		}
	}
}

// TestTenantSeesOnlyItsUsers: listings hold the tenant's users only, a filter on another
// user is an empty page, and another's session answers exactly as a missing one.
func TestTenantSeesOnlyItsUsers(t *testing.T) {
	srv, _ := newRoleServer(t)
	users := func(key, target, member string) []string {
		t.Helper()
		code, body := call(t, srv, "GET", target, key, "")
		if code != 200 {
			t.Fatalf("%s: %d %s", target, code, body)
		}
		var page map[string]json.RawMessage
		var items []struct {
			UserID string `json:"user_id"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(page[member], &items); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range items {
			out = append(out, x.UserID)
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		key, target, member string
		want                []string
	}{
		{adminKey, "/sessions", "sessions", []string{"bob@other.test", "user@example.com"}},
		{tenantAKey, "/sessions", "sessions", []string{"user@example.com"}},
		{tenantBKey, "/sessions", "sessions", []string{"bob@other.test"}},
		{tenantBKey, "/sessions?user_id=user@example.com", "sessions", nil},
		{tenantAKey, "/backups", "backups", []string{"user@example.com"}},
		{tenantBKey, "/backups", "backups", []string{"bob@other.test"}},
		{tenantAKey, "/backups?user_id=bob@other.test", "backups", nil},
	} {
		if got := users(c.key, c.target, c.member); !slices.Equal(got, c.want) {
			t.Errorf("%s as %s: %q, want %q", c.target, c.key, got, c.want)
		}
	}
	// another's session and a missing one: the same answer but for the id
	_, other := call(t, srv, "GET", "/session/"+bobID+"/status", tenantAKey, "")
	_, missing := call(t, srv, "GET", "/session/zz99zz99/status", tenantAKey, "")
	if strings.ReplaceAll(other, bobID, "X")[:60] != strings.ReplaceAll(missing, "zz99zz99", "X")[:60] {
		t.Fatalf("another's session %s, a missing one %s", other, missing)
	}
	// a restore for another user names nothing
	code, body := call(t, srv, "POST", "/session/create", tenantAKey, `{"user_id":"bob@other.test","restore_from":"`+bobID+`"}`)
	if code != 404 || strings.Contains(body, "bob") || strings.Contains(body, bobID) {
		t.Fatalf("a restore of another's archive: %d %s", code, body)
	}
}

// TestIdempotencyScopedAndBound: one idempotency key is each caller's own, and bound to its
// body: the same key and body replay the first session, another body is a 409 naming
// request_id, and another caller's same key makes a session of its own.
func TestIdempotencyScopedAndBound(t *testing.T) {
	srv, ts := newRoleServer(t)
	create := func(key, body string, h ...string) (int, map[string]any) {
		t.Helper()
		code, b := call(t, srv, "POST", "/session/create", key, body, h...)
		var m map[string]any
		_ = json.Unmarshal([]byte(b), &m)
		return code, m
	}
	first := `{"user_id":"user@example.com","request_id":"demo-1"}`
	code, a := create(tenantAKey, first)
	if code != 201 {
		t.Fatalf("first create: %d %v", code, a)
	}
	// the same key and body, by body or by header: the same session
	for _, again := range [][]string{{first}, {`{"user_id": "user@example.com"}`, HeaderIdempotencyKey, "demo-1"}} {
		code, b := create(tenantAKey, again[0], again[1:]...)
		if code != 201 || b["uuid"] != a["uuid"] || b["password"] != a["password"] {
			t.Fatalf("replay %q: %d %v, first %v", again, code, b, a)
		}
	}
	// the same key, another body: 409 naming request_id, nothing made
	before := ts.fakes.Store.Len()
	code, b := create(tenantAKey, `{"user_id":"user@example.com","request_id":"demo-1","cpu":"500m"}`)
	if e, _ := b["error"].(map[string]any); code != 409 || e["code"] != "conflict" || e["field"] != "request_id" {
		t.Fatalf("another body: %d %v", code, b)
	}
	if ts.fakes.Store.Len() != before {
		t.Fatalf("a refused replay made a session")
	}
	// another caller's "demo-1": its own session, never the first caller's
	for _, key := range []string{adminKey, tenantBKey} {
		body := first
		if key == tenantBKey {
			body = `{"user_id":"bob@other.test","request_id":"demo-1"}`
		}
		code, c := create(key, body)
		if code != 201 || c["uuid"] == a["uuid"] || c["password"] == a["password"] {
			t.Fatalf("%s reusing demo-1: %d %v, first %v", key, code, c, a)
		}
	}
	// the access log names the caller by its key's name and role, never by the key (read once
	// the server has finished every request: it logs after answering)
	srv.Close()
	if log := ts.log.String(); !strings.Contains(log, `"key_name":"tenant-a","role":"tenant"`) || strings.Contains(log, tenantAKey) {
		t.Fatalf("access log: %s", log)
	}
}
