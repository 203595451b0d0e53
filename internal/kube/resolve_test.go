package kube

import (
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func TestBadQuantities(t *testing.T) {
	o := testOptions()
	for _, tc := range []struct{ field, value string }{
		{"storage", "lots"}, {"storage", "-5Gi"}, {"storage", "0"},
		{"cpu", "fast"}, {"cpu", "0"}, {"memory", "1 GB"},
	} {
		ws := testWorkspace()
		var err error
		switch tc.field {
		case "storage":
			ws.Storage = tc.value
			_, err = PersistentVolumeClaim(ws, o)
		case "cpu":
			ws.CPU = tc.value
			_, err = Deployment(ws, o)
		case "memory":
			ws.Memory = tc.value
			_, err = Deployment(ws, o)
		}
		if session.KindOf(err) != session.KindInvalid || session.FieldOf(err) != tc.field {
			t.Errorf("%s=%q: err = %v, want invalid %s", tc.field, tc.value, err, tc.field)
		}
	}
}
