package faults_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"testing"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

// counts are the suite's figures, summed over every test and printed as its last lines.
var counts struct {
	operations, faults, converged, files, bytesLost atomic.Int64
}

// reportEnv names a file the counts are also written to: `go test` hides the output of a
// package that passes, so `make test` prints this file after the run.
const reportEnv = "HYPERBOLA_FAULT_REPORT"

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	ctx := context.Background()
	// The real node on demand: only TestCutDeleteOnTheRealNode and TestLoadWithFaults need it,
	// so the package holds the machine's one real node for them only, not for the cuts on kwok.
	// They run last, one after the other: one start for both, kept until the package ends.
	e, err := testenv.Start(ctx, testenv.Options{Cluster: true, Firestore: true, RealNodeOnDemand: true, KeepRealNode: true, Nodes: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
	// a durable redis-server, so the suite can crash and restart it as a failover does
	// without losing an acknowledged write
	if e.Redis, err = testenv.StartRedisWith(ctx, testenv.RedisOptions{Durable: true}); err != nil {
		e.Close()
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
	env = e
	code := m.Run()
	e.Close()
	e.Redis.Stop()
	printCounts(os.Stdout)
	if path := os.Getenv(reportEnv); path != "" {
		if err := writeReport(path, code); err != nil {
			fmt.Fprintln(os.Stderr, "fault report:", err)
		}
	}
	os.Exit(code)
}

// printCounts writes the suite's figures as its last lines.
func printCounts(w io.Writer) {
	fmt.Fprintf(w, "fault suite: operations %d\n", counts.operations.Load())
	fmt.Fprintf(w, "fault suite: faults injected %d\n", counts.faults.Load())
	fmt.Fprintf(w, "fault suite: sessions converged %d\n", counts.converged.Load())
	fmt.Fprintf(w, "fault suite: files checked %d\n", counts.files.Load())
	fmt.Fprintf(w, "fault suite: bytes lost %d\n", counts.bytesLost.Load())
}

// writeReport writes the counts, and whether the suite passed, to path.
func writeReport(path string, code int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	verdict := "PASS"
	if code != 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(f, "fault suite: %s\n", verdict)
	printCounts(f)
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
