package reconcile

import (
	"context"
	"sort"
	"sync"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// newCluster is a cluster holding the observed sessions' objects.
func newCluster(obs ...*session.Observed) *sessiontest.Cluster {
	c := sessiontest.NewCluster(clockAt(now))
	for _, o := range obs {
		c.Add(o)
	}
	return c
}

// newStore is an empty store on the tests' clock.
func newStore() *sessiontest.Store { return sessiontest.NewStore(clockAt(now)) }

// fakeRecords is Records in memory: the latest snapshot per session and every event.
type fakeRecords struct {
	mu      sync.Mutex
	recs    map[string]*session.Session
	events  []session.Event
	readErr error
	flushed int
}

func newFakeRecords(recs ...*session.Session) *fakeRecords {
	f := &fakeRecords{recs: map[string]*session.Session{}}
	for _, r := range recs {
		f.recs[r.ID] = r.Clone()
	}
	return f
}

func (f *fakeRecords) Record(_ context.Context, ev session.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, ev)
	if ev.Session != nil {
		s := ev.Session.Clone()
		s.State = ev.To
		f.recs[ev.SessionID] = s
	}
	return nil
}

func (f *fakeRecords) Sessions(_ context.Context, ids []string) (map[string]*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErr != nil {
		return nil, f.readErr
	}
	out := map[string]*session.Session{}
	for _, id := range ids {
		if r := f.recs[id]; r != nil {
			out[id] = r.Clone()
		}
	}
	return out, nil
}

func (f *fakeRecords) LiveSessions(context.Context) ([]*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErr != nil {
		return nil, f.readErr
	}
	var out []*session.Session
	for _, r := range f.recs {
		if r.State != session.StateDeleted {
			out = append(out, r.Clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeRecords) Flush(context.Context) (*events.FlushResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushed++
	return &events.FlushResult{}, nil
}

func (f *fakeRecords) Pending(context.Context) (*events.PendingInfo, error) {
	return &events.PendingInfo{Sessions: map[string]int{}}, nil
}

func (f *fakeRecords) eventsOf(id string) []session.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []session.Event
	for _, e := range f.events {
		if e.SessionID == id {
			out = append(out, e)
		}
	}
	return out
}
