// Package testenv starts the real local parts that integration tests run against: a
// Kubernetes control plane (scripts/localkube: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok), a redis-server and the Firestore emulator. One of each per test
// package, started from TestMain and stopped when it ends; each test gets a fresh namespace,
// Redis key prefix and Firestore project.
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Cluster: true, Redis: true}) }
//
// With `go test -short` nothing is started and tests that ask for a part are skipped.
//
// The cluster's nodes are kwok's fake ones: pods "run" without containers, volumes are fake,
// and a node admits 110 pods (Options.Nodes). Options.RealNode adds one real node beside them
// (containerd, runc, bridge CNI and a kubelet on this machine, built by
// scripts/localkube/build-node.sh; needs root), for tests that need real containers, real
// volumes and real network. Kube.RealNode then says what it offers: the locally built images
// (real code-server as WorkspaceImage, busybox+zip as BackupImage), the local-path
// StorageClass, the host directory of its volumes and the pods' address range. A pod lands on
// it only when it selects and tolerates it (RealNode.Place, or NodeSelector and Toleration);
// everything else still goes to the fake nodes. A claim for it: Kube.CreateBackupPVCOn with
// RealNode.StorageClass; its files on the host: Kube.VolumeHostPath. Pods there are reached
// by pod IP from this host (no Services or DNS).
//
//	func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Cluster: true, RealNode: true}) }
//
// One real node can run per machine: a second package that wants one waits (up to
// K8SENV_REALNODE_WAIT seconds, default 1800) until the first one's cluster is stopped, so a
// package holds the machine's real node for as long as its cluster runs. A package whose
// tests mostly run on kwok asks for it on demand instead: Options.RealNodeOnDemand starts no
// real node with the package; a test that calls Env.RealNodeKube or Env.RealNodeNamespace
// starts a second cluster with one (waiting for the machine's turn then), shared by the tests
// that hold it at the same time and stopped when the last of them ends (or, with
// Options.KeepRealNode, when the package ends). The package's other tests, and a run that
// selects none of those (-run), never wait for it.
//
//	func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Cluster: true, RealNodeOnDemand: true}) }
//
//	k, ns := env.RealNodeNamespace(t) // k.RealNode is set
//
// The cluster, the real node with its containers included, never outlives the test binary.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options says which parts a test package needs.
type Options struct {
	Cluster   bool
	Redis     bool
	Firestore bool
	// Nodes is the number of fake nodes (default 1; a node admits 110 pods).
	Nodes int
	// RealNode adds a real node to the cluster (implies Cluster): see Kube.RealNode. The
	// package holds the machine's one real node for its whole run.
	RealNode bool
	// RealNodeOnDemand starts no real node with the package: Env.RealNodeKube starts a second
	// cluster (Nodes fake nodes and the real node) for the tests that ask, and stops it when
	// the last of them ends. Ignored with RealNode.
	RealNodeOnDemand bool
	// KeepRealNode keeps the on-demand cluster, once started, until the package ends: one
	// start for a package whose real-node tests run one after the other, last.
	KeepRealNode bool
}

// Env holds the parts started for one test package.
type Env struct {
	Kube      *Kube
	Redis     *Redis
	Firestore *Firestore
	opts      Options
	stops     []func()

	realMu    sync.Mutex
	real      *Kube // the on-demand real node's cluster, while it runs
	realHeld  int   // the running tests that hold it
	realErr   error // why it did not start: the later tests fail at once
	realStart int   // how many times it was started
}

// Main starts the parts, runs the tests, stops the parts and exits. *env is set before the
// tests run (nil with -short).
func Main(m *testing.M, env **Env, opts Options) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	e, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	e.Close()
	os.Exit(code)
}

// Start starts the parts that opts asks for.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	e := &Env{opts: opts}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if opts.Redis {
		if e.Redis, err = StartRedis(ctx); err != nil {
			return nil, err
		}
		e.stops = append(e.stops, e.Redis.Stop)
	}
	if opts.Firestore {
		if e.Firestore, err = StartFirestore(ctx); err != nil {
			return nil, err
		}
		e.stops = append(e.stops, e.Firestore.Stop)
	}
	if opts.Cluster || opts.RealNode {
		k, err := StartKubeWith(ctx, KubeOptions{Nodes: opts.Nodes, RealNode: opts.RealNode})
		if err != nil {
			return nil, err
		}
		e.Kube = k
		e.stops = append(e.stops, k.Stop)
	}
	return e, nil
}

// RealNodeKube returns a cluster with the real node, for t: the package's own with
// Options.RealNode, else the on-demand one (Options.RealNodeOnDemand). That one is started by
// the first test that asks (waiting, if need be, for another package's real node to stop),
// shared by the tests that hold it at the same time (t holds it until it ends: a test whose
// subtests ask should ask first itself), and stopped once the last of them has ended, unless
// Options.KeepRealNode. It skips t with -short and fails it when the package asked for no real
// node, or when the on-demand cluster did not start (every later caller too, without trying
// again).
func (e *Env) RealNodeKube(t testing.TB) *Kube {
	t.Helper()
	need(t, e, "real node", e != nil && ((e.Kube != nil && e.Kube.RealNode != nil) || e.opts.RealNodeOnDemand))
	if e.Kube != nil && e.Kube.RealNode != nil {
		return e.Kube
	}
	e.realMu.Lock()
	defer e.realMu.Unlock()
	if e.realErr != nil {
		t.Fatalf("testenv: the on-demand real node did not start: %v", e.realErr)
	}
	if e.real == nil {
		start := time.Now()
		e.realStart++
		t.Logf("testenv: starting the real node's cluster on demand (start %d; it may wait for the machine's real node)", e.realStart)
		k, err := StartKubeWith(context.Background(), KubeOptions{Nodes: e.opts.Nodes, RealNode: true})
		if err != nil {
			e.realErr = err
			t.Fatalf("testenv: the on-demand real node did not start: %v", err)
		}
		e.real = k
		t.Logf("testenv: the real node's cluster is up after %v", time.Since(start).Round(time.Millisecond))
	}
	k := e.real
	if !e.opts.KeepRealNode {
		e.realHeld++
		t.Cleanup(func() { e.releaseRealNode(t) })
	}
	return k
}

// releaseRealNode ends one test's hold on the on-demand cluster, and stops it after the last.
func (e *Env) releaseRealNode(t testing.TB) {
	e.realMu.Lock()
	defer e.realMu.Unlock()
	if e.realHeld--; e.realHeld > 0 || e.real == nil {
		return
	}
	start := time.Now()
	e.real.Stop()
	e.real = nil
	t.Logf("testenv: the real node's cluster is stopped (took %v)", time.Since(start).Round(time.Millisecond))
}

// RealNodeNamespace returns RealNodeKube's cluster and a fresh namespace on it for t, deleted
// (without waiting) when t ends.
func (e *Env) RealNodeNamespace(t testing.TB) (*Kube, string) {
	t.Helper()
	k := e.RealNodeKube(t)
	return k, k.namespace(t)
}

// Close stops every part, last started first.
func (e *Env) Close() {
	if e == nil {
		return
	}
	e.realMu.Lock()
	if e.real != nil { // started last
		e.real.Stop()
		e.real = nil
	}
	e.realMu.Unlock()
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
	e.stops = nil
}

// need skips t when the part was not started (-short), and fails it when the env is missing.
func need(t testing.TB, e *Env, part string, ok bool) {
	t.Helper()
	if testing.Short() {
		t.Skipf("integration test (%s) skipped with -short", part)
	}
	if e == nil || !ok {
		t.Fatalf("testenv: %s was not started: add it to the package's testenv.Options", part)
	}
}

// RepoRoot finds the repository root (the directory holding go.mod) above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getwd: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// WakeSecret returns a random wake secret (HYPERBOLA_WAKE_SECRET) for a run with wake on
// access: 52 characters, the activator wants activator.MinSecret (32) at least.
func WakeSecret() string { return rand.Text() + rand.Text() }

// UniqueName returns prefix + "-" + 8 random hex characters, lower-case and DNS-safe.
func UniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	p := strings.ToLower(prefix)
	if len(p) > 40 {
		p = p[:40]
	}
	p = strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			return r
		}
		return '-'
	}, p)
	return strings.Trim(p, "-") + "-" + hex.EncodeToString(b[:])
}

func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "testenv")
}
