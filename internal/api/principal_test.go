package api

import (
	"strings"
	"testing"
)

func TestCheckKeys(t *testing.T) {
	ok := []Key{{Name: "a", Key: "ka", Role: RoleAdmin}, {Name: "t", Key: "kt", Role: RoleTenant, Users: []string{"*@school.edu", "ann"}},
		{Name: "m", Key: "km", Role: RoleMetrics}, {Name: "s", Key: "ks", Role: RoleSweep}}
	if err := CheckKeys([]string{"plain"}, ok); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		keys  []Key
		plain string
		want  string
	}{
		{[]Key{{Name: "x", Key: "k", Role: "root"}}, "", `key "x": unknown role "root"`},
		{[]Key{{Name: "x", Key: "k", Role: RoleTenant}}, "", `key "x": a tenant key needs users`},
		{[]Key{{Name: "x", Key: "k", Role: RoleTenant, Users: []string{"[a-"}}}, "", `user pattern "[a-" is malformed`},
		{[]Key{{Name: "x", Key: "k", Role: RoleTenant, Users: []string{"*"}}}, "", `matches every user`},
		{[]Key{{Name: "x", Key: "k", Role: RoleMetrics, Users: []string{"ann"}}}, "", `users are only for role tenant`},
		{[]Key{{Name: "", Key: "k", Role: RoleAdmin}}, "", `has no name`},
		{[]Key{{Name: "x", Key: " ", Role: RoleAdmin}}, "", `key is empty`},
		{[]Key{{Name: "x", Key: "k", Role: RoleAdmin}, {Name: "x", Key: "j", Role: RoleAdmin}}, "", `given twice`},
		{[]Key{{Name: "x", Key: "k", Role: RoleAdmin}}, "k", `given twice`},
	} {
		err := CheckKeys([]string{c.plain}, c.keys)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.keys, err, c.want)
		}
	}
}

func TestPrincipalAllows(t *testing.T) {
	p := &Principal{Role: RoleTenant, Users: []string{"*@school.edu", "ann@example.com"}}
	for u, want := range map[string]bool{"bo@school.edu": true, "ann@example.com": true, "bo@school.edu.evil": false,
		"ann@example.co": false, "x/y@school.edu": false} {
		if p.Allows(u) != want {
			t.Errorf("%q: %v", u, !want)
		}
	}
	if !(&Principal{Role: RoleAdmin}).Allows("anyone") {
		t.Fatal("an admin is not scoped")
	}
}
