package stack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestKeysAndRoles: API_KEYS_JSON's keys reach the API with their roles (a metrics key reads
// /metrics and nothing else), a sweep key reaches the sweep's own check, and a bad entry
// fails the build naming the variable.
func TestKeysAndRoles(t *testing.T) {
	st := newStack(t, map[string]string{"API_KEY": "admin-1", "API_KEYS_JSON": `[
		{"name":"prom","key":"metrics-1","role":"metrics"},
		{"name":"scheduler","key":"sweep-1","role":"sweep"},
		{"name":"portal","key":"tenant-1","role":"tenant","users":["*@school.edu"]}]`})
	h, err := st.Handlers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		h            http.Handler
		method, path string
		key          string
		want         int
	}{
		{h.API, "GET", "/metrics/prometheus", "metrics-1", 200},
		{h.API, "GET", "/sessions", "metrics-1", 403},
		{h.API, "GET", "/sessions", "tenant-1", 200},
		{h.API, "GET", "/sessions", "admin-1", 200},
		{h.API, "GET", "/usage", "tenant-1", 403},
		{h.API, "POST", "/sweep", "tenant-1", 403},
		{h.Sweep, "POST", "/", "tenant-1", 401},
		{h.Sweep, "POST", "/", "metrics-1", 401},
		{h.API, "POST", "/sweep", "sweep-1", 200},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(c.method, c.path, nil)
		r.Header.Set("X-API-Key", c.key)
		c.h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s %s as %s: %d, want %d: %s", c.method, c.path, c.key, w.Code, c.want, w.Body)
		}
	}
	if keys := sweepKeys(st.Config); strings.Join(keys, ",") != "admin-1,sweep-1" {
		t.Errorf("the sweep takes %q", keys)
	}
	for env, want := range map[string]string{
		`[{"name":"x","key":"k","role":"root"}]`:                  `API_KEYS_JSON: key "x": unknown role "root"`,
		`[{"name":"x","key":"k","role":"tenant"}]`:                `API_KEYS_JSON: key "x": a tenant key needs users`,
		`[{"name":"x","key":"k","role":"tenant","users":["[a"]}]`: `API_KEYS_JSON: key "x": user pattern "[a" is malformed`,
	} {
		_, err := newStack(t, map[string]string{"API_KEYS_JSON": env}).Handlers(context.Background())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", env, err, want)
		}
	}
}
