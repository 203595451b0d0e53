package sweep_test

import (
	"slices"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// clock is the shared settable clock.
type clock = sessiontest.Clock

// world is what a sweep works on, in memory: the real session Service (seen through a Spy)
// on the session core's fakes, one clock for all (the integration tests use the real parts).
type world struct {
	*sessiontest.Fakes
	svc *sessiontest.Spy
}

func newWorld() *world {
	f := sessiontest.New()
	return &world{Fakes: f, svc: sessiontest.NewSpy(f.Service(session.Options{}))}
}

// sleptIDs returns the sessions the sweep put to sleep, sorted.
func (w *world) sleptIDs() []string {
	var out []string
	for _, ev := range w.Recorder.Events("") {
		if ev.Type == "slept" {
			out = append(out, ev.SessionID)
		}
	}
	slices.Sort(out)
	return out
}

// count returns how many times id appears in ids.
func count(ids []string, id string) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}
