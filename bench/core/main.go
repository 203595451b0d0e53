// Command core measures the session core against the raw Kubernetes floor, in one run on one
// local cluster (a real control plane with kwok's fake nodes) and a redis-server. At each
// concurrency level it makes the same workspaces twice, each mode in a fresh namespace:
//
//   - raw: the six objects the control plane applies, built by internal/kube's builders and
//     server-side applied in parallel by hand; wake is a patch of the Deployment's scale
//     subresource 0→1 once the pod is gone. Ready is the pod's Ready condition.
//   - hyperbola: Create and Wake through the session core, then Await (the status route's
//     wait) until it reports running; -await=false polls Get instead.
//
// One pod watch stamps every pod's Ready for both modes. The table prints, per level and
// phase, both modes' p50 and p99, their ratios (hyperbola/raw; the goal is ≤ 1.2×), and where
// Hyperbola's time goes: its call returning, its pod Ready, and pod Ready → reported running;
// and raw's call, to tell Hyperbola's own time in its call from the API server's.
//
// By default both modes run side by side. -turns runs them in turns (raw, hyperbola,
// hyperbola, raw), each pass alone on a quiet cluster; -pairs alternates them the same way in
// batches of c sessions within one pass, so each mode's samples are seconds, not a pass, from
// the other's; -only runs one mode alone. The client
// budgets and the readiness interval are the deployment's defaults, or HYPERBOLA_KUBE_* and
// HYPERBOLA_READINESS_INTERVAL from the environment; BENCH_LOG=info shows the core's own log;
// BENCH_TRACE=1 prints on stderr every request Hyperbola makes to the API server (its start and
// how long it took) and each session's start, pod Ready and running, to see where the time goes.
// Hyperbola runs without wake on access unless -wake-on-access (make run's and infra's
// default): then raw switches its route too, and the table adds raw+route (raw through that
// write) and hyperbola over it, the floor of the same work the goal is measured against with
// wake on access (docs/operations/operations.md says why).
//
//	go run ./bench/core [-n 1,10,100] [-sessions 0] [-turns | -pairs] [-wake-on-access] [-only raw|hyperbola] [-nodes 0] [-await=false -poll 10ms] [-timeout 30m] [-kcm-qps 400]
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/hyperbola-in/terraform-provider-hyperbola/bench/internal/stats"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

func main() {
	levels := flag.String("n", "1,10,100", "concurrency levels")
	nodes := flag.Int("nodes", 0, "fake nodes, each admits 110 pods (0: enough for every level's pods at once)")
	await := flag.Bool("await", true, "a waiter asks the core once with a wait (Await, the status route's ?wait=), as the provider and the waking page do; false: it polls")
	poll := flag.Duration("poll", 10*time.Millisecond, "with -await=false, how often a waiter asks the core once its pod is Ready")
	timeout := flag.Duration("timeout", 30*time.Minute, "bound of the whole run")
	kcmQPS := flag.Int("kcm-qps", 400, "the local controller manager's --kube-api-qps (0: its default, 20)")
	only := flag.String("only", "", `run one mode alone, "raw" or "hyperbola" (a diagnosis: the ratio needs both)`)
	turns := flag.Bool("turns", false, "the modes take turns (raw, hyperbola, hyperbola, raw), each alone on a quiet cluster, instead of side by side")
	pairs := flag.Bool("pairs", false, "the modes alternate (raw, hyperbola, hyperbola, raw, ...) in batches of c sessions within one pass, each batch alone")
	sessions := flag.Int("sessions", 0, "workspaces each mode makes at every level (0: max(c, 20)); with -pairs, more batches for a steadier p50 (at c=10 one batch's p50 moves the level's)")
	wakeOnAccess := flag.Bool("wake-on-access", false, "Hyperbola runs with wake on access (as make run and infra's default do): its route switches to the activator and back")
	flag.Parse()
	if *kcmQPS > 0 {
		// At its default 20 requests/s the controller manager, which makes the ReplicaSets and
		// pods of both modes, was the bottleneck from c=10 on, and the ratio measured which mode
		// queued first (c=10: ×0.95-1.71 from run to run). scripts/localkube/up.sh reads it.
		if err := os.Setenv("K8SENV_KCM_QPS", strconv.Itoa(*kcmQPS)); err != nil {
			fmt.Fprintln(os.Stderr, "bench/core:", err)
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	b := &bench{only: *only, turns: *turns, pairs: *pairs, poll: *poll, await: *await, wait: 5 * time.Minute, sessions: *sessions}
	if *wakeOnAccess {
		b.wakeSecret = testenv.WakeSecret()
	}
	if err := run(ctx, os.Stdout, *levels, *nodes, b); err != nil {
		fmt.Fprintln(os.Stderr, "bench/core:", err)
		os.Exit(1)
	}
}

// run measures each level with b (its options set; run starts its cluster and watch).
func run(ctx context.Context, out io.Writer, levelList string, nodes int, b *bench) error {
	if b.only != "" && b.only != modeRaw && b.only != modeHyperbola {
		return fmt.Errorf(`-only %q: "raw", "hyperbola" or empty`, b.only)
	}
	if b.turns && b.pairs {
		return fmt.Errorf("-turns and -pairs: choose one")
	}
	level := slog.LevelWarn
	if os.Getenv("BENCH_LOG") == "info" {
		level = slog.LevelInfo // the core's own lines: "session created" with its took
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	var levels []int
	pods := 0
	for _, l := range strings.Split(levelList, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || c <= 0 {
			return fmt.Errorf("bad concurrency %q", l)
		}
		levels = append(levels, c)
		if b.pairs { // pairedLevel's batches of each mode, and the warm-up's, all alive until they sleep
			pods += 2*pairedBatches(c, b.levelSessions(c))*c + c
		} else {
			pods += 2 * b.levelSessions(c)
		}
	}
	if nodes <= 0 {
		nodes = pods/100 + 1 // a fake node admits 110 pods
	}
	fmt.Fprintf(os.Stderr, "starting a local cluster (%d fake nodes, controller manager at %s requests/s) and redis-server...\n",
		nodes, cmp.Or(os.Getenv("K8SENV_KCM_QPS"), "20"))
	env, err := testenv.Start(ctx, testenv.Options{Cluster: true, Redis: true, Nodes: nodes})
	if err != nil {
		return err
	}
	defer env.Close()
	w, err := watchPods(ctx, env.Kube.Client)
	if err != nil {
		return err
	}
	b.trace, b.env, b.pods = traceTo(), env, w
	if b.rawClient, err = kubernetes.NewForConfig(kube.Protobuf(env.Kube.Config)); err != nil {
		return fmt.Errorf("raw's clientset: %w", err)
	}
	if b.wakeSecret != "" {
		fmt.Fprintln(os.Stderr, "Hyperbola runs with wake on access: its ready step switches the route back from the activator")
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	// With wake on access, raw+route is raw that also switches its route back at Ready
	// (raw.route), the floor of the same work; ×p50 stays over raw's pod Ready, the floor.
	fmt.Fprintln(tw, "concurrency\tphase\tsessions\traw p50\traw p99\thyperbola p50\thyperbola p99\t×p50\t×p99\traw+route p50\t×p50 raw+route\traw call p50\tcall p50\tpod Ready p50\tReady→running p50\treads/session\t")
	for _, c := range levels {
		fmt.Fprintf(os.Stderr, "  concurrency %d...\n", c)
		s, err := b.level(ctx, c)
		if err != nil {
			return fmt.Errorf("concurrency %d: %w", c, err)
		}
		perSession := "-"
		if n := len(s.get("create", hbTotal)); n > 0 { // the level's requests: create, sleep and wake of each
			perSession = fmt.Sprintf("%.1f", float64(s.reads.Load())/float64(n))
		}
		for _, phase := range []string{"create", "wake"} {
			r, h, rr := s.get(phase, rawSample), s.get(phase, hbTotal), s.get(phase, rawRouted)
			fmt.Fprintf(tw, "%d\t%s→Ready\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c, phase, len(h),
				pct(r, 50), pct(r, 99), pct(h, 50), pct(h, 99), ratio(h, r, 50), ratio(h, r, 99),
				pct(rr, 50), ratio(h, rr, 50), pct(s.get(phase, rawCall), 50), pct(s.get(phase, hbCall), 50), pct(s.get(phase, hbPod), 50), fine(s.get(phase, hbGap), 50), perSession)
		}
		fmt.Fprintf(os.Stderr, "  concurrency %d: Hyperbola made %d reads, %d watches and %d writes\n", c, s.reads.Load(), s.watches.Load(), s.writes.Load())
	}
	return tw.Flush()
}

func pct(d []time.Duration, p int) string  { return stats.Format(d, p, time.Millisecond) }
func fine(d []time.Duration, p int) string { return stats.Format(d, p, 100*time.Microsecond) }

// ratio is hyperbola's p-th percentile over raw's.
func ratio(hb, raw []time.Duration, p int) string {
	h, ok1 := stats.Percentile(hb, p)
	r, ok2 := stats.Percentile(raw, p)
	if !ok1 || !ok2 || r <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", float64(h)/float64(r))
}

// traceTo is where BENCH_TRACE=1 sends its lines: stderr; nil without it.
func traceTo() io.Writer {
	if os.Getenv("BENCH_TRACE") == "1" {
		return os.Stderr
	}
	return nil
}
