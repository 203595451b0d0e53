package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// readConfig says what the read table seeds and how long it reads.
type readConfig struct {
	sessions int    // seeded sessions
	users    int    // users they belong to (sessions/users each)
	requests int    // requests per read level
	state    string // "running" or "sleeping"
}

// seedConcurrency is how many creates (and status polls) the seeding runs at once.
const seedConcurrency = 50

// reads seeds rc.sessions sessions, waits until none has a step left, then measures status
// over all of them at concurrency 1, 10 and 100 and list by user at concurrency 10.
func (b *bench) reads(ctx context.Context, rc readConfig) error {
	start := time.Now()
	ids, users, err := b.seed(ctx, rc)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "  seeded %d %s sessions in %s\n", len(ids), rc.state, time.Since(start).Round(time.Second))
	status := func(ctx context.Context) error {
		return b.do(ctx, "GET", "/session/"+ids[rand.IntN(len(ids))]+"/status", "", 200, nil)
	}
	list := func(ctx context.Context) error {
		return b.do(ctx, "GET", "/sessions?user_id="+url.QueryEscape(users[rand.IntN(len(users))]), "", 200, nil)
	}
	fmt.Printf("\nReads over %d seeded %s sessions (%d users); goals at concurrency 10: status p99 ≤ 10ms, list by user p99 ≤ 15ms\n",
		len(ids), rc.state, len(users))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tconcurrency\trequests\tok\terrors\tp50\tp99\tmax\treq/s\t")
	for _, c := range []int{1, 10, 100} {
		n := max(rc.requests, 10*c)
		row(tw, "status", c, n, b.load(ctx, c, n, status))
	}
	n := max(rc.requests, 100)
	row(tw, "list by user", 10, n, b.load(ctx, 10, n, list))
	return tw.Flush()
}

// seed creates rc.sessions sessions, ten (sessions/users) per user, and returns their ids and
// users once each reports rc.state with no step pending, so the reads measure the steady state
// and never drive a step.
func (b *bench) seed(ctx context.Context, rc readConfig) ([]string, []string, error) {
	users := make([]string, min(rc.users, rc.sessions))
	for i := range users {
		users[i] = fmt.Sprintf("bench-%s-u%d@example.com", b.run, i)
	}
	ids := make([]string, rc.sessions)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	for range seedConcurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				id, err := b.seedOne(ctx, users[i%len(users)], rc.state)
				if err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, nil, fmt.Errorf("seeding: %w", firstErr)
	}
	return ids, users, nil
}

// seedOne creates one session for user and asks for its status until it is in state with no
// step pending.
func (b *bench) seedOne(ctx context.Context, user, state string) (string, error) {
	body := fmt.Sprintf(`{"user_id":%q}`, user)
	if state == "sleeping" {
		body = fmt.Sprintf(`{"user_id":%q,"state":"sleeping"}`, user)
	}
	var s struct {
		UUID    string `json:"uuid"`
		Status  string `json:"status"`
		Pending string `json:"pending"`
	}
	if err := b.do(ctx, "POST", "/session/create", body, 201, &s); err != nil {
		return "", err
	}
	for s.Status != state || s.Pending != "" {
		if s.Status == "failed" {
			return "", fmt.Errorf("session %s failed", s.UUID)
		}
		t := time.NewTimer(100 * time.Millisecond) // an API client can only ask again
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("session %s still %s: %w", s.UUID, s.Status, context.Cause(ctx))
		case <-t.C:
		}
		if err := b.do(ctx, "GET", "/session/"+s.UUID+"/status", "", 200, &s); err != nil {
			return "", err
		}
	}
	return s.UUID, nil
}
