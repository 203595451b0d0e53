package integration

import (
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// TestLimitsOverHTTP: a maximum is a 400 naming the field and the limit, a quota a 403 naming
// the limit; every answer is checked against the OpenAPI document (the fixture's transport),
// and a refused create leaves nothing in the cluster.
func TestLimitsOverHTTP(t *testing.T) {
	f := newFixtureWith(t, setup{limits: session.Limits{MaxMemory: "16Gi", MaxStorage: "100Gi",
		ImageAllowlist: session.DefaultImageAllowlist(session.DefaultImage), MaxSessionsPerUser: 2, MaxRunningPerUser: 1}})
	base := f.server(api.Options{}).URL

	for _, c := range []struct {
		body, field, limit string
	}{
		{`{"user_id":"ada@example.com","storage":"64Ti"}`, "storage", session.LimitMaxStorage},
		{`{"user_id":"ada@example.com","memory":"17Gi"}`, "memory", session.LimitMaxMemory},
		{`{"user_id":"ada@example.com","memory":"3Ei"}`, "memory", ""}, // its limit would overflow: refused as such
		{`{"user_id":"ada@example.com","image":"evil.example/miner:1"}`, "image", session.LimitImageAllowlist},
	} {
		var e wire.ErrorBody
		if code, _ := f.call("POST", base+"/session/create", c.body, &e); code != 400 || e.Error.Code != "invalid_argument" ||
			e.Error.Field != c.field || e.Error.Limit != c.limit {
			t.Fatalf("%s: %d %+v", c.body, code, e)
		}
	}

	var first session.Session
	if code, _ := f.call("POST", base+"/session/create", `{"user_id":"ada@example.com"}`, &first); code != 201 {
		t.Fatalf("create: %d", code)
	}
	var e wire.ErrorBody
	if code, h := f.call("POST", base+"/session/create", `{"user_id":"ada@example.com"}`, &e); code != 403 ||
		e.Error.Code != "quota_exceeded" || e.Error.Limit != session.LimitRunningPerUser || h.Get("Retry-After") != "" {
		t.Fatalf("second running: %d %+v", code, e)
	}
	var asleep session.Session
	if code, _ := f.call("POST", base+"/session/create", `{"user_id":"ada@example.com","state":"sleeping"}`, &asleep); code != 201 {
		t.Fatalf("create asleep: %d", code)
	}
	e = wire.ErrorBody{}
	if code, _ := f.call("POST", base+"/session/create", `{"user_id":"ada@example.com","state":"sleeping"}`, &e); code != 403 ||
		e.Error.Limit != session.LimitSessionsPerUser {
		t.Fatalf("third session: %d %+v", code, e)
	}
	e = wire.ErrorBody{}
	if code, _ := f.call("POST", base+"/session/"+asleep.ID+"/wake", "", &e); code != 403 || e.Error.Limit != session.LimitRunningPerUser {
		t.Fatalf("wake over the quota: %d %+v", code, e)
	}
	var list session.ListResult
	if code, _ := f.call("GET", base+"/sessions?user_id=ada@example.com", "", &list); code != 200 || len(list.Sessions) != 2 {
		t.Fatalf("sessions after the refusals: %d %+v", code, list)
	}
}
