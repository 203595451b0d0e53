package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

var testActivityKey = []byte("unit-test-activity-key-0123456789abcdef")

// newActivityServer is the ops server (the Spy is a Toucher) with an activity key, on the
// fakes' clock, holding seedID and a session with a two-hour connected cap.
func newActivityServer(t *testing.T) *opsServer {
	t.Helper()
	o := newOpsServer(t)
	capped := seedSession("ef56gh78")
	capped.IdleConnectedMax = session.Duration(2 * time.Hour)
	deleting := seedSession("gh78ij90")
	deleting.State = session.StateDeleting
	o.fakes.Seed(capped, deleting)
	o.Server = o.serve(o.spy, Deps{Now: o.fakes.Clock.Now}, Options{APIKeys: []string{testKey}, ActivityKey: testActivityKey})
	return o
}

// credential is a request on session id's activity carrying its activity credential, as a
// bearer token.
func credential(method, id, body string) req { return credentialOf(method, id, id, body) }

// credentialOf is a request on session id's activity carrying session of's credential.
func credentialOf(method, id, of, body string) req {
	return req{method: method, target: "/session/" + id + "/activity", body: body, noKey: true,
		header: map[string]string{"Authorization": "Bearer " + activity.Token(testActivityKey, of)}}
}

// TestActivityCredential: a session's credential reports and reads its own session's activity
// (as a bearer token or in X-API-Key), is limited per session, and is nothing anywhere else;
// one that does not verify is an invalid key (401, counted against the address).
func TestActivityCredential(t *testing.T) {
	o := newActivityServer(t)
	o.fakes.Clock.Add(time.Minute)
	w := o.do(t, credential("POST", "ef56gh78", `{"kind":"input"}`))
	var got ActivityResponse
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	now := sessiontest.Epoch.Add(time.Minute)
	if got.ID != "ef56gh78" || !got.LastActivity.Equal(now) || !got.Now.Equal(now) || got.IdleTimeout.D() != 15*time.Minute ||
		got.IdleConnectedMax.D() != 2*time.Hour || got.IdleAt == nil || !got.IdleAt.Equal(now.Add(15*time.Minute)) ||
		got.SleepAt == nil || !got.SleepAt.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("answer %s", w.Body)
	}
	if w.Header().Get("RateLimit-Limit") != "30" || !slices.Contains(o.lim.keys, "activity:ef56gh78") {
		t.Fatalf("limit %q under %q", w.Header().Get("RateLimit-Limit"), o.lim.keys)
	}
	// the read changes nothing and tells the server's clock
	o.fakes.Clock.Add(30 * time.Second)
	q := credential("GET", "ef56gh78", "")
	q.header = map[string]string{HeaderAPIKey: activity.Token(testActivityKey, "ef56gh78")}
	w = o.do(t, q)
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 || !got.LastActivity.Equal(now) ||
		!got.Now.Equal(now.Add(30*time.Second)) {
		t.Fatalf("read %d %s", w.Code, w.Body)
	}
	if n := len(o.fakes.Store.Touches("ef56gh78")); n != 1 {
		t.Fatalf("%d touches, want the report's only", n)
	}
	for _, c := range []struct {
		name   string
		q      req
		status int
		code   string
	}{
		{"another session's report", credentialOf("POST", seedID, "ef56gh78", ""), 404, "not_found"},
		{"another session's read", credentialOf("GET", seedID, "ef56gh78", ""), 404, "not_found"},
		{"a deleting session", credential("GET", "gh78ij90", ""), 409, "conflict"},
		{"a deleting session's report", credential("POST", "gh78ij90", ""), 409, "conflict"},
		{"a bad kind", credential("POST", "ef56gh78", `{"kind":"typing"}`), 400, "invalid_argument"},
		{"status", req{method: "GET", target: "/session/ef56gh78/status", noKey: true, header: credential("GET", "ef56gh78", "").header}, 403, "forbidden"},
		{"wake", req{method: "POST", target: "/session/ef56gh78/wake", noKey: true, header: credential("GET", "ef56gh78", "").header}, 403, "forbidden"},
		{"list", req{method: "GET", target: "/sessions", noKey: true, header: credential("GET", "ef56gh78", "").header}, 403, "forbidden"},
	} {
		w := o.do(t, c.q)
		if e := errorOf(t, w); w.Code != c.status || e.Error.Code != c.code {
			t.Errorf("%s: %d %+v", c.name, w.Code, e.Error)
		}
	}
	// another session's answer names nothing but the id, as a missing one's
	other, missing := o.do(t, credentialOf("GET", seedID, "ef56gh78", "")), o.do(t, req{method: "GET", target: "/session/zz99zz99/activity"})
	if a, b := errorOf(t, other).Error.Message, errorOf(t, missing).Error.Message; strings.ReplaceAll(a, seedID, "X") != strings.ReplaceAll(b, "zz99zz99", "X") {
		t.Fatalf("another session %q, a missing one %q", a, b)
	}

	// credentials that do not verify: the invalid key's path, counted against the address
	forged := activity.Token([]byte("another-activity-key-0123456789abcdef"), "ef56gh78")
	good := activity.Token(testActivityKey, "ef56gh78")
	o.lim.keys = nil
	for name, tok := range map[string]string{
		"another key":     forged,
		"tampered":        good[:len(good)-2] + "AA",
		"another id":      strings.Replace(good, "ef56gh78", "ef56gh79", 1),
		"the prefix only": activity.TokenPrefix,
	} {
		w := o.do(t, req{method: "POST", target: "/session/ef56gh78/activity", noKey: true, header: map[string]string{"Authorization": "Bearer " + tok}})
		if e := errorOf(t, w); w.Code != 401 || e.Error.Code != "unauthenticated" {
			t.Errorf("%s: %d %+v", name, w.Code, e.Error)
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(o.lim.keys), func(k string) bool { return !strings.HasPrefix(k, "auth_failed:ip:") })); n != 4 {
		t.Fatalf("failed credentials counted %d times: %q", n, o.lim.keys)
	}
	// a control plane without an activity key refuses every credential
	plain := newOpsServer(t)
	w = plain.do(t, req{method: "POST", target: "/session/ab12cd34/activity", noKey: true,
		header: map[string]string{"Authorization": "Bearer " + activity.Token(testActivityKey, seedID)}})
	if w.Code != 401 {
		t.Fatalf("without a key: %d %s", w.Code, w.Body)
	}
}

// TestActivityKinds: each kind is counted by name; no body is the api kind.
func TestActivityKinds(t *testing.T) {
	o := newActivityServer(t)
	for _, body := range []string{`{"kind":"input"}`, `{"kind":"cpu"}`, `{"kind":"stay"}`, `{"kind":"input"}`, ``, `{}`} {
		if w := o.do(t, credential("POST", seedID, body)); w.Code != 200 {
			t.Fatalf("%s: %d %s", body, w.Code, w.Body)
		}
	}
	w := o.do(t, req{method: "GET", target: "/metrics/prometheus"})
	for _, want := range []string{`hyperbola_activity_reports_total{kind="input"} 2`, `hyperbola_activity_reports_total{kind="cpu"} 1`,
		`hyperbola_activity_reports_total{kind="stay"} 1`, `hyperbola_activity_reports_total{kind="api"} 2`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestActivityIsNoKeyRole: no configured key may have role activity or look like a credential.
func TestActivityIsNoKeyRole(t *testing.T) {
	for name, c := range map[string]struct {
		plain []string
		keys  []Key
		want  string
	}{
		"role activity":  {nil, []Key{{Name: "ext", Key: "k-0123456789", Role: RoleActivity}}, "role activity"},
		"prefixed key":   {nil, []Key{{Name: "x", Key: "hbact_ab12cd34_x", Role: RoleAdmin}}, `"hbact_"`},
		"prefixed admin": {[]string{"hbact_zz"}, nil, `"hbact_"`},
	} {
		if err := CheckKeys(c.plain, c.keys); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
