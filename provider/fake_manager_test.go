package provider

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// fakeManager is an in-memory session.Manager that follows the session core's rules closely
// enough for the provider's unit tests: a create or a wake becomes running after a few Gets, a
// delete becomes deleted (with a backup location) after a few Gets, or failed when the backup
// is made to fail.
type fakeManager struct {
	mu         sync.Mutex
	sessions   map[string]*session.Session
	order      []string
	requests   map[string]string
	calls      map[string]int
	next       int
	settleGets int             // Gets before a pending step completes
	pending    map[string]int  // id -> Gets left
	failBackup map[string]bool // id -> the next backup fails
}

var _ session.Manager = (*fakeManager)(nil)

func newFakeManager() *fakeManager {
	return &fakeManager{
		sessions: map[string]*session.Session{}, requests: map[string]string{}, calls: map[string]int{},
		settleGets: 2, pending: map[string]int{}, failBackup: map[string]bool{},
	}
}

func (f *fakeManager) count(op string) { f.calls[op]++ }

// Calls returns how many times op was called ("" = all ops).
func (f *fakeManager) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if op != "" {
		return f.calls[op]
	}
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func (f *fakeManager) Create(_ context.Context, req session.CreateRequest) (*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("create")
	if id, ok := f.requests[req.RequestID]; ok && req.RequestID != "" {
		return f.sessions[id].Clone(), nil
	}
	if err := session.CheckUserID(req.UserID); err != nil {
		return nil, err
	}
	if err := session.CheckState("state", req.State); err != nil {
		return nil, err
	}
	f.next++
	id := fmt.Sprintf("ws%06d", f.next)
	now := time.Now().UTC().Truncate(time.Second)
	s := &session.Session{
		ID: id, UserID: req.UserID, State: session.StateCreating, WorkspaceURL: "https://vs-code-" + id + ".test.local",
		Image: or(req.Image, "codercom/code-server:4.96.4"), Storage: or(req.Storage, "5Gi"), CPU: or(req.CPU, "250m"),
		Memory: or(req.Memory, "256Mi"), IdleTimeout: session.Duration(15 * time.Minute), BackupOnDelete: true,
		Labels: maps.Clone(req.Labels), CreatedAt: now, UpdatedAt: now, LastActivity: now, ExpiresAt: now.Add(24 * time.Hour),
	}
	if req.IdleTimeout != nil {
		s.IdleTimeout = *req.IdleTimeout
	}
	if req.TTL != nil {
		if err := session.CheckTTL(*req.TTL); err != nil {
			return nil, err
		}
		s.ExpiresAt = session.ExpiresAt(now, *req.TTL)
	}
	if req.BackupOnDelete != nil {
		s.BackupOnDelete = *req.BackupOnDelete
	}
	if _, err := session.ParseQuantity("storage", s.Storage); err != nil {
		return nil, err
	}
	if req.State == session.StateSleeping {
		s.State = session.StateSleeping
	} else {
		f.pending[id] = f.settleGets
	}
	f.sessions[id] = s
	f.order = append(f.order, id)
	if req.RequestID != "" {
		f.requests[req.RequestID] = id
	}
	out := s.Clone()
	out.Password = "pw-" + id
	return out, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (f *fakeManager) get(id string) (*session.Session, error) {
	if err := session.CheckID(id); err != nil {
		return nil, err
	}
	s, ok := f.sessions[id]
	if !ok {
		return nil, session.NotFound(id)
	}
	return s, nil
}

// advance moves a pending step one Get forward.
func (f *fakeManager) advance(s *session.Session) {
	left, ok := f.pending[s.ID]
	if !ok {
		return
	}
	if left > 1 {
		f.pending[s.ID] = left - 1
		return
	}
	delete(f.pending, s.ID)
	switch s.State {
	case session.StateCreating, session.StateWaking:
		s.State = session.StateRunning
	case session.StateDeleting:
		if f.failBackup[s.ID] {
			s.State, s.Reason = session.StateFailed, "backup failed, the volume was kept: job failed"
			return
		}
		s.State = session.StateDeleted
	}
	s.UpdatedAt = time.Now().UTC()
}

func (f *fakeManager) Get(_ context.Context, id string) (*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("get")
	s, err := f.get(id)
	if err != nil {
		return nil, err
	}
	f.advance(s)
	return s.Clone(), nil
}

func (f *fakeManager) List(_ context.Context, opts session.ListOptions) (*session.ListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("list")
	start := 0
	if opts.Cursor != "" {
		n, err := strconv.Atoi(opts.Cursor)
		if err != nil {
			return nil, session.Invalid("cursor", "bad cursor")
		}
		start = n
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = 100
	}
	var matched []*session.Session
	for _, id := range f.order {
		s := f.sessions[id]
		if (opts.UserID == "" || s.UserID == opts.UserID) && (opts.State == "" || s.State == opts.State) {
			matched = append(matched, s.Clone())
		}
	}
	sort.SliceStable(matched, func(i, j int) bool { return matched[i].CreatedAt.Before(matched[j].CreatedAt) })
	res := &session.ListResult{}
	end := min(start+limit, len(matched))
	if start < len(matched) {
		res.Sessions = matched[start:end]
	}
	if end < len(matched) {
		res.NextCursor = strconv.Itoa(end)
	}
	return res, nil
}

func (f *fakeManager) Sleep(_ context.Context, id string) (*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("sleep")
	s, err := f.get(id)
	if err != nil {
		return nil, err
	}
	switch s.State {
	case session.StateDeleting, session.StateDeleted:
		return nil, session.Conflict("session %s is %s: it cannot sleep", id, s.State)
	}
	s.State, s.Reason = session.StateSleeping, ""
	delete(f.pending, id)
	return s.Clone(), nil
}

func (f *fakeManager) Wake(_ context.Context, id string) (*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("wake")
	s, err := f.get(id)
	if err != nil {
		return nil, err
	}
	switch s.State {
	case session.StateRunning, session.StateWaking, session.StateCreating:
		return s.Clone(), nil
	case session.StateDeleting, session.StateDeleted:
		return nil, session.Conflict("session %s is %s: it cannot wake", id, s.State)
	}
	s.State, s.Reason = session.StateWaking, ""
	f.pending[id] = f.settleGets
	return s.Clone(), nil
}

func (f *fakeManager) Update(_ context.Context, id string, req session.UpdateRequest) (*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("update")
	s, err := f.get(id)
	if err != nil {
		return nil, err
	}
	if s.State == session.StateDeleting || s.State == session.StateDeleted {
		return nil, session.Conflict("session %s is %s: it cannot change", id, s.State)
	}
	if req.Storage != nil {
		was, _ := session.ParseQuantity("storage", s.Storage)
		now, err := session.ParseQuantity("storage", *req.Storage)
		if err != nil {
			return nil, err
		}
		if now.Cmp(was) < 0 {
			return nil, session.Invalid("storage", "storage cannot shrink from %s to %s", s.Storage, *req.Storage)
		}
		s.Storage = *req.Storage
	}
	if req.Image != nil {
		s.Image = *req.Image
	}
	if req.CPU != nil {
		s.CPU = *req.CPU
	}
	if req.Memory != nil {
		s.Memory = *req.Memory
	}
	if req.IdleTimeout != nil {
		s.IdleTimeout = *req.IdleTimeout
	}
	if req.TTL != nil {
		if err := session.CheckTTL(*req.TTL); err != nil {
			return nil, err
		}
		s.ExpiresAt = session.ExpiresAt(s.CreatedAt, *req.TTL)
	}
	if req.BackupOnDelete != nil {
		s.BackupOnDelete = *req.BackupOnDelete
	}
	if req.Labels != nil {
		s.Labels = maps.Clone(req.Labels)
		if len(s.Labels) == 0 {
			s.Labels = nil
		}
	}
	s.UpdatedAt = time.Now().UTC()
	return s.Clone(), nil
}

func (f *fakeManager) Delete(_ context.Context, id string, opts session.DeleteOptions) (*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.count("delete")
	s, err := f.get(id)
	if err != nil {
		return nil, err
	}
	switch s.State {
	case session.StateDeleted, session.StateDeleting:
		return s.Clone(), nil
	}
	s.State, s.Reason = session.StateDeleting, ""
	if s.BackupOnDelete && !opts.SkipBackup {
		s.Attempt++
		s.BackupLocation = fmt.Sprintf("pvc://hyperbola-backups/%s/%s-%d.zip", id, id, s.Attempt)
	}
	f.pending[id] = f.settleGets
	return s.Clone(), nil
}

// remove forgets a session entirely (its tombstone expired).
func (f *fakeManager) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sessions, id)
}

// set changes a session out of band (the idle sweep, another client).
func (f *fakeManager) set(id string, fn func(*session.Session)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sessions[id]; ok {
		fn(s)
	}
}
