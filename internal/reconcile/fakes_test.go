package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// fakeCluster is a session.Cluster in memory: the observed sessions, the backup Jobs by
// (id, attempt), and a log of the calls that change something.
type fakeCluster struct {
	mu      sync.Mutex
	obs     map[string]*session.Observed
	backups map[string]*session.Backup // "<id>/<attempt>"
	calls   []string
}

func newFakeCluster(obs ...*session.Observed) *fakeCluster {
	c := &fakeCluster{obs: map[string]*session.Observed{}, backups: map[string]*session.Backup{}}
	for _, o := range obs {
		c.obs[o.ID] = o
	}
	return c
}

func (c *fakeCluster) log(format string, args ...any) {
	c.calls = append(c.calls, fmt.Sprintf(format, args...))
}

func (c *fakeCluster) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func (c *fakeCluster) Apply(context.Context, session.Workspace) error { return errors.New("not used") }

func (c *fakeCluster) Scale(_ context.Context, id string, replicas int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log("scale %s %d", id, replicas)
	if o := c.obs[id]; o != nil {
		o.DesiredReplicas, o.Ready = replicas, false
	}
	return nil
}

func (c *fakeCluster) Observe(_ context.Context, id string) (*session.Observed, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o := c.obs[id]; o != nil {
		cp := *o
		return &cp, nil
	}
	return &session.Observed{ID: id}, nil
}

func (c *fakeCluster) ObserveAll(context.Context) ([]*session.Observed, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*session.Observed
	for _, o := range c.obs {
		cp := *o
		out = append(out, &cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (c *fakeCluster) Password(context.Context, string) (string, error) { return "pw", nil }

func (c *fakeCluster) StartBackup(_ context.Context, id string, attempt int) (*session.Backup, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := fmt.Sprintf("%s/%d", id, attempt)
	if b := c.backups[k]; b != nil {
		return b, nil
	}
	o := c.obs[id]
	if o == nil || !o.Has(session.ObjectPVC) {
		return nil, session.NotFound(id)
	}
	c.log("backup %s %d", id, attempt)
	b := &session.Backup{Phase: session.BackupRunning, Location: "pvc://backups/" + id + "/" + id + ".zip"}
	c.backups[k] = b
	return b, nil
}

func (c *fakeCluster) BackupStatus(_ context.Context, id string, attempt int) (*session.Backup, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.backups[fmt.Sprintf("%s/%d", id, attempt)]; b != nil {
		cp := *b
		return &cp, nil
	}
	return &session.Backup{Phase: session.BackupMissing}, nil
}

// finishBackup sets the outcome of a backup Job.
func (c *fakeCluster) finishBackup(id string, attempt int, phase session.BackupPhase, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.backups[fmt.Sprintf("%s/%d", id, attempt)]
	b.Phase, b.Reason = phase, reason
}

func (c *fakeCluster) DeleteWorkspace(_ context.Context, id string, deletePVC bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log("delete %s pvc=%v", id, deletePVC)
	o := c.obs[id]
	if o == nil {
		return nil
	}
	if deletePVC || !o.Has(session.ObjectPVC) {
		delete(c.obs, id)
		return nil
	}
	o.Kinds, o.Complete, o.DesiredReplicas, o.Ready = []session.ObjectKind{session.ObjectPVC}, false, 0, false
	return nil
}

// fakeStore is a session.Store in memory.
type fakeStore struct {
	mu      sync.Mutex
	recs    map[string]*session.Session
	locks   map[string]bool
	touched map[string]time.Time
}

func newFakeStore() *fakeStore {
	return &fakeStore{recs: map[string]*session.Session{}, locks: map[string]bool{}, touched: map[string]time.Time{}}
}

func (s *fakeStore) Reserve(_ context.Context, sess *session.Session) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recs[sess.ID] != nil {
		return false, nil
	}
	s.recs[sess.ID] = sess.Clone()
	return true, nil
}

func (s *fakeStore) Get(_ context.Context, id string) (*session.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.recs[id]; r != nil {
		return r.Clone(), nil
	}
	return nil, session.NotFound(id)
}

func (s *fakeStore) Put(_ context.Context, sess *session.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[sess.ID] = sess.Clone()
	return nil
}

func (s *fakeStore) Remove(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.recs, id)
	return nil
}

func (s *fakeStore) List(context.Context, session.ListOptions) (*session.ListResult, error) {
	return nil, errors.New("not used")
}

func (s *fakeStore) Touch(_ context.Context, id string, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.touched[id] = t
	return nil
}

func (s *fakeStore) Lock(_ context.Context, id string, _, _ time.Duration) (func(context.Context) error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks[id] {
		return nil, &session.Error{Kind: session.KindBusy, Message: "busy"}
	}
	s.locks[id] = true
	return func(context.Context) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.locks, id)
		return nil
	}, nil
}

func (s *fakeStore) ClaimRequest(_ context.Context, _, id string, _ time.Duration) (string, error) {
	return id, nil
}

func (s *fakeStore) Ping(context.Context) error { return nil }

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
