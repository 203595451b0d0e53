// Command readinessload measures what status polling costs the writes: against the real local
// API server (kwok nodes), -pollers goroutines each ask Readiness of a session of their own
// every -poll-every (bench/core's status poll), while one writer scales a workspace up and down
// for -for; it prints the writer's scale patches (count, p50, p99), the polls answered, and
// the requests each kind made, for four set-ups: Readiness per call or in rounds
// (kube.Options.ReadinessInterval), on one client-side budget for everything (the old
// RESTConfig's 100 QPS / 200 burst) or on split write and read budgets (kube.NewClients).
// Not part of `make test`:
//
//	go run ./bench/readinessload [-pollers 100] [-for 10s] [-poll-every 25ms]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/hyperbola-in/terraform-provider-hyperbola/bench/internal/stats"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

type setup struct {
	name   string
	rounds bool // Readiness in rounds (else per call)
	split  bool // split write and read budgets (else one shared)
}

var setups = []setup{
	{"per call, one budget (before)", false, false},
	{"per call, split budgets", false, true},
	{"rounds, one budget", true, false},
	{"rounds, split budgets (after)", true, true},
}

func main() {
	pollers := flag.Int("pollers", 100, "concurrent status pollers, a session each")
	dur := flag.Duration("for", 10*time.Second, "how long each set-up is measured")
	every := flag.Duration("poll-every", 25*time.Millisecond, "a poller's pause between two polls")
	flag.Parse()
	if err := run(context.Background(), *pollers, *dur, *every); err != nil {
		fmt.Fprintln(os.Stderr, "bench/readinessload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, pollers int, dur, every time.Duration) error {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	env, err := testenv.Start(ctx, testenv.Options{Cluster: true, Nodes: 4})
	if err != nil {
		return err
	}
	defer env.Close()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "set-up\tpatches\tpatch p50\tpatch p99\tpolls\tpoll p50\tpoll p99\treads sent\twrites sent\t")
	for _, s := range setups {
		r, err := measure(ctx, env, s, pollers, dur, every)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t\n", s.name, len(r.patches),
			stats.Format(r.patches, 50, time.Millisecond), stats.Format(r.patches, 99, time.Millisecond),
			len(r.polls), stats.Format(r.polls, 50, time.Millisecond), stats.Format(r.polls, 99, time.Millisecond),
			r.reads.Load(), r.writes.Load())
	}
	return tw.Flush()
}

type result struct {
	patches, polls []time.Duration
	reads, writes  atomic.Int64 // requests that reached the transport
}

// measure runs one set-up in a namespace of its own: pollers sessions and the writer's.
func measure(ctx context.Context, env *testenv.Env, s setup, pollers int, dur, every time.Duration) (*result, error) {
	ns := testenv.UniqueName("readiness")
	if err := env.Kube.CreateNamespace(ctx, ns); err != nil {
		return nil, err
	}
	o := kube.Options{Namespace: ns, Domain: "bench.example", Port: 8080, IngressNamespace: "ingress-nginx",
		BackupPVC: "hyperbola-backups", BackupImage: "localhost/hyperbola-backup:1", ReadinessInterval: -1}
	if s.rounds {
		o.ReadinessInterval = kube.DefaultReadinessInterval
	}
	res := &result{}
	cfg := rest.CopyConfig(env.Kube.Config)
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet {
				res.reads.Add(1)
			} else {
				res.writes.Add(1)
			}
			return next.RoundTrip(req)
		})
	})
	var cl *kube.Clients
	if s.split {
		var err error
		if cl, err = kube.NewClients(cfg, kube.Budgets{}); err != nil {
			return nil, err
		}
	} else { // as before: one clientset, one limiter of RESTConfig's 100 QPS and 200 burst
		one := rest.CopyConfig(cfg)
		one.QPS, one.Burst = 100, 200
		one.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(one.QPS, one.Burst)
		cs, err := kubernetes.NewForConfig(one)
		if err != nil {
			return nil, err
		}
		cl = &kube.Clients{Write: cs, Read: cs}
	}
	c := kube.NewClusterFromClients(cl, o)

	ids := make([]string, pollers+1) // the writer's is the last
	var g errgroup.Group
	g.SetLimit(10)
	for i := range ids {
		id, err := session.NewID()
		if err != nil {
			return nil, err
		}
		ids[i] = id
		g.Go(func() error {
			return c.Apply(ctx, session.Workspace{ID: id, UserID: "bench@example.com", Image: "codercom/code-server:4.96.4",
				Storage: "1Gi", CPU: "250m", Memory: "256Mi", Replicas: 1, Password: "bench-password"})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	res.reads.Store(0)
	res.writes.Store(0)

	run, stop := context.WithTimeout(ctx, dur)
	defer stop()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range ids[:pollers] {
		wg.Go(func() {
			for run.Err() == nil {
				start := time.Now()
				if _, err := c.Readiness(run, id); err == nil {
					mu.Lock()
					res.polls = append(res.polls, time.Since(start))
					mu.Unlock()
				}
				select {
				case <-run.Done():
				case <-time.After(every):
				}
			}
		})
	}
	writer := ids[pollers]
	for replicas := int32(0); run.Err() == nil; replicas = 1 - replicas {
		start := time.Now()
		if err := c.Scale(run, writer, replicas); err != nil {
			// the limiter refuses a wait that would outlast the run: the run's end, not a fault
			if end, _ := run.Deadline(); time.Until(end) > time.Second {
				return nil, err
			}
			break
		}
		res.patches = append(res.patches, time.Since(start))
	}
	wg.Wait()
	return res, nil
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
