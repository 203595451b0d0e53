// Command realnode measures a workspace's life on the local cluster's real node: real
// code-server (testenv's RealNode.WorkspaceImage) on real local-path volumes, and real backup
// Jobs (RealNode.BackupImage) zipping a workspace that holds 1 GiB of random bytes and a few
// thousand small files. It prints p50, p99 and max over -n runs of create→running (a new
// volume, first and second in a namespace), sleep→pod gone, wake→running, and a delete's
// backup split into delete→Job created and Job created→complete, and the warm path side by
// side (a create on a warm volume, on a cold one, and a raw scale 0→1 of the same pod, with
// the ratio of warm to raw), then what each row means.
//
// It starts its own parts (testenv.StartKubeWith with the real node, testenv.StartRedis) and
// drives the session core through stack.New with the real node's placement, exactly as a
// deployment with HYPERBOLA_NODE_SELECTOR and HYPERBOLA_TOLERATIONS would. Waits follow the
// namespace's watches (pods, Jobs, Deployments, claims), with a 1 s tick as a safety net.
// Everything it started is stopped when it ends, interrupted included. It needs root and the
// real node's build (make localkube); one real node runs per machine, so it waits while a test
// package holds it.
//
//	go run ./bench/realnode [-n 5] [-big 1073741824] [-files 3000] [-warm-only] [-wake-on-access]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

func main() {
	var o options
	flag.IntVar(&o.runs, "n", 5, "runs (each a fresh namespace with two sessions)")
	flag.Int64Var(&o.big, "big", 1<<30, "bytes of /app/big.bin (from /dev/urandom)")
	flag.IntVar(&o.files, "files", 3000, "small files (1-8 KiB) written beside it")
	flag.DurationVar(&o.patience, "patience", 15*time.Minute, "bound of each wait")
	flag.BoolVar(&o.warmOnly, "warm-only", false, "measure only the warm path's rows (no fill, backups or restore)")
	flag.BoolVar(&o.wakeOnAccess, "wake-on-access", false, "the core runs with wake on access (make run's and infra's default): a sleeping workspace's route goes to the activator, and back before it reports running")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/realnode:", err)
		os.Exit(1)
	}
}

type options struct {
	runs     int
	big      int64
	files    int
	patience time.Duration
	warmOnly bool
	// wakeOnAccess turns the core's wake on access on (HYPERBOLA_WAKE_SECRET): its ready step
	// then switches the route back from the activator, a write the raw scale does not make
	wakeOnAccess bool
}

func run(ctx context.Context, o options) error {
	if o.runs <= 0 || o.big <= 0 || o.files < 0 {
		return errors.New("-n and -big must be positive, -files not negative")
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	before := loadAverage()
	k, err := testenv.StartKubeWith(ctx, testenv.KubeOptions{Nodes: 1, RealNode: true})
	if err != nil {
		return err
	}
	defer k.Stop()
	if k.RealNode == nil {
		return errors.New("the local cluster started without its real node")
	}
	r, err := testenv.StartRedis(ctx)
	if err != nil {
		return err
	}
	defer r.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()

	res := &results{d: map[string][]time.Duration{}}
	for i := range o.runs {
		start := time.Now()
		if err := oneRun(ctx, k, rdb, o, res); err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		progress("run %d of %d done in %s", i+1, o.runs, time.Since(start).Round(time.Second))
	}
	return res.print(os.Stdout, o, k.RealNode, before, loadAverage())
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[realnode] "+format+"\n", args...)
}
