// Command core measures the session core against the real local parts: a local Kubernetes
// control plane (kwok nodes) and a redis-server. It prints create→accepted, create→running
// and wake→running latency (p50, p99, max) at concurrency 1, 10 and 100.
//
//	go run ./bench/core [-n 1,10,100] [-nodes 3]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/bench/internal/stats"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

func main() {
	levels := flag.String("n", "1,10,100", "concurrency levels")
	nodes := flag.Int("nodes", 3, "fake nodes (one admits 110 pods)")
	flag.Parse()
	if err := run(context.Background(), *levels, *nodes); err != nil {
		fmt.Fprintln(os.Stderr, "bench/core:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, levels string, nodes int) error {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	env, err := testenv.Start(ctx, testenv.Options{Cluster: true, Redis: true, Nodes: nodes})
	if err != nil {
		return err
	}
	defer env.Close()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\tsessions\tphase\tp50\tp99\tmax\t")
	for _, l := range strings.Split(levels, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || c <= 0 {
			return fmt.Errorf("bad concurrency %q", l)
		}
		res, err := level(ctx, env, c)
		if err != nil {
			return err
		}
		for _, p := range []string{"create→accepted", "create→running", "wake→running"} {
			d := res[p]
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t\n", c, len(d), p, pct(d, 50), pct(d, 99), pct(d, 100))
		}
	}
	return tw.Flush()
}

// level runs one concurrency level in a fresh namespace: c workers create max(c, 20)
// sessions, then put them to sleep and wake them.
func level(ctx context.Context, env *testenv.Env, c int) (map[string][]time.Duration, error) {
	ns := testenv.UniqueName("bench")
	if err := env.Kube.CreateNamespace(ctx, ns); err != nil {
		return nil, err
	}
	if err := env.Kube.CreateBackupPVC(ctx, ns, "hyperbola-backups"); err != nil {
		return nil, err
	}
	cfg, err := config.FromLookup(func(k string) (string, bool) {
		v, ok := map[string]string{"HYPERBOLA_NAMESPACE": ns, "HYPERBOLA_REDIS_PREFIX": ns + ":"}[k]
		return v, ok
	})
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: env.Redis.Addr, PoolSize: 200})
	defer rdb.Close()
	st, err := stack.New(ctx, cfg, stack.Parts{Redis: rdb, Kube: env.Kube.Client})
	if err != nil {
		return nil, err
	}
	svc := st.Service
	n := max(c, 20)
	out := map[string][]time.Duration{}
	var mu sync.Mutex
	add := func(phase string, d time.Duration) { mu.Lock(); out[phase] = append(out[phase], d); mu.Unlock() }
	ids := make([]string, n)
	err = parallel(n, c, func(i int) error {
		start := time.Now()
		s, err := svc.Create(ctx, session.CreateRequest{UserID: fmt.Sprintf("bench-%d@example.com", i)})
		if err != nil {
			return err
		}
		add("create→accepted", time.Since(start))
		ids[i] = s.ID
		if err := waitRunning(ctx, svc, s.ID); err != nil {
			return err
		}
		add("create→running", time.Since(start))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := parallel(n, c, func(i int) error { _, err := svc.Sleep(ctx, ids[i]); return err }); err != nil {
		return nil, err
	}
	err = parallel(n, c, func(i int) error {
		start := time.Now()
		if _, err := svc.Wake(ctx, ids[i]); err != nil {
			return err
		}
		if err := waitRunning(ctx, svc, ids[i]); err != nil {
			return err
		}
		add("wake→running", time.Since(start))
		return nil
	})
	return out, err
}

func waitRunning(ctx context.Context, m session.Manager, id string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		s, err := m.Get(ctx, id)
		if err != nil {
			return err
		}
		if s.State == session.StateRunning {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("session %s not running after 5m", id)
}

// parallel runs fn(0..n-1) on c workers and returns the first error.
func parallel(n, c int, fn func(i int) error) error {
	next := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

func pct(d []time.Duration, p int) string { return stats.Format(d, p, time.Millisecond) }
