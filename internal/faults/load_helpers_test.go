package faults_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
)

// loadGate is a TCP forwarder in front of a server that can be cut (every connection dropped,
// new ones closed at once) and restored: what a client sees of a server that is down and
// comes back with its data. The package's Firestore emulator is shared by every test of the
// package and testenv cannot restart it, so the load test cuts its own path to it instead.
type loadGate struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// loadStartGate listens on a free loopback port and forwards to target until t ends.
func loadStartGate(t testing.TB, target string) *loadGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &loadGate{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	g.wg.Add(1)
	go g.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		g.Cut()
		g.wg.Wait()
	})
	return g
}

// Addr is the gate's host:port.
func (g *loadGate) Addr() string { return g.ln.Addr().String() }

func (g *loadGate) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		if g.cut {
			g.mu.Unlock()
			_ = c.Close()
			continue
		}
		g.wg.Add(1)
		g.mu.Unlock()
		go g.forward(c)
	}
}

func (g *loadGate) forward(c net.Conn) {
	defer g.wg.Done()
	up, err := net.DialTimeout("tcp", g.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	if !g.track(c, up) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	g.mu.Lock()
	delete(g.conns, c)
	delete(g.conns, up)
	g.mu.Unlock()
}

// track registers a connection pair, or closes it when the gate was cut meanwhile.
func (g *loadGate) track(c, up net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cut {
		_ = c.Close()
		_ = up.Close()
		return false
	}
	g.conns[c], g.conns[up] = struct{}{}, struct{}{}
	return true
}

// Cut drops every connection and refuses new ones until Restore.
func (g *loadGate) Cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cut = true
	for c := range g.conns {
		_ = c.Close()
	}
}

// Restore lets connections through again.
func (g *loadGate) Restore() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cut = false
}

// loadFirestoreThrough returns a Firestore client on project that reaches the emulator through
// addr (a gate). The client reads FIRESTORE_EMULATOR_HOST when it is made, and only then.
func loadFirestoreThrough(t *testing.T, addr, project string) *firestore.Client {
	t.Helper()
	t.Setenv("FIRESTORE_EMULATOR_HOST", addr)
	c, err := firestore.NewClient(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// loadWarmFirestore runs a first transaction, which takes ~10 s on a cold emulator JVM, before
// the load measures anything (events' tests do the same).
func loadWarmFirestore(t *testing.T, c *firestore.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ref := c.Collection("warm").Doc("up")
	err := c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		if _, err := tx.GetAll([]*firestore.DocumentRef{ref}); err != nil {
			return err
		}
		return tx.Set(ref, map[string]any{"ok": true})
	})
	if err != nil {
		t.Fatalf("warming the firestore emulator up: %v", err)
	}
}

// loadFileSum is one regular file of a tree: its SHA-256 and size.
type loadFileSum struct {
	sum  string
	size int64
}

// loadTree maps a file's path (relative, slash-separated) to its checksum.
type loadTree map[string]loadFileSum

// bytes is the tree's total size.
func (tr loadTree) bytes() int64 {
	var n int64
	for _, f := range tr {
		n += f.size
	}
	return n
}

// loadTreeDir is where the test writes its files in a workspace's volume (/app/tree in the pod).
const loadTreeDir = "tree"

// loadWriteTree replaces root/tree with a fresh tree of files made from seed: nested and hidden
// directories, names with spaces and non-ASCII letters, an empty file, sizes from 0 to
// 512 KiB; and returns its checksums. The files are written (and synced) through the host path
// of the volume, as the root user: world-readable, as the backup (uid 1000) needs.
func loadWriteTree(root string, seed uint64, version int) (loadTree, error) {
	dir := filepath.Join(root, loadTreeDir)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("removing the previous tree: %w", err)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(version)))
	names := []string{
		"VERSION", "README.md", "src/main.go", "src/pkg/util.go", "src/pkg/deep/er/x.txt",
		".env", ".config/code-server/settings.json", "docs/name with spaces ü.md", "data/empty",
		"data/small.bin", "data/medium.bin", "data/big.bin",
	}
	out := loadTree{}
	for i, name := range names {
		var b []byte
		switch {
		case name == "VERSION":
			b = fmt.Appendf(nil, "version %d seed %d\n", version, seed)
		case name == "data/empty":
		case name == "data/big.bin":
			b = loadRandomBytes(rng, 512<<10)
		case strings.HasSuffix(name, ".bin"):
			b = loadRandomBytes(rng, 1+rng.IntN(64<<10))
		default:
			b = fmt.Appendf(nil, "file %d of version %d\n%x\n", i, version, loadRandomBytes(rng, rng.IntN(4<<10)))
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := loadWriteSynced(p, b); err != nil {
			return nil, err
		}
		h := sha256.Sum256(b)
		out[name] = loadFileSum{sum: hex.EncodeToString(h[:]), size: int64(len(b))}
	}
	return out, nil
}

func loadRandomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func loadWriteSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// loadReadTree checksums the regular files under dir; an absent dir is an empty tree.
func loadReadTree(dir string) (loadTree, error) {
	out := loadTree{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == dir {
			return fs.SkipDir
		}
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = loadFileSum{sum: hex.EncodeToString(h.Sum(nil)), size: n}
		return nil
	})
	return out, err
}

// loadCompareTrees returns the bytes of want's files that got lacks or holds with other bytes,
// and a line per difference (extra files included, which lose nothing).
func loadCompareTrees(want, got loadTree) (lost int64, diffs []string) {
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			lost += w.size
			diffs = append(diffs, fmt.Sprintf("- %s (%d bytes missing)", name, w.size))
		case g.sum != w.sum:
			lost += w.size
			diffs = append(diffs, fmt.Sprintf("~ %s (%d bytes written, %d bytes found, other checksum)", name, w.size, g.size))
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("+ %s (%d bytes, never written)", name, g.size))
		}
	}
	sort.Strings(diffs)
	return lost, diffs
}

// loadUnzip extracts a zip with the host's unzip, as a user restoring a backup by hand would.
func loadUnzip(t *testing.T, zipPath string) (string, error) {
	t.Helper()
	out := t.TempDir()
	if b, err := exec.Command("unzip", "-q", zipPath, "-d", out).CombinedOutput(); err != nil {
		return "", fmt.Errorf("unzip %s: %w\n%s", zipPath, err, b)
	}
	return out, nil
}

// backoff returns the wait before retry n (0-based): 200 ms doubling up to max, with jitter.
func loadRetryWait(n int, max time.Duration) time.Duration {
	d := 200 * time.Millisecond << min(n, 6)
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}

// loadSleep waits d or until ctx ends.
func loadSleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// loadVolumeGuard watches a namespace for the moments that matter to "no volume is removed
// without a complete archive": when a session's backup Job is first seen succeeded, and when
// its data claim is first seen going (etcd's resource versions order the two), and, for the
// sessions onGone knows, what the backup volume held at that moment.
type loadVolumeGuard struct {
	mu      sync.Mutex
	jobDone map[string]int64  // session -> resource version of its first succeeded backup Job
	pvcGone map[string]int64  // session -> resource version at which its data claim went
	atGone  map[string]string // session -> what onGone found wrong when the claim went
	broken  error             // a watch ended early: the order is not known for every session
}

// loadGuardVolumes starts a loadVolumeGuard on ns until ctx ends. onGone, called once per session as
// its data claim goes, returns what is wrong with its archive at that moment ("" if nothing).
func loadGuardVolumes(ctx context.Context, t testing.TB, cs kubernetes.Interface, ns string, onGone func(id string) string) *loadVolumeGuard {
	t.Helper()
	g := &loadVolumeGuard{jobDone: map[string]int64{}, pvcGone: map[string]int64{}, atGone: map[string]string{}}
	jw, err := cs.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := cs.CoreV1().PersistentVolumeClaims(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := func(m map[string]int64, id, rv string) bool {
		n, err := strconv.ParseInt(rv, 10, 64)
		if id == "" || err != nil {
			return false
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if _, seen := m[id]; seen {
			return false
		}
		m[id] = n
		return true
	}
	ended := func(what string) {
		if ctx.Err() != nil {
			return
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		g.broken = fmt.Errorf("the %s watch ended early", what)
	}
	go func() {
		defer ended("Job")
		for ev := range jw.ResultChan() {
			j, ok := ev.Object.(*batchv1.Job)
			if !ok || j.Labels[kube.LabelComponent] != kube.ComponentBackup {
				continue
			}
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
					first(g.jobDone, j.Labels[kube.LabelSession], j.ResourceVersion)
				}
			}
		}
	}()
	go func() {
		defer ended("PersistentVolumeClaim")
		for ev := range pw.ResultChan() {
			c, ok := ev.Object.(*corev1.PersistentVolumeClaim)
			if !ok || (ev.Type != watch.Deleted && c.DeletionTimestamp == nil) {
				continue
			}
			id := c.Labels[kube.LabelSession]
			if n, err := kube.NamesFor(id); err != nil || c.Name != n.Data {
				continue
			}
			if first(g.pvcGone, id, c.ResourceVersion) {
				if problem := onGone(id); problem != "" {
					g.mu.Lock()
					g.atGone[id] = problem
					g.mu.Unlock()
				}
			}
		}
	}()
	go func() {
		<-ctx.Done()
		jw.Stop()
		pw.Stop()
	}()
	return g
}

// problems lists every volume that went before its backup was complete.
func (g *loadVolumeGuard) problems() (gone int, out []string, broken error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, went := range g.pvcGone {
		done, ok := g.jobDone[id]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("the volume of %s went (resource version %d) with no backup Job seen succeeded", id, went))
		case done > went:
			out = append(out, fmt.Sprintf("the volume of %s went (resource version %d) before its backup Job succeeded (%d)", id, went, done))
		}
		if p := g.atGone[id]; p != "" {
			out = append(out, fmt.Sprintf("when the volume of %s went: %s", id, p))
		}
	}
	sort.Strings(out)
	return len(g.pvcGone), out, g.broken
}

// loadArchiveProblem checks a session's backup directory on the host: it must hold a zip under its
// final name that passes unzip's test. It returns what is wrong, "" when nothing is.
func loadArchiveProblem(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Sprintf("its backup directory: %v", err)
	}
	var zips []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), ".zip") {
			zips = append(zips, e.Name())
		}
	}
	if len(zips) == 0 {
		return fmt.Sprintf("no archive in %s", dir)
	}
	for _, z := range zips {
		if b, err := exec.Command("unzip", "-tqq", filepath.Join(dir, z)).CombinedOutput(); err != nil {
			return fmt.Sprintf("the archive %s fails its test: %v: %s", z, err, b)
		}
	}
	return ""
}
