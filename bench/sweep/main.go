// Command sweep measures one idle sweep over many sessions of which few are idle: its wall
// time, the candidates it read, the probes it made and its Redis round trips (the store's
// RoundTrips hook). The aim is a sweep of ≤ 1 s whose work follows the idle sessions, not all.
//
// It starts its own redis-server (testenv.StartRedis), writes the sessions through the store
// (running, idle timeout 15m; all but the idle ones active a minute ago), and gives each idle
// one a real HTTP code-server stand-in on 127.0.0.1 answering /healthz, reached through the
// production probe URL template (only the name resolution is the benchmark's, as cluster DNS
// would resolve vs-code-<id>.<ns>.svc.cluster.local). Most stand-ins answer an old heartbeat
// (the workspace sleeps); -active of them answer a fresh one (an open tab: kept awake).
//
// The cluster side is a stand-in that only scales (optionally with -scale-latency per call),
// not a local cluster: the sweep touches the cluster only to scale the idle workspaces to
// zero, the real scale path is proven by the integration tests (internal/sweep), and a local
// kwok control plane on a shared 2-core machine would time itself, not the sweep. The 9,900
// sessions that are not idle never reach the cluster at all, which the round trips show.
//
// Each size is swept twice: the first sweep finds the idle ones, the second (a minute later
// in the sweep's clock) finds nothing left to do. Not part of `make test`:
//
//	go run ./bench/sweep [-sizes 10000,20000] [-idle 100] [-active 10] [-scale-latency 0]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

const (
	namespace   = "hyperbola"
	port        = 8080
	idleTimeout = 15 * time.Minute
)

type options struct {
	sizes        []int
	idle         int
	active       int
	scaleLatency time.Duration
	concurrency  int
	writers      int
}

func main() {
	var sizes string
	var o options
	flag.StringVar(&sizes, "sizes", "10000,20000", "sessions in Redis, per measurement")
	flag.IntVar(&o.idle, "idle", 100, "sessions whose recorded activity is older than their idle timeout")
	flag.IntVar(&o.active, "active", 10, "of the idle ones, how many answer a fresh heartbeat (an open tab)")
	flag.DurationVar(&o.scaleLatency, "scale-latency", 0, "time the cluster stand-in takes per scale call")
	flag.IntVar(&o.concurrency, "concurrency", 16, "the sweep's probe concurrency")
	flag.IntVar(&o.writers, "writers", 32, "concurrent writers while seeding the sessions")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bad size %q\n", s)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	if o.idle < 0 || o.active < 0 || o.active > o.idle {
		fmt.Fprintln(os.Stderr, "want 0 <= -active <= -idle")
		os.Exit(2)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sweep:", err)
		os.Exit(1)
	}
}

// row is one line of the table.
type row struct {
	sessions, idle int
	sweep          string
	rep            *sweep.Report
	took           time.Duration
	probes         int64
	scales         int64
	trips, cmds    int64
}

func run(ctx context.Context, o options) error {
	r, err := testenv.StartRedis(ctx)
	if err != nil {
		return err
	}
	defer r.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, PoolSize: 64})
	defer func() { _ = rdb.Close() }()
	trips := store.NewRoundTrips()
	rdb.AddHook(trips)

	var rows []row
	for i, n := range o.sizes {
		rs, err := measure(ctx, rdb, trips, fmt.Sprintf("bench%d:", i), n, o)
		if err != nil {
			return err
		}
		rows = append(rows, rs...)
	}

	fmt.Printf("\nidle sweep: %d idle sessions among N (of them %d answer a fresh heartbeat), probe concurrency %d, scale latency %s\n",
		o.idle, o.active, o.concurrency, o.scaleLatency)
	fmt.Printf("go %s, %s/%s, %d CPUs, redis-server on 127.0.0.1\n\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "sessions\tidle\tsweep\tduration\tcandidates\tprobes\tslept\tkept active\tprobe errors\tscale calls\tredis round trips\tredis commands\t")
	for _, x := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", x.sessions, x.idle, x.sweep,
			x.took.Round(100*time.Microsecond), x.rep.Candidates, x.probes, x.rep.Slept, x.rep.KeptActive,
			x.rep.ProbeErrors, x.scales, x.trips, x.cmds)
	}
	return tw.Flush()
}

// measure seeds n sessions under prefix, o.idle of them idle, and sweeps twice.
func measure(ctx context.Context, rdb *redis.Client, trips *store.RoundTrips, prefix string, n int, o options) ([]row, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	clk := testenv.NewClock(now)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.New(rdb, prefix, store.Options{Now: clk.Now, Logger: log})
	cluster := &scaleOnly{latency: o.scaleLatency}
	svc := session.NewService(cluster, st, session.Options{Now: clk.Now, Logger: log})

	// the sessions: ids with a recognisable shape, the idle ones first
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("b%07d", i)
	}
	idle := min(o.idle, n)
	start := time.Now()
	if err := seed(ctx, st, ids, idle, now, o.writers); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "seeded %d sessions (%d idle) in %s\n", n, idle, time.Since(start).Round(time.Millisecond))

	// one code-server stand-in per idle workspace
	routes := map[string]string{}
	var probes atomic.Int64
	var servers []*httptest.Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for i, id := range ids[:idle] {
		beat := now.Add(-time.Hour) // long before its recorded activity: idle
		if i < o.active {
			beat = now.Add(-30 * time.Second) // an open tab
		}
		body := fmt.Sprintf(`{"status":"expired","lastHeartbeat":%d}`, beat.UnixMilli())
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			probes.Add(1)
			if r.URL.RequestURI() != "/healthz" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}))
		servers = append(servers, srv)
		routes[fmt.Sprintf("vs-code-%s.%s.svc.cluster.local:%d", id, namespace, port)] = srv.Listener.Addr().String()
	}
	var d net.Dialer
	prober, err := sweep.NewHTTPProber(sweep.ProbeOptions{Namespace: namespace, Port: port,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			to, ok := routes[addr]
			if !ok {
				return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
			}
			return d.DialContext(ctx, network, to)
		}})
	if err != nil {
		return nil, err
	}
	sw := sweep.New(sweep.Deps{Sessions: svc, Store: st, Prober: prober, Now: clk.Now, Logger: log},
		sweep.Options{Concurrency: o.concurrency, Namespace: namespace, Port: port})
	if err := sw.Err(); err != nil {
		return nil, err
	}

	var rows []row
	for _, name := range []string{"first", "next minute"} {
		probes.Store(0)
		cluster.scales.Store(0)
		trips.Reset()
		t0 := time.Now()
		rep, err := sw.Run(ctx)
		took := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("sweep over %d sessions: %w", n, err)
		}
		if rep.Skipped || rep.Errors > 0 || rep.ProbeErrors > 0 {
			return nil, fmt.Errorf("sweep over %d sessions: unexpected report %+v", n, rep)
		}
		rows = append(rows, row{sessions: n, idle: idle, sweep: name, rep: rep, took: took,
			probes: probes.Load(), scales: cluster.scales.Load(), trips: trips.Trips(), cmds: trips.Commands()})
		clk.Add(time.Minute)
	}
	if want := idle - min(o.active, idle); rows[0].rep.Slept != want {
		return nil, fmt.Errorf("first sweep slept %d, want %d", rows[0].rep.Slept, want)
	}
	return rows, nil
}

// seed writes the sessions through the store: running, idle timeout 15m, the first idle of
// them last active 20 minutes ago, the rest a minute ago.
func seed(ctx context.Context, st *store.Store, ids []string, idle int, now time.Time, writers int) error {
	work := make(chan int)
	errc := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := range work {
				at := now.Add(-time.Minute)
				if i < idle {
					at = now.Add(-20 * time.Minute)
				}
				s := &session.Session{
					ID: ids[i], UserID: fmt.Sprintf("user%d@example.com", i%500), State: session.StateRunning,
					WorkspaceURL: "https://vs-code-" + ids[i] + ".preview.hyperbola.in",
					Image:        "codercom/code-server:4.96.4", Storage: "5Gi", CPU: "250m", Memory: "256Mi",
					IdleTimeout: session.Duration(idleTimeout), BackupOnDelete: true,
					CreatedAt: at.Add(-time.Hour), UpdatedAt: at, LastActivity: at, ExpiresAt: now.Add(23 * time.Hour),
				}
				l, err := st.Lock(ctx, s.ID, time.Minute, time.Second)
				if err == nil {
					err = st.Put(ctx, l, s)
					_ = l.Release(ctx)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for i := range ids {
		select {
		case work <- i:
		case err = <-errc:
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errc)
	return errors.Join(err, <-errc)
}

// scaleOnly is the cluster stand-in: every workspace exists and is ready; Scale counts (and
// optionally takes latency). The sweep needs nothing else from the cluster here.
type scaleOnly struct {
	latency time.Duration
	scales  atomic.Int64
}

var _ session.Cluster = (*scaleOnly)(nil)

func (c *scaleOnly) Apply(context.Context, session.Workspace) error { return nil }

func (c *scaleOnly) Scale(ctx context.Context, _ string, _ int32) error {
	c.scales.Add(1)
	if c.latency > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.latency):
		}
	}
	return nil
}

func (c *scaleOnly) Observe(_ context.Context, id string) (*session.Observed, error) {
	return &session.Observed{ID: id, Kinds: slices.Clone(session.WorkspaceKinds),
		Complete: true, Ready: true, DesiredReplicas: 1, ReadyReplicas: 1, PVCPhase: "Bound"}, nil
}

func (c *scaleOnly) Route(context.Context, session.Workspace) error { return nil }

func (c *scaleOnly) Readiness(ctx context.Context, id string) (*session.Observed, error) {
	return c.Observe(ctx, id)
}

func (c *scaleOnly) ObserveAll(context.Context) ([]*session.Observed, error) { return nil, nil }

func (c *scaleOnly) Password(context.Context, string) (string, error) { return "", nil }

func (c *scaleOnly) StartBackup(_ context.Context, id string, _ int) (*session.Backup, error) {
	return &session.Backup{Phase: session.BackupSucceeded, Location: "pvc://bench/" + id + ".zip"}, nil
}

func (c *scaleOnly) BackupStatus(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	return c.StartBackup(ctx, id, attempt)
}

func (c *scaleOnly) DeleteWorkspace(context.Context, string, bool) error { return nil }

// The sweep's benchmark makes no backups and restores nothing.
func (c *scaleOnly) StartRestore(context.Context, string, int, string) (*session.Backup, error) {
	return nil, session.Unimplemented("the sweep benchmark restores nothing")
}

func (c *scaleOnly) RestoreStatus(context.Context, string, int) (*session.Backup, error) {
	return &session.Backup{Phase: session.BackupMissing}, nil
}

func (c *scaleOnly) CheckArchive(context.Context, string) (*session.Archive, error) {
	return nil, session.Unimplemented("the sweep benchmark restores nothing")
}

func (c *scaleOnly) RemoveArchives(context.Context, string, []string) (*session.Backup, error) {
	return &session.Backup{Phase: session.BackupSucceeded}, nil
}
