package faults_test

import (
	"context"
	"flag"
	"fmt"
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

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	e, err := testenv.Start(context.Background(), testenv.Options{Cluster: true, Redis: true, Firestore: true, RealNode: true, Nodes: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
	env = e
	code := m.Run()
	e.Close()
	printCounts()
	os.Exit(code)
}

// printCounts writes the suite's figures as its last lines.
func printCounts() {
	fmt.Printf("fault suite: operations %d\n", counts.operations.Load())
	fmt.Printf("fault suite: faults injected %d\n", counts.faults.Load())
	fmt.Printf("fault suite: sessions converged %d\n", counts.converged.Load())
	fmt.Printf("fault suite: files checked %d\n", counts.files.Load())
	fmt.Printf("fault suite: bytes lost %d\n", counts.bytesLost.Load())
}
