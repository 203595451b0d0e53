package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// bigUser holds the last 100 sessions; every other user holds 10 (userOf).
const bigUser = "user-big@example.com"

// userOf is the owner of the i-th of n sessions: ten each, but the last 100 are bigUser's.
func userOf(i, n int) string {
	if i >= n-100 {
		return bigUser
	}
	return fmt.Sprintf("user%05d@example.com", i/10)
}

// sessionID is the i-th session's id: a recognisable shape.
func sessionID(i int) string { return fmt.Sprintf("b%07d", i) }

// fixture is n sessions in Redis under one prefix, the first idle of them idle.
type fixture struct {
	st   *store.Store
	clk  *testenv.Clock
	now  time.Time
	ids  []string
	idle int
}

// seedSessions writes n sessions through the store: running, idle timeout 15m, the first idle
// of them last active 20 minutes ago, the rest a minute ago.
func seedSessions(ctx context.Context, e *env, prefix string, n int, o options) (*fixture, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	f := &fixture{clk: testenv.NewClock(now), now: now, ids: make([]string, n), idle: min(o.idle, n)}
	f.st = store.New(e.rdb, prefix, store.Options{Now: f.clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for i := range f.ids {
		f.ids[i] = sessionID(i)
	}
	start := time.Now()
	err := parallel(n, o.writers, func(i int) error {
		at := now.Add(-time.Minute)
		if i < f.idle {
			at = now.Add(-20 * time.Minute)
		}
		s := &session.Session{
			ID: f.ids[i], UserID: userOf(i, n), State: session.StateRunning,
			WorkspaceURL: "https://vs-code-" + f.ids[i] + ".preview.hyperbola.in",
			Image:        "codercom/code-server:4.96.4", Storage: "5Gi", CPU: "250m", Memory: "256Mi",
			IdleTimeout: session.Duration(idleTimeout), BackupOnDelete: true,
			CreatedAt: at.Add(-time.Hour), UpdatedAt: at, LastActivity: at, ExpiresAt: now.Add(23 * time.Hour),
		}
		l, err := f.st.Lock(ctx, s.ID, time.Minute, time.Second)
		if err == nil {
			err = f.st.Put(ctx, l, s)
			_ = l.Release(ctx)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("seeding redis: %w", err)
	}
	fmt.Fprintf(os.Stderr, "seeded %d sessions in redis (%d idle) in %s\n", n, f.idle, time.Since(start).Round(time.Millisecond))
	return f, nil
}

// parallel calls fn(0..n-1) from workers goroutines and stops at the first error.
func parallel(n, workers int, fn func(i int) error) error {
	work := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range work {
				if err := fn(i); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for i := range n {
		select {
		case work <- i:
		case err = <-errc:
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errc)
	for e := range errc {
		err = errors.Join(err, e)
	}
	return err
}
