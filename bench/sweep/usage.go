package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// usageBench is n sessions' durable records and events in the emulator.
type usageBench struct {
	rec      *events.Recorder
	n        int
	now      time.Time
	recorded int64
}

// usageWindow is one GET /usage row: its window starts at from.
type usageWindow struct {
	name string
	from time.Time
}

// windows are the rows: one window that covers every session from its creation, and one that
// starts after it (between "ready" and "slept"), where each session's state at from is what
// its records tell: the first event within the window for the half that slept, the record for
// the half with no event since.
func (u *usageBench) windows() []usageWindow {
	return []usageWindow{
		{"usage (3-day window)", u.now.Add(-72 * time.Hour).Truncate(time.Hour)},
		{"usage (from 36h ago)", u.now.Add(-36 * time.Hour).Truncate(time.Hour)},
	}
}

// seedUsage writes n sessions' events through events.Recorder.Record into a project of their
// own: created and ready two days ago, and every other one slept a day ago.
func seedUsage(ctx context.Context, e *env, n int, o options) (*usageBench, error) {
	fs, err := firestore.NewClient(ctx, fmt.Sprintf("bench-usage-%d-%d", n, time.Now().UnixNano()))
	if err != nil {
		return nil, fmt.Errorf("firestore client: %w", err)
	}
	// The client lives as long as the process: the emulator is stopped with it.
	rec := events.New(fs, events.Options{Redis: e.rdb, Logger: slog.New(slog.DiscardHandler)})
	now := time.Now().UTC()
	u := &usageBench{rec: rec, n: n, now: now}
	var recorded atomic.Int64
	start := time.Now()
	err = parallel(n, o.fsWriters, func(i int) error {
		id := sessionID(i)
		born := now.Add(-48*time.Hour + time.Duration(i)*time.Millisecond)
		s := &session.Session{ID: id, UserID: userOf(i, n), State: session.StateCreating,
			WorkspaceURL: "https://vs-code-" + id + ".preview.hyperbola.in",
			Image:        "codercom/code-server:4.96.4", Storage: "5Gi", CPU: "250m", Memory: "256Mi",
			IdleTimeout: session.Duration(idleTimeout), BackupOnDelete: true,
			CreatedAt: born, UpdatedAt: born, LastActivity: born, ExpiresAt: born.Add(24 * time.Hour)}
		evs := []session.Event{{SessionID: id, Type: "created", To: session.StateCreating, At: born, Session: s.Clone()}}
		s.State, s.UpdatedAt = session.StateRunning, born.Add(30*time.Second)
		evs = append(evs, session.Event{SessionID: id, Type: "ready", From: session.StateCreating, To: session.StateRunning,
			At: s.UpdatedAt, Session: s.Clone()})
		if i%2 == 0 {
			s.State, s.UpdatedAt = session.StateSleeping, now.Add(-24*time.Hour)
			evs = append(evs, session.Event{SessionID: id, Type: "slept", From: session.StateRunning, To: session.StateSleeping,
				Actor: "sweep", At: s.UpdatedAt, Session: s.Clone()})
		}
		for _, ev := range evs {
			if err := rec.Record(ctx, ev); err != nil {
				return fmt.Errorf("recording %s of %s: %w", ev.Type, id, err)
			}
			if c := recorded.Add(1); c%5000 == 0 {
				fmt.Fprintf(os.Stderr, "  %d events recorded (%s)\n", c, time.Since(start).Round(time.Second))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seeding firestore: %w", err)
	}
	u.recorded = recorded.Load()
	fmt.Fprintf(os.Stderr, "seeded %d sessions' %d events in firestore in %s\n", n, u.recorded, time.Since(start).Round(time.Millisecond))
	return u, nil
}

type usageAnswer struct {
	Sessions []struct {
		SessionID string `json:"session_id"`
	} `json:"sessions"`
	PendingEvents int `json:"pending_events"`
}

// measureUsage asks GET /usage over window w (which holds every session), o.usageReads times,
// one at a time.
func measureUsage(ctx context.Context, e *env, a *apiServer, u *usageBench, w usageWindow, o options) (sample, error) {
	path := "/usage?from=" + url.QueryEscape(w.from.Format(time.RFC3339))
	s := sample{op: w.name, requests: o.usageReads}
	e.trips.Reset()
	cpu, t0 := processCPU(), time.Now()
	for range o.usageReads {
		var rep usageAnswer
		t := time.Now()
		if err := a.get(ctx, path, &rep); err != nil {
			return s, err
		}
		s.lat = append(s.lat, time.Since(t))
		fmt.Fprintf(os.Stderr, "  GET %s over %d sessions: %s\n", path, u.n, time.Since(t).Round(time.Millisecond))
		if len(rep.Sessions) != u.n || rep.PendingEvents != 0 {
			return s, fmt.Errorf("the usage report holds %d sessions (%d events pending), want %d (0)", len(rep.Sessions), rep.PendingEvents, u.n)
		}
	}
	s.wall, s.cpu, s.trips, s.cmds = time.Since(t0), processCPU()-cpu, e.trips.Trips(), e.trips.Commands()
	s.detail = fmt.Sprintf("%d sessions, %d events in firestore", u.n, u.recorded)
	return s, nil
}
