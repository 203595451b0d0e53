package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// TestBadInput sends requests the API must refuse: each gets its 4xx and the JSON error
// naming the field, and nothing is written: no record, no object applied, no event, no
// activity (the fakes are compared whole). What reaches the Manager is refused by the real
// Service's own checks, before it takes a lock.
func TestBadInput(t *testing.T) {
	big := `{"user_id":"u","labels":{"a":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}}`
	cases := []struct {
		name   string
		q      req
		status int
		code   string
		field  string
	}{
		// bodies
		{"malformed JSON", req{method: "POST", target: "/session/create", body: `{"user_id":`}, 400, "invalid_argument", "body"},
		{"not JSON at all", req{method: "POST", target: "/session/create", body: `user_id=u`}, 400, "invalid_argument", "body"},
		{"array body", req{method: "POST", target: "/session/create", body: `[{"user_id":"u"}]`}, 400, "invalid_argument", "body"},
		{"string body", req{method: "POST", target: "/session/create", body: `"u"`}, 400, "invalid_argument", "body"},
		{"user_id a number", req{method: "POST", target: "/session/create", body: `{"user_id":42}`}, 400, "invalid_argument", "user_id"},
		{"backup_on_delete a string", req{method: "POST", target: "/session/create", body: `{"user_id":"u","backup_on_delete":"yes"}`}, 400, "invalid_argument", "backup_on_delete"},
		{"labels an array", req{method: "POST", target: "/session/create", body: `{"user_id":"u","labels":["a"]}`}, 400, "invalid_argument", "labels"},
		{"label value a number", req{method: "POST", target: "/session/create", body: `{"user_id":"u","labels":{"a":1}}`}, 400, "invalid_argument", "labels"},
		{"missing user_id", req{method: "POST", target: "/session/create", body: `{}`}, 400, "invalid_argument", "user_id"},
		{"blank user_id", req{method: "POST", target: "/session/create", body: `{"user_id":"   "}`}, 400, "invalid_argument", "user_id"},
		{"user_id too long", req{method: "POST", target: "/session/create", body: `{"user_id":"` + strings.Repeat("u", 255) + `"}`}, 400, "invalid_argument", "user_id"},
		{"user_id control char", req{method: "POST", target: "/session/create", body: `{"user_id":"a\u0007b"}`}, 400, "invalid_argument", "user_id"},
		{"empty body", req{method: "POST", target: "/session/create", ct: "-"}, 400, "invalid_argument", "body"},
		{"unknown member", req{method: "POST", target: "/session/create", body: `{"user_id":"u","admin":true}`}, 400, "invalid_argument", "admin"},
		{"trailing data", req{method: "POST", target: "/session/create", body: `{"user_id":"u"}{"user_id":"v"}`}, 400, "invalid_argument", "body"},
		{"trailing garbage", req{method: "POST", target: "/session/create", body: `{"user_id":"u"} x`}, 400, "invalid_argument", "body"},
		{"oversized body", req{method: "POST", target: "/session/create", body: big}, 413, "payload_too_large", "body"},
		{"wrong content type", req{method: "POST", target: "/session/create", body: `{"user_id":"u"}`, ct: "text/plain"}, 415, "unsupported_media_type", "Content-Type"},
		{"form content type", req{method: "POST", target: "/session/create", body: `user_id=u`, ct: "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", "Content-Type"},
		{"no content type", req{method: "POST", target: "/session/create", body: `{"user_id":"u"}`, ct: "-"}, 415, "unsupported_media_type", "Content-Type"},
		{"bad state", req{method: "POST", target: "/session/create", body: `{"user_id":"u","state":"deleted"}`}, 400, "invalid_argument", "state"},
		{"bad storage", req{method: "POST", target: "/session/create", body: `{"user_id":"u","storage":"lots"}`}, 400, "invalid_argument", "storage"},
		{"negative cpu", req{method: "POST", target: "/session/create", body: `{"user_id":"u","cpu":"-1"}`}, 400, "invalid_argument", "cpu"},
		{"bad image", req{method: "POST", target: "/session/create", body: `{"user_id":"u","image":"a b"}`}, 400, "invalid_argument", "image"},
		{"idle_timeout garbage", req{method: "POST", target: "/session/create", body: `{"user_id":"u","idle_timeout":"soon"}`}, 400, "invalid_argument", "idle_timeout"},
		{"idle_timeout negative", req{method: "POST", target: "/session/create", body: `{"user_id":"u","idle_timeout":-5}`}, 400, "invalid_argument", "idle_timeout"},
		{"idle_timeout too short", req{method: "POST", target: "/session/create", body: `{"user_id":"u","idle_timeout":"10s"}`}, 400, "invalid_argument", "idle_timeout"},
		{"idle_connected_max garbage", req{method: "POST", target: "/session/create", body: `{"user_id":"u","idle_connected_max":"later"}`}, 400, "invalid_argument", "idle_connected_max"},
		{"idle_connected_max under idle_timeout", req{method: "POST", target: "/session/create", body: `{"user_id":"u","idle_timeout":"1h","idle_connected_max":"30m"}`}, 400, "invalid_argument", "idle_connected_max"},
		{"idle_connected_max too short on patch", req{method: "PATCH", target: "/session/ab12cd34", body: `{"idle_connected_max":"20s"}`}, 400, "invalid_argument", "idle_connected_max"},
		{"ttl garbage", req{method: "POST", target: "/session/create", body: `{"user_id":"u","ttl":"forever"}`}, 400, "invalid_argument", "ttl"},
		{"ttl negative", req{method: "POST", target: "/session/create", body: `{"user_id":"u","ttl":"-1h"}`}, 400, "invalid_argument", "ttl"},
		{"ttl too short", req{method: "POST", target: "/session/create", body: `{"user_id":"u","ttl":"30m"}`}, 400, "invalid_argument", "ttl"},
		{"ttl too short on patch", req{method: "PATCH", target: "/session/ab12cd34", body: `{"ttl":60}`}, 400, "invalid_argument", "ttl"},
		{"reserved label", req{method: "POST", target: "/session/create", body: `{"user_id":"u","labels":{"hyperbola.dev/session":"x"}}`}, 400, "invalid_argument", "labels"},
		{"idempotency key with space", req{method: "POST", target: "/session/create", body: `{"user_id":"u"}`, header: map[string]string{"Idempotency-Key": "a b"}}, 400, "invalid_argument", "Idempotency-Key"},
		{"idempotency key too long", req{method: "POST", target: "/session/create", body: `{"user_id":"u"}`, header: map[string]string{"Idempotency-Key": strings.Repeat("k", 129)}}, 400, "invalid_argument", "Idempotency-Key"},
		{"query on create", req{method: "POST", target: "/session/create?debug=1", body: `{"user_id":"u"}`}, 400, "invalid_argument", "debug"},
		// routes and methods
		{"unknown route", req{method: "GET", target: "/sessions/all"}, 404, "route_not_found", ""},
		{"unknown root route", req{method: "GET", target: "/admin"}, 404, "route_not_found", ""},
		{"wrong method on create", req{method: "GET", target: "/session/create"}, 405, "method_not_allowed", ""},
		{"wrong method on list", req{method: "POST", target: "/sessions", body: `{}`}, 405, "method_not_allowed", ""},
		{"wrong method on health", req{method: "DELETE", target: "/health", noKey: true}, 405, "method_not_allowed", ""},
		{"dot-dot path", req{method: "GET", target: "/session/../x/status"}, 400, "invalid_argument", "uuid"},
		// ids
		{"id ../x escaped", req{method: "GET", target: "/session/..%2Fx/status"}, 400, "invalid_argument", "uuid"},
		{"id upper case", req{method: "GET", target: "/session/ABCDEFGH/status"}, 400, "invalid_argument", "uuid"},
		{"id 9 chars", req{method: "POST", target: "/session/abcdefghi/sleep"}, 400, "invalid_argument", "uuid"},
		{"id 7 chars", req{method: "POST", target: "/session/abcdefg/wake"}, 400, "invalid_argument", "uuid"},
		{"id starts with digit", req{method: "DELETE", target: "/session/1bcdefgh"}, 400, "invalid_argument", "uuid"},
		{"id non-ASCII", req{method: "GET", target: "/session/%C3%A9bcdefg/status"}, 400, "invalid_argument", "uuid"},
		{"id with NUL", req{method: "GET", target: "/session/abcdefg%00/status"}, 400, "invalid_argument", "uuid"},
		{"id empty", req{method: "GET", target: "/session//status"}, 400, "invalid_argument", "uuid"},
		{"id SQL-ish", req{method: "PATCH", target: "/session/a'%20OR%201/", body: `{}`}, 404, "route_not_found", ""},
		{"id on patch", req{method: "PATCH", target: "/session/abc_defg", body: `{}`}, 400, "invalid_argument", "uuid"},
		// keys
		{"missing key", req{method: "GET", target: "/sessions", noKey: true}, 401, "unauthenticated", ""},
		{"wrong key", req{method: "GET", target: "/sessions", noKey: true, header: map[string]string{"X-API-Key": "nope"}}, 401, "unauthenticated", ""},
		{"key prefix", req{method: "GET", target: "/sessions", noKey: true, header: map[string]string{"X-API-Key": testKey[:5]}}, 401, "unauthenticated", ""},
		{"key on create missing", req{method: "POST", target: "/session/create", body: `{"user_id":"u"}`, noKey: true}, 401, "unauthenticated", ""},
		{"metrics without key", req{method: "GET", target: "/metrics", noKey: true}, 401, "unauthenticated", ""},
		// list query
		{"negative limit", req{method: "GET", target: "/sessions?limit=-1"}, 400, "invalid_argument", "limit"},
		{"zero limit", req{method: "GET", target: "/sessions?limit=0"}, 400, "invalid_argument", "limit"},
		{"huge limit", req{method: "GET", target: "/sessions?limit=1001"}, 400, "invalid_argument", "limit"},
		{"limit not a number", req{method: "GET", target: "/sessions?limit=ten"}, 400, "invalid_argument", "limit"},
		{"bad cursor", req{method: "GET", target: "/sessions?cursor=!!!"}, 400, "invalid_argument", "cursor"},
		{"cursor too long", req{method: "GET", target: "/sessions?cursor=" + strings.Repeat("A", 600)}, 400, "invalid_argument", "cursor"},
		{"bad status filter", req{method: "GET", target: "/sessions?status=asleep"}, 400, "invalid_argument", "status"},
		{"wait not a duration", req{method: "GET", target: "/session/ab12cd34/status?wait=soon"}, 400, "invalid_argument", "wait"},
		{"wait in bare seconds", req{method: "GET", target: "/session/ab12cd34/status?wait=20"}, 400, "invalid_argument", "wait"},
		{"wait negative", req{method: "GET", target: "/session/ab12cd34/status?wait=-1s"}, 400, "invalid_argument", "wait"},
		{"wait over the maximum", req{method: "GET", target: "/session/ab12cd34/status?wait=21s"}, 400, "invalid_argument", "wait"},
		{"wait on sleep", req{method: "POST", target: "/session/ab12cd34/sleep?wait=1s"}, 400, "invalid_argument", "wait"},
		{"repeated user_id", req{method: "GET", target: "/sessions?user_id=a&user_id=b"}, 400, "invalid_argument", "user_id"},
		{"unknown query param", req{method: "GET", target: "/sessions?sort=desc"}, 400, "invalid_argument", "sort"},
		{"malformed query", req{method: "GET", target: "/sessions?user_id=%zz"}, 400, "invalid_argument", "query"},
		// transitions
		{"skip_backup not a bool", req{method: "DELETE", target: "/session/ab12cd34?skip_backup=maybe"}, 400, "invalid_argument", "skip_backup"},
		{"body on sleep", req{method: "POST", target: "/session/ab12cd34/sleep", body: `{"force":true}`}, 400, "invalid_argument", "force"},
		{"patch user_id", req{method: "PATCH", target: "/session/ab12cd34", body: `{"user_id":"v"}`}, 400, "invalid_argument", "user_id"},
		{"patch storage garbage", req{method: "PATCH", target: "/session/ab12cd34", body: `{"storage":"big"}`}, 400, "invalid_argument", "storage"},
		{"patch empty image", req{method: "PATCH", target: "/session/ab12cd34", body: `{"image":""}`}, 400, "invalid_argument", "image"},
		{"patch without body", req{method: "PATCH", target: "/session/ab12cd34", ct: "-"}, 400, "invalid_argument", "body"},
		{"patch wrong content type", req{method: "PATCH", target: "/session/ab12cd34", body: `{}`, ct: "application/xml"}, 415, "unsupported_media_type", "Content-Type"},
		// activity
		{"activity kind unknown", req{method: "POST", target: "/session/ab12cd34/activity", body: `{"kind":"typing"}`}, 400, "invalid_argument", "kind"},
		{"activity kind a number", req{method: "POST", target: "/session/ab12cd34/activity", body: `{"kind":1}`}, 400, "invalid_argument", "kind"},
		{"activity kind upper case", req{method: "POST", target: "/session/ab12cd34/activity", body: `{"kind":"INPUT"}`}, 400, "invalid_argument", "kind"},
		{"activity unknown member", req{method: "POST", target: "/session/ab12cd34/activity", body: `{"kind":"input","at":"now"}`}, 400, "invalid_argument", "at"},
		{"activity query", req{method: "POST", target: "/session/ab12cd34/activity?kind=input"}, 400, "invalid_argument", "kind"},
		{"activity read query", req{method: "GET", target: "/session/ab12cd34/activity?since=1"}, 400, "invalid_argument", "since"},
		{"activity read bad id", req{method: "GET", target: "/session/ABCDEFGH/activity"}, 400, "invalid_argument", "uuid"},
		{"activity wrong method", req{method: "DELETE", target: "/session/ab12cd34/activity"}, 405, "method_not_allowed", ""},
		{"activity credential forged", req{method: "GET", target: "/session/ab12cd34/activity", noKey: true, header: map[string]string{"Authorization": "Bearer hbact_ab12cd34_AAAA"}}, 401, "unauthenticated", ""},
	}
	if len(cases) < 30 {
		t.Fatalf("the table must hold at least 30 bad requests, it holds %d", len(cases))
	}
	ts := newTestServer(t, Options{})
	before := ts.writes(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := ts.do(t, c.q)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body.String())
			}
			e := errorOf(t, w)
			if e.Error.Code != c.code || e.Error.Field != c.field {
				t.Fatalf("error %+v, want code %q field %q", e.Error, c.code, c.field)
			}
			if c.status == http.StatusMethodNotAllowed && w.Header().Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
			if after := ts.writes(t); after != before {
				t.Fatalf("a bad request wrote:\n before %s\n after  %s", before, after)
			}
		})
	}
	calls := ts.spy.Calls("")
	for _, c := range calls {
		if session.KindOf(c.Err) != session.KindInvalid {
			t.Errorf("%s %s reached the Service and ended %v, not refused as invalid", c.Op, c.ID, c.Err)
		}
	}
	t.Logf("%d bad requests, nothing written; %d refused by the Service's checks", len(cases), len(calls))
}
