package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// GET /sessions' answer is encoding/json's, written without reflection.
func TestListResponseJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC)
	a := &session.Session{ID: "ab12cd34", UserID: "u<1>", State: session.StateRunning, CreatedAt: at,
		Labels: map[string]string{"k": "v"}, IdleTimeout: session.Duration(15 * time.Minute)}
	for name, l := range map[string]ListResponse{
		"empty":  {Sessions: []*session.Session{}},
		"nil":    {},
		"two":    {Sessions: []*session.Session{a, {ID: "b"}}, Count: 2, NextCursor: "MTIzOmFi<&>"},
		"cursor": {Sessions: []*session.Session{}, NextCursor: "x"},
	} {
		want, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := l.AppendJSON(nil); err != nil || string(got) != string(want) {
			t.Errorf("%s:\n got %s (%v)\nwant %s", name, got, err, want)
		}
	}
}
