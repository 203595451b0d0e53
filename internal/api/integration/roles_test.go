package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
)

// TestRolesOverHTTP: keys with roles on the real store and cluster, every answer checked
// against openapi.yaml: a tenant acts for its users only (another's session, or a create for
// another user, is a 404), a metrics key reads /metrics and nothing else (403), and an
// idempotency key is the caller's own and bound to its body in Redis (a replay answers the
// first session, another body is a 409 naming request_id, another caller's same key makes its
// own session).
func TestRolesOverHTTP(t *testing.T) {
	f := newFixture(t)
	keys := []api.Key{
		{Name: "portal", Key: "tenant-a-5f1c", Role: api.RoleTenant, Users: []string{"*@school.test"}},
		{Name: "other", Key: "tenant-b-5f1c", Role: api.RoleTenant, Users: []string{"bob@other.test"}},
		{Name: "prom", Key: "metrics-5f1c", Role: api.RoleMetrics},
	}
	if err := api.CheckKeys([]string{apiKey}, keys); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(f.deps(), api.Options{APIKeys: []string{apiKey}, Keys: keys}))
	t.Cleanup(srv.Close)
	call := func(method, path, key, body string) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, srv.URL+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set(api.HeaderAPIKey, key)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := f.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return res.StatusCode, m
	}
	code := func(m map[string]any) any {
		e, _ := m["error"].(map[string]any)
		return e["code"]
	}
	ann := `{"user_id":"ann@school.test","request_id":"demo-1"}`
	st, a := call("POST", "/session/create", "tenant-a-5f1c", ann)
	if st != 201 {
		t.Fatalf("tenant create: %d %v", st, a)
	}
	id := a["uuid"].(string)
	if st, b := call("POST", "/session/create", "tenant-a-5f1c", ann); st != 201 || b["uuid"] != id || b["password"] != a["password"] {
		t.Fatalf("replay: %d %v", st, b)
	}
	st, b := call("POST", "/session/create", "tenant-a-5f1c", `{"user_id":"ann@school.test","request_id":"demo-1","memory":"512Mi"}`)
	if e, _ := b["error"].(map[string]any); st != 409 || e["code"] != "conflict" || e["field"] != "request_id" {
		t.Fatalf("another body: %d %v", st, b)
	}
	st, b = call("POST", "/session/create", "tenant-b-5f1c", `{"user_id":"bob@other.test","request_id":"demo-1"}`)
	if st != 201 || b["uuid"] == id || b["password"] == a["password"] {
		t.Fatalf("another caller's demo-1: %d %v", st, b)
	}
	for _, c := range []struct {
		method, path, key, body string
		want                    int
		code                    string
	}{
		{"GET", "/session/" + id + "/status", "tenant-b-5f1c", "", 404, "not_found"},
		{"POST", "/session/" + id + "/sleep", "tenant-b-5f1c", "", 404, "not_found"},
		{"DELETE", "/session/" + id, "tenant-b-5f1c", "", 404, "not_found"},
		{"POST", "/session/create", "tenant-a-5f1c", `{"user_id":"bob@other.test"}`, 404, "not_found"},
		{"GET", "/sessions", "metrics-5f1c", "", 403, "forbidden"},
		{"GET", "/usage", "tenant-a-5f1c", "", 403, "forbidden"},
		{"GET", "/sessions", "", "", 401, "unauthenticated"},
		{"GET", "/session/" + id + "/status", "tenant-a-5f1c", "", 200, ""},
		{"GET", "/metrics", "metrics-5f1c", "", 200, ""},
	} {
		st, b := call(c.method, c.path, c.key, c.body)
		if st != c.want || (c.code != "" && code(b) != c.code) {
			t.Errorf("%s %s as %q: %d %v, want %d %s", c.method, c.path, c.key, st, b, c.want, c.code)
		}
	}
	st, l := call("GET", "/sessions", "tenant-b-5f1c", "")
	if ss, _ := l["sessions"].([]any); st != 200 || len(ss) != 1 || ss[0].(map[string]any)["user_id"] != "bob@other.test" {
		t.Fatalf("tenant B's list: %d %v", st, l)
	}
}
