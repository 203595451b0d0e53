package client

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/reconcile"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// touchingStub is the stub Manager plus Touch.
type touchingStub struct{ *stubManager }

var touchedAt = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

func (s touchingStub) Touch(_ context.Context, id string) (*session.Session, error) {
	x, err := s.answer("touch:" + id)
	if x != nil {
		x.LastActivity = touchedAt
	}
	return x, err
}

type stubOps struct {
	mu     sync.Mutex
	query  events.UsageQuery
	dry    []bool
	err    error
	recErr error
}

func (s *stubOps) Usage(_ context.Context, q events.UsageQuery) (*events.UsageReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.query = q
	if s.err != nil {
		return nil, s.err
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	return events.BuildReport([]events.Timeline{{SessionID: "ab12cd34", UserID: "u", CreatedAt: t0, Points: []events.Point{
		{At: t0, State: session.StateRunning}, {At: t0.Add(2 * time.Hour), Seq: 1, State: session.StateSleeping},
	}}}, q.From, t0.Add(4*time.Hour), events.Prices{PerRunningHour: 0.5, Currency: "EUR"}), nil
}

func (s *stubOps) Reconcile(_ context.Context, dryRun bool) (*reconcile.Report, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dry = append(s.dry, dryRun)
	if s.recErr != nil {
		return nil, s.recErr
	}
	return &reconcile.Report{DryRun: dryRun, Observed: 1, Rebuilt: []reconcile.Item{{ID: "ab12cd34", State: session.StateRunning}}}, nil
}

func newOpsAPI(t *testing.T, withOps bool) (*stubManager, *stubOps, *httptest.Server) {
	t.Helper()
	m, ops := &stubManager{}, &stubOps{}
	deps := api.Deps{Manager: m, Logger: slog.New(slog.DiscardHandler)}
	if withOps {
		deps.Manager, deps.Usage, deps.Reconciler = touchingStub{m}, ops, ops
	}
	srv := httptest.NewServer(api.New(deps, api.Options{APIKeys: []string{key}}))
	t.Cleanup(srv.Close)
	return m, ops, srv
}

func TestTouch(t *testing.T) {
	m, _, srv := newOpsAPI(t, true)
	c, _ := New(srv.URL, key, fast())
	ctx := context.Background()
	a, err := c.Touch(ctx, "ab12cd34")
	if err != nil || a.ID != "ab12cd34" || !a.LastActivity.Equal(touchedAt) || m.last != "touch:ab12cd34" {
		t.Fatalf("%+v %v (%v)", a, err, m.last)
	}
	if _, err := c.Touch(ctx, "../x"); session.FieldOf(err) != "uuid" {
		t.Fatalf("a malformed id is refused before any request: %v", err)
	}
	m.err = session.Conflict("session ab12cd34 is deleting")
	if _, err := c.Touch(ctx, "ab12cd34"); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("deleting: %v", err)
	}
	m.err = session.NotFound("ab12cd34")
	if _, err := c.Touch(ctx, "ab12cd34"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}

	_, _, plain := newOpsAPI(t, false)
	pc, _ := New(plain.URL, key, fast())
	if _, err := pc.Touch(ctx, "ab12cd34"); !IsUnimplemented(err) || IsUnimplemented(session.ErrConflict) {
		t.Fatalf("no Toucher: %v", err)
	}
}

func TestUsage(t *testing.T) {
	_, ops, srv := newOpsAPI(t, true)
	c, _ := New(srv.URL, key, fast())
	ctx := context.Background()
	from := time.Date(2026, 11, 1, 1, 0, 0, 500, time.FixedZone("", 2*3600))
	to := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	rep, err := c.Usage(ctx, events.UsageQuery{UserID: "u@example.com", From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if ops.query.UserID != "u@example.com" || !ops.query.From.Equal(from) || !ops.query.To.Equal(to) {
		t.Fatalf("the API got %+v", ops.query)
	}
	if len(rep.Sessions) != 1 || rep.Total.RunningHours != 2 || rep.Total.SleepingHours != 2 || rep.Total.SavingsPercent != 50 ||
		rep.Prices.Currency != "EUR" || rep.Sessions[0].State != session.StateSleeping || len(rep.Users) != 1 {
		t.Fatalf("%+v", rep)
	}
	lastHour := events.UsageQuery{From: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}
	if _, err := c.Usage(ctx, lastHour); err != nil || ops.query != lastHour {
		t.Fatalf("no to (now): %+v %v", ops.query, err)
	}
	if _, err := c.Usage(ctx, events.UsageQuery{}); session.FieldOf(err) != "from" || !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("no window: %v", err)
	}
	if _, err := c.Usage(ctx, events.UsageQuery{From: to, To: from}); session.FieldOf(err) != "from" || !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("from after to: %v", err)
	}
	ops.err = session.Unavailable("firestore", errors.New("down"))
	nc, _ := New(srv.URL, key, WithRetries(0))
	if _, err := nc.Usage(ctx, lastHour); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("firestore down: %v", err)
	}

	_, _, plain := newOpsAPI(t, false)
	pc, _ := New(plain.URL, key, fast())
	if _, err := pc.Usage(ctx, lastHour); !IsUnimplemented(err) {
		t.Fatalf("no records: %v", err)
	}
}

func TestReconcile(t *testing.T) {
	_, ops, srv := newOpsAPI(t, true)
	c, _ := New(srv.URL, key, fast())
	ctx := context.Background()
	rep, err := c.Reconcile(ctx, true)
	if err != nil || !rep.DryRun || len(rep.Rebuilt) != 1 || rep.Rebuilt[0].ID != "ab12cd34" {
		t.Fatalf("%+v %v", rep, err)
	}
	if rep, err := c.Reconcile(ctx, false); err != nil || rep.DryRun {
		t.Fatalf("%+v %v", rep, err)
	}
	if len(ops.dry) != 2 || !ops.dry[0] || ops.dry[1] {
		t.Fatalf("runs %v", ops.dry)
	}
	ops.recErr = &session.Error{Kind: session.KindBusy, Message: "another reconcile is running"}
	_, err = c.Reconcile(ctx, false)
	var ae *APIError
	if !errors.Is(err, session.ErrBusy) || !errors.As(err, &ae) || ae.RetryAfter != 10*time.Second || ae.Status != 409 {
		t.Fatalf("busy: %v %+v", err, ae)
	}
}
