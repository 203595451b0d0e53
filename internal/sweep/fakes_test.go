package sweep_test

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// clock is the shared settable clock.
type clock = testenv.Clock

func newClock() *clock { return testenv.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }

// memStore is an in-memory sweep.Store for the unit tests (the integration tests use the
// real one on redis-server).
type memStore struct {
	mu       sync.Mutex
	sessions map[string]*session.Session
	leases   map[string]bool
	touches  map[string][]time.Time
	deferred map[string]time.Time
	lists    int
}

func newMemStore(ss ...*session.Session) *memStore {
	m := &memStore{sessions: map[string]*session.Session{}, leases: map[string]bool{},
		touches: map[string][]time.Time{}, deferred: map[string]time.Time{}}
	for _, s := range ss {
		m.sessions[s.ID] = s.Clone()
	}
	return m
}

func (m *memStore) Get(_ context.Context, id string) (*session.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return nil, session.NotFound(id)
	}
	return s.Clone(), nil
}

func (m *memStore) put(s *session.Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[s.ID] = s.Clone()
}

func (m *memStore) List(_ context.Context, opts session.ListOptions) (*session.ListResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lists++
	res := &session.ListResult{}
	for _, s := range m.sorted() {
		if opts.State == "" || s.State == opts.State {
			res.Sessions = append(res.Sessions, s.Clone())
		}
	}
	return res, nil
}

func (m *memStore) sorted() []*session.Session {
	out := make([]*session.Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func awake(st session.State) bool {
	return st == session.StateRunning || st == session.StateCreating || st == session.StateWaking
}

func (m *memStore) IdleCandidates(_ context.Context, now time.Time, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, s := range m.sorted() {
		deadline := s.LastActivity.Add(s.IdleTimeout.D())
		if d, ok := m.deferred[s.ID]; ok && d.After(deadline) {
			deadline = d
		}
		if awake(s.State) && s.IdleTimeout > 0 && deadline.Before(now) && len(ids) < limit {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

func (m *memStore) Expired(_ context.Context, now time.Time, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, s := range m.sorted() {
		if s.State != session.StateDeleted && !s.ExpiresAt.IsZero() && !s.ExpiresAt.After(now) && len(ids) < limit {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

func (m *memStore) Lease(_ context.Context, name string, _ time.Duration) (func(context.Context) error, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leases[name] {
		return nil, false, nil
	}
	m.leases[name] = true
	return func(context.Context) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.leases, name)
		return nil
	}, true, nil
}

func (m *memStore) Touch(_ context.Context, id string, t time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return session.NotFound(id)
	}
	m.touches[id] = append(m.touches[id], t)
	if t.After(s.LastActivity) {
		s.LastActivity = t
	}
	delete(m.deferred, id)
	return nil
}

// deferringStore adds sweep.IdleDeferrer.
type deferringStore struct{ *memStore }

func (d deferringStore) DeferIdle(_ context.Context, id string, until time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deferred[id] = until
	return nil
}

// fakeSessions is a sweep.Sessions that moves records in a memStore.
type fakeSessions struct {
	store    *memStore
	now      func() time.Time
	mu       sync.Mutex
	slept    []string
	deleted  []string
	advanced []string
	actors   []string
	sleepErr error
}

func (f *fakeSessions) Sleep(ctx context.Context, id string) (*session.Session, error) {
	f.mu.Lock()
	f.actors = append(f.actors, session.ActorOf(ctx))
	f.mu.Unlock()
	if f.sleepErr != nil {
		return nil, f.sleepErr
	}
	s, err := f.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	s.State = session.StateSleeping
	f.store.put(s)
	f.mu.Lock()
	f.slept = append(f.slept, id)
	f.mu.Unlock()
	return s, nil
}

func (f *fakeSessions) Delete(ctx context.Context, id string, _ session.DeleteOptions) (*session.Session, error) {
	s, err := f.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	s.State, s.Pending, s.UpdatedAt = session.StateDeleting, session.PendingBackup, f.now()
	s.Attempt++
	f.store.put(s)
	f.mu.Lock()
	f.deleted = append(f.deleted, id)
	f.mu.Unlock()
	return s, nil
}

func (f *fakeSessions) Advance(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advanced = append(f.advanced, id)
	return nil
}

func (f *fakeSessions) sleptIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string(nil), f.slept...)
	sort.Strings(out)
	return out
}
