package sessiontest

import (
	"context"
	"slices"
	"sync"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Recorder is a session.Recorder that keeps every event in memory.
type Recorder struct {
	faults
	mu     sync.Mutex
	events []session.Event
}

var _ session.Recorder = (*Recorder)(nil)

// Record keeps ev (or fails, when a fault is injected for "Record").
func (r *Recorder) Record(_ context.Context, ev session.Event) error {
	if err := r.err("Record"); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

// Events returns the events of session id ("" for all), in order.
func (r *Recorder) Events(id string) []session.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return filter(r.events, func(ev session.Event) bool { return id == "" || ev.SessionID == id })
}

// Types returns the types of session id's events, in order.
func (r *Recorder) Types(id string) []string {
	var out []string
	for _, ev := range r.Events(id) {
		out = append(out, ev.Type)
	}
	return slices.Clip(out)
}
