package sessiontest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Call is one call made through a Spy.
type Call struct {
	Op    string // "Create", "Get", "Await", "Sleep", "SleepIfIdle", "Wake", "Update", "Delete", "Advance", "List", "Touch"
	ID    string
	Actor string // session.ActorOf the call's context
	Err   error
}

// Spy is the real Service seen by a test: it records every call (who made it, how it ended)
// and makes an operation fail on request (Fail("Delete", err)) before the Service runs it.
type Spy struct {
	*session.Service
	faults
	mu    sync.Mutex
	calls []Call
}

var _ session.Manager = (*Spy)(nil)

// NewSpy wraps svc.
func NewSpy(svc *session.Service) *Spy { return &Spy{Service: svc} }

// Calls returns the calls of op ("" for all), in order.
func (s *Spy) Calls(op string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return filter(s.calls, func(c Call) bool { return op == "" || c.Op == op })
}

// IDs returns the ids of the calls of op that succeeded, in order.
func (s *Spy) IDs(op string) []string {
	var out []string
	for _, c := range s.Calls(op) {
		if c.Err == nil {
			out = append(out, c.ID)
		}
	}
	return slices.Clip(out)
}

// run records a call of op on id and runs fn unless a fault is injected for op.
func (s *Spy) run(ctx context.Context, op, id string, fn func() error) error {
	err := s.err(op)
	if err == nil {
		err = fn()
	}
	s.mu.Lock()
	s.calls = append(s.calls, Call{Op: op, ID: id, Actor: session.ActorOf(ctx), Err: err})
	s.mu.Unlock()
	return err
}

// one runs a Service call that answers a session.
func (s *Spy) one(ctx context.Context, op, id string, fn func() (*session.Session, error)) (*session.Session, error) {
	var out *session.Session
	err := s.run(ctx, op, id, func() (err error) { out, err = fn(); return err })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Create calls the Service's Create (its id is the created session's).
func (s *Spy) Create(ctx context.Context, req session.CreateRequest) (*session.Session, error) {
	var out *session.Session
	err := s.run(ctx, "Create", "", func() (err error) { out, err = s.Service.Create(ctx, req); return err })
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.calls[len(s.calls)-1].ID = out.ID
	s.mu.Unlock()
	return out, nil
}

// Get calls the Service's Get.
func (s *Spy) Get(ctx context.Context, id string) (*session.Session, error) {
	return s.one(ctx, "Get", id, func() (*session.Session, error) { return s.Service.Get(ctx, id) })
}

// Await calls the Service's Await.
func (s *Spy) Await(ctx context.Context, id string, wait time.Duration) (*session.Session, error) {
	return s.one(ctx, "Await", id, func() (*session.Session, error) { return s.Service.Await(ctx, id, wait) })
}

// List calls the Service's List.
func (s *Spy) List(ctx context.Context, opts session.ListOptions) (*session.ListResult, error) {
	var out *session.ListResult
	err := s.run(ctx, "List", "", func() (err error) { out, err = s.Service.List(ctx, opts); return err })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Sleep calls the Service's Sleep.
func (s *Spy) Sleep(ctx context.Context, id string) (*session.Session, error) {
	return s.one(ctx, "Sleep", id, func() (*session.Session, error) { return s.Service.Sleep(ctx, id) })
}

// SleepIfIdle calls the Service's SleepIfIdle.
func (s *Spy) SleepIfIdle(ctx context.Context, id string, now time.Time, reason session.SleepReason) (bool, error) {
	var slept bool
	err := s.run(ctx, "SleepIfIdle", id, func() (err error) { slept, err = s.Service.SleepIfIdle(ctx, id, now, reason); return err })
	return slept && err == nil, err
}

// Wake calls the Service's Wake.
func (s *Spy) Wake(ctx context.Context, id string) (*session.Session, error) {
	return s.one(ctx, "Wake", id, func() (*session.Session, error) { return s.Service.Wake(ctx, id) })
}

// Update calls the Service's Update.
func (s *Spy) Update(ctx context.Context, id string, req session.UpdateRequest) (*session.Session, error) {
	return s.one(ctx, "Update", id, func() (*session.Session, error) { return s.Service.Update(ctx, id, req) })
}

// Delete calls the Service's Delete.
func (s *Spy) Delete(ctx context.Context, id string, opts session.DeleteOptions) (*session.Session, error) {
	return s.one(ctx, "Delete", id, func() (*session.Session, error) { return s.Service.Delete(ctx, id, opts) })
}

// Touch calls the Service's Touch.
func (s *Spy) Touch(ctx context.Context, id string) (*session.Session, error) {
	return s.one(ctx, "Touch", id, func() (*session.Session, error) { return s.Service.Touch(ctx, id) })
}

// Advance calls the Service's Advance.
func (s *Spy) Advance(ctx context.Context, id string) error {
	return s.run(ctx, "Advance", id, func() error { return s.Service.Advance(ctx, id) })
}
