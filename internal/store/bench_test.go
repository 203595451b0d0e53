package store

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// BenchmarkStore measures the store against a real redis-server holding 10,000 sessions
// (1,000 users with 10 each; 100 idle, the rest recently active) and reports Redis round trips
// per operation:
//
//	go test ./internal/store -run '^$' -bench Store
func BenchmarkStore(b *testing.B) {
	const (
		total = 10_000
		idle  = 100 // id(0) .. id(99)
	)
	be := realBackend(b)
	rt := NewRoundTrips()
	be.rdb.AddHook(rt)
	c := newClock()
	s := be.store(c, time.Hour)
	now := c.Now()
	ctx := b.Context()

	// sessionFor is the i-th session: 1 in 10 asleep, the first 100 idle for an hour.
	sessionFor := func(i int) *session.Session {
		x := newSession(id(i), fmt.Sprintf("user-%04d", i%1000), now.Add(-2*time.Hour+time.Duration(i)*time.Millisecond))
		x.LastActivity = now
		switch {
		case i < idle:
			x.LastActivity = now.Add(-time.Hour)
		case i%10 == 7:
			x.State = session.StateSleeping
		}
		return x
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < total; i += 8 {
				x := sessionFor(i)
				if ok, err := s.Reserve(ctx, fenceOf(b, s, x.ID), x); err != nil || !ok {
					b.Errorf("seeding %s: %v, %v", x.ID, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.Logf("seeded %d sessions in %v (%d round trips)", total, time.Since(start), rt.Trips())

	busy := func() string { return id(idle + rand.IntN(total-idle)) }
	run := func(name string, op func(i int) error) {
		b.Run(name, func(b *testing.B) {
			rt.Reset()
			if err := be.rdb.ConfigResetStat(ctx).Err(); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				if err := op(i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(rt.Trips())/float64(i), "trips/op")
			b.ReportMetric(serverMicros(b, be)/float64(i), "server-µs/op")
		})
	}
	run("Get", func(int) error { _, err := s.Get(ctx, busy()); return err })
	run("Put", func(i int) error {
		x := sessionFor(idle + rand.IntN(total-idle))
		x.UpdatedAt = now.Add(time.Duration(i) * time.Millisecond)
		return s.Put(ctx, fenceOf(b, s, x.ID), x)
	})
	run("Touch", func(i int) error { return s.Touch(ctx, busy(), now.Add(time.Duration(i)*time.Millisecond)) })
	var cursor string
	run("List100", func(int) error { // pages through all 10,000, 100 at a time, over and over
		res, err := s.List(ctx, session.ListOptions{Limit: 100, Cursor: cursor})
		if err != nil {
			return err
		}
		if len(res.Sessions) != 100 {
			return fmt.Errorf("page of %d", len(res.Sessions))
		}
		cursor = res.NextCursor
		return nil
	})
	run("ListUser", func(i int) error {
		res, err := s.List(ctx, session.ListOptions{UserID: fmt.Sprintf("user-%04d", i%1000)})
		if err == nil && len(res.Sessions) != 10 {
			err = fmt.Errorf("user page of %d", len(res.Sessions))
		}
		return err
	})
	run("ListState", func(int) error { // sleeping sessions, first page
		res, err := s.List(ctx, session.ListOptions{State: session.StateSleeping, Limit: 100})
		if err == nil && len(res.Sessions) != 100 {
			err = fmt.Errorf("state page of %d", len(res.Sessions))
		}
		return err
	})
	run("IdleCandidates", func(int) error {
		ids, err := s.IdleCandidates(ctx, now, 1000)
		if err == nil && len(ids) != idle {
			err = fmt.Errorf("%d idle candidates, want %d", len(ids), idle)
		}
		return err
	})
	run("Lock+Release", func(int) error {
		release, err := s.Lock(ctx, busy(), 10*time.Second, time.Second)
		if err != nil {
			return err
		}
		return release.Release(ctx)
	})
	b.Run("Get/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Get(ctx, busy()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// serverMicros sums the time redis-server spent executing commands since CONFIG RESETSTAT
// (INFO commandstats), in microseconds: the server's share of an operation, apart from the
// network and the client.
func serverMicros(b *testing.B, be *backend) float64 {
	b.Helper()
	info, err := be.rdb.Info(b.Context(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_") || strings.HasPrefix(line, "cmdstat_config") {
			continue
		}
		_, stats, _ := strings.Cut(line, ":")
		for _, kv := range strings.Split(strings.TrimSpace(stats), ",") {
			if v, ok := strings.CutPrefix(kv, "usec="); ok {
				n, _ := strconv.ParseFloat(v, 64)
				total += n
			}
		}
	}
	return total
}
