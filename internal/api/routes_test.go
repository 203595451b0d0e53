package api

import (
	"net/http"
	"strings"
	"testing"
)

// TestEveryRouteKeyedAndLimited walks the routing table: every route but the public ones
// refuses a request without a key (401, before its handler reads anything, counted against
// the client IP's failed-key budget only), and is counted against its limit (creates per
// client IP, the rest per key); the probes take no key and are limited per client IP and
// route; POST /sweep (which checks its callers itself) is neither.
func TestEveryRouteKeyedAndLimited(t *testing.T) {
	public := map[string]string{"GET /health": "probe:health:ip:", "GET /ready": "probe:ready:ip:", "POST /sweep": ""}
	ts := newTestServer(t, Options{})
	routes := ts.Routes()
	for _, want := range []string{"GET /backups", "DELETE /backups/{backup_id}"} {
		if !strings.Contains(strings.Join(routes, "\n"), want) {
			t.Fatalf("%s is not served: %q", want, routes)
		}
	}
	fill := strings.NewReplacer("{uuid}", seedID, "{backup_id}", "ab12cd34-20260101T000000Z")
	for _, rt := range routes {
		t.Run(rt, func(t *testing.T) {
			method, path, _ := strings.Cut(rt, " ")
			q := req{method: method, target: fill.Replace(path), noKey: true}
			if method == http.MethodPost || method == http.MethodPatch {
				q.body = `{}`
			}
			asked := len(ts.lim.keys)
			w := ts.do(t, q)
			if prefix, ok := public[rt]; ok {
				n := 0
				if prefix != "" {
					n = 1
				}
				if w.Code == http.StatusUnauthorized || len(ts.lim.keys) != asked+n ||
					(n == 1 && ts.lim.keys[asked] != prefix+"192.0.2.1") {
					t.Fatalf("a public route: %d, limiter asked %q", w.Code, ts.lim.keys[asked:])
				}
				return
			}
			if e := errorOf(t, w); w.Code != http.StatusUnauthorized || e.Error.Code != "unauthenticated" {
				t.Fatalf("without a key: %d %s", w.Code, w.Body.String())
			}
			if got := ts.lim.keys[asked:]; len(got) != 1 || got[0] != "auth_failed:ip:192.0.2.1" {
				t.Fatalf("a request without a key was counted as %q, want its address's failed keys only", got)
			}
			asked++
			q.noKey = false
			ts.do(t, q)
			if len(ts.lim.keys) != asked+1 {
				t.Fatalf("with a key: the limiter was asked %d times", len(ts.lim.keys)-asked)
			}
			want := "key:"
			if rt == "POST /session/create" {
				want = "create:ip:"
			}
			if got := ts.lim.keys[asked]; !strings.HasPrefix(got, want) {
				t.Fatalf("limited under %q, want %s…", got, want)
			}
		})
	}
}
