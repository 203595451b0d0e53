package faults_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// operation is one lifecycle call the control plane can be cut in.
type operation struct {
	name string
	// prepare brings a session to where the operation starts, with a healthy instance, and
	// returns its id ("" for create, which makes its own).
	prepare func(t *testing.T, p *plane, svc *session.Service) string
	run     func(ctx context.Context, svc *session.Service, id string) (*session.Session, error)
	// ends are the states the session may rest in afterwards: the one it started in (the
	// cut came before the operation took effect) or the one the operation leads to.
	ends []session.State
	// backup: the volume may only go after a backup of it succeeded.
	backup bool
}

func running(t *testing.T, p *plane, svc *session.Service) string {
	t.Helper()
	s, err := svc.Create(context.Background(), session.CreateRequest{UserID: "alice@example.com"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	p.waitState(t, svc, s.ID, session.StateRunning)
	return s.ID
}

func sleeping(t *testing.T, p *plane, svc *session.Service) string {
	t.Helper()
	s, err := svc.Create(context.Background(), session.CreateRequest{UserID: "alice@example.com", State: session.StateSleeping})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	p.waitState(t, svc, s.ID, session.StateSleeping)
	return s.ID
}

func deleteOp(skip bool) func(ctx context.Context, svc *session.Service, id string) (*session.Session, error) {
	return func(ctx context.Context, svc *session.Service, id string) (*session.Session, error) {
		return svc.Delete(ctx, id, session.DeleteOptions{SkipBackup: skip})
	}
}

var operations = []operation{
	{name: "create",
		run: func(ctx context.Context, svc *session.Service, _ string) (*session.Session, error) {
			return svc.Create(ctx, session.CreateRequest{UserID: "alice@example.com"})
		},
		ends: []session.State{session.StateRunning}},
	{name: "sleep", prepare: running,
		run: func(ctx context.Context, svc *session.Service, id string) (*session.Session, error) {
			return svc.Sleep(ctx, id)
		},
		ends: []session.State{session.StateRunning, session.StateSleeping}},
	{name: "wake", prepare: sleeping,
		run: func(ctx context.Context, svc *session.Service, id string) (*session.Session, error) {
			return svc.Wake(ctx, id)
		},
		ends: []session.State{session.StateSleeping, session.StateRunning}},
	{name: "delete", prepare: running, run: deleteOp(false), backup: true,
		ends: []session.State{session.StateRunning, session.StateDeleted, session.StateFailed}},
	{name: "delete-skip-backup", prepare: running, run: deleteOp(true),
		ends: []session.State{session.StateRunning, session.StateDeleted}},
}

// crashLockTTL is the lock TTL of an instance that will crash: short, so the lock a dead
// instance leaves behind expires soon, yet long enough that a loaded machine (make test runs
// packages side by side) still extends it in time. Its work's deadline is long, so a slow
// machine does not cut it where the test did not.
const crashLockTTL = 6 * time.Second

// cutRun is one run of an operation on an instance that dies at call number at (0: never).
type cutRun struct {
	id    string
	calls []string
	err   error
	cut   bool
}

// runCut prepares a session, runs op on an instance that crashes at call at, and returns
// what it did. The store is the case's own.
func runCut(t *testing.T, p *plane, st *store.Store, op operation, at int) cutRun {
	t.Helper()
	healthy := p.service(p.cluster(nil), st, session.Options{})
	id := ""
	if op.prepare != nil {
		id = op.prepare(t, p, healthy)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &crash{at: at, cancel: cancel}
	svc := p.service(&crashCluster{c: c, inner: p.cluster(nil)}, &crashStore{c: c, inner: st},
		session.Options{LockTTL: crashLockTTL, TransitionTimeout: patience})
	counts.operations.Add(1)
	_, err := op.run(ctx, svc, id)
	if id == "" {
		id = c.id
	}
	if !c.dead() && id != "" {
		drive(t, p, svc, st, id, c)
	}
	return cutRun{id: id, calls: c.trace(), err: err, cut: c.dead()}
}

// drive lets the instance that ran an operation also finish it, as its sweep would (once the
// cluster settled, Advance), until the session rests or the instance dies: the cuts then
// fall on the later steps too (readiness, the backup, the removal).
func drive(t *testing.T, p *plane, svc *session.Service, st *store.Store, id string, c *crash) {
	t.Helper()
	ctx := context.Background()
	for range maxSweeps {
		if c.dead() {
			return
		}
		p.settle(t, id)
		rec, err := st.Get(ctx, id)
		if err != nil || rec.Pending == session.PendingNone {
			return
		}
		_ = svc.Advance(ctx, id) // a failure is the cut's, or the next sweep's to retry
	}
}

// Every operation, cut at every step boundary in turn: a new instance on the same Redis and
// cluster, and the sweep, bring the session to rest in a state the operation implies, with
// the cluster's objects matching it, never answering NotFound while its record exists, and
// never removing a volume without a backup unless asked to.
func TestCutAtEveryStep(t *testing.T) {
	p := newPlane(t, planeOptions{})
	order := p.watchVolumes(t)
	for _, op := range operations {
		t.Run(op.name, func(t *testing.T) {
			// an uncut run counts the calls the operation makes
			rdb, prefix := p.redis(t)
			base := runCut(t, p, newStore(rdb, prefix), op, 0)
			if base.err != nil {
				t.Fatalf("uncut %s: %v", op.name, base.err)
			}
			t.Logf("%s makes %d calls: %s", op.name, len(base.calls), strings.Join(base.calls, " "))
			if bug := checkRest(t, p, newStore(rdb, prefix), op, base, order); bug != "" {
				t.Fatalf("uncut %s: %s", op.name, bug)
			}
			for at := 1; at <= len(base.calls); at++ {
				t.Run(fmt.Sprintf("cut-at-%d", at), func(t *testing.T) {
					t.Parallel()
					rdb, prefix := p.redis(t)
					r := runCut(t, p, newStore(rdb, prefix), op, at)
					if r.id == "" {
						t.Fatalf("the instance never named its session (calls %v)", r.calls)
					}
					t.Logf("cut at %d: %s (%v)", at, strings.Join(r.calls, " "), r.err)
					if bug := checkRest(t, p, newStore(rdb, prefix), op, r, order); bug != "" {
						t.Errorf("cut at %d (%s): session %s: %s", at, r.calls[len(r.calls)-1], r.id, bug)
					}
				})
			}
		})
	}
}

// checkRest lets a crashed instance's lock expire, builds a new instance on the same parts,
// converges the session with sweeps and checks where it rests. It returns the description of
// a record and cluster left apart with nothing pending (see drifted), "" otherwise.
func checkRest(t *testing.T, p *plane, st *store.Store, op operation, r cutRun, order *volumeOrder) string {
	t.Helper()
	ctx := context.Background()
	if r.cut {
		waitLockFree(t, st, r.id)
	}
	svc := p.service(p.cluster(nil), st, session.Options{})
	// right after the crash: a record that exists is answered, never NotFound
	if _, err := svc.Get(ctx, r.id); errors.Is(err, session.ErrNotFound) {
		if _, rerr := st.Get(ctx, r.id); rerr == nil {
			t.Fatalf("Get answers NotFound while session %s's record exists: %v", r.id, err)
		}
	}
	rec, o := p.converge(t, svc, st, r.id)
	counts.converged.Add(1)
	if rec == nil {
		if op.name != "create" {
			t.Fatalf("session %s's record is gone after a cut %s", r.id, op.name)
		}
		checkObjects(t, r.id, nil, o)
		return ""
	}
	if !slices.Contains(op.ends, rec.State) {
		t.Errorf("session %s rests %s after a cut %s, want one of %v", r.id, rec.State, op.name, op.ends)
	}
	if bug := drifted(op, rec, o); bug != "" {
		return bug
	}
	checkObjects(t, r.id, rec, o)
	if rec.State == session.StateDeleted && op.backup {
		if rec.BackupLocation == "" {
			t.Errorf("session %s was deleted with a backup but records no backup location", r.id)
		}
		order.checkBackedUp(t, r.id)
	}
	return ""
}

// drifted recognises a cut that leaves the record and the cluster apart with nothing pending,
// which no sweep would repair: a "running" session with no pod, or a "sleeping" one whose pod
// runs. (The Service writes a transition's intent, with a pending step, before it scales.)
func drifted(op operation, rec *session.Session, o objects) string {
	if rec.Pending != session.PendingNone {
		return ""
	}
	switch {
	case rec.State == session.StateRunning && o.replicas == 0 && (op.name == "sleep" || strings.HasPrefix(op.name, "delete")):
		return fmt.Sprintf("a %s cut after Scale(0) and before its Put leaves the record running with nothing pending "+
			"while the Deployment is at 0 replicas: no sweep repairs it", op.name)
	case rec.State == session.StateSleeping && o.replicas == 1 && op.name == "wake":
		return "a wake cut after Scale(1) and before its Put leaves the record sleeping with nothing pending while the " +
			"Deployment runs a pod: no sweep repairs it, and the idle sweep never looks at a sleeping session"
	}
	return ""
}

// proxied returns a plane's cluster adapter whose calls go through a fault proxy, and the proxy.
func (p *plane) proxied(t *testing.T) (*testenv.KubeProxy, *kube.Cluster) {
	t.Helper()
	proxy, cfg := testenv.StartKubeProxy(t, p.kube.Config)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { counts.faults.Add(int64(proxy.Total())) })
	return proxy, p.cluster(cs)
}

// A delete whose Secret or Ingress deletion the API server refuses (500) stops half-way: the
// session is not wedged, and once the API server answers again the sweep finishes it (the
// issue's first scenario). With a backup, the volume still goes only after it.
func TestDeleteRefusedHalfWay(t *testing.T) {
	p := newPlane(t, planeOptions{})
	order := p.watchVolumes(t)
	for _, tc := range []struct {
		name, path string
		skip       bool
	}{
		{"secret-skip-backup", "/secrets/", true},
		{"ingress-skip-backup", "/ingresses/", true},
		{"secret-with-backup", "/secrets/", false},
		{"ingress-with-backup", "/ingresses/", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proxy, c := p.proxied(t)
			rdb, prefix := p.redis(t)
			st := newStore(rdb, prefix)
			svc := p.service(c, st, session.Options{})
			id := running(t, p, svc)
			// refused until it has been refused three times: the delete itself and the next
			// sweeps meet it
			proxy.Add(testenv.FaultRule{Name: tc.name, Verbs: []string{"DELETE"}, PathContains: tc.path,
				Status: http.StatusInternalServerError, Limit: 3})
			counts.operations.Add(1)
			_, err := svc.Delete(context.Background(), id, session.DeleteOptions{SkipBackup: tc.skip})
			t.Logf("delete: %v (refused %d times so far)", err, proxy.Injected()[tc.name])
			rec, o := p.converge(t, svc, st, id)
			counts.converged.Add(1)
			if rec == nil || rec.State != session.StateDeleted {
				t.Fatalf("session %s rests %+v, want deleted", id, rec)
			}
			checkObjects(t, id, rec, o)
			if proxy.Injected()[tc.name] == 0 {
				t.Fatal("no deletion was refused: the test tested nothing")
			}
			if !tc.skip {
				order.checkBackedUp(t, id)
			}
		})
	}
}

// A sleep whose scale call stalls: past the transition's deadline the request is cut (the
// stalled call never lands) and answers an error, but the sleep was recorded first, so the
// next touch finishes it; under the deadline the sleep lands late and succeeds. Either way
// the session rests asleep, where its record says.
func TestSleepScaleStalls(t *testing.T) {
	p := newPlane(t, planeOptions{})
	for _, tc := range []struct {
		name    string
		stall   time.Duration
		answers bool // whether the sleep request itself succeeds
		want    session.State
	}{
		{"past-the-deadline", time.Hour, false, session.StateSleeping},
		{"under-the-deadline", 500 * time.Millisecond, true, session.StateSleeping},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proxy, c := p.proxied(t)
			rdb, prefix := p.redis(t)
			st := newStore(rdb, prefix)
			id := running(t, p, p.service(c, st, session.Options{}))
			// a short deadline, so the long stall outlasts it
			svc := p.service(c, st, session.Options{LockTTL: 20 * time.Second, TransitionTimeout: 5 * time.Second})
			proxy.Add(testenv.FaultRule{Name: tc.name, Verbs: []string{"PUT", "PATCH"}, PathContains: "/scale",
				Stall: tc.stall, Limit: 1})
			counts.operations.Add(1)
			_, err := svc.Sleep(context.Background(), id)
			t.Logf("sleep: %v", err)
			if (err == nil) != tc.answers {
				t.Errorf("sleep answered %v, want success %v", err, tc.answers)
			}
			rec, o := p.converge(t, p.service(c, st, session.Options{}), st, id)
			counts.converged.Add(1)
			if rec == nil || rec.State != tc.want {
				t.Fatalf("session %s rests %+v, want %s", id, rec, tc.want)
			}
			checkObjects(t, id, rec, o)
			if proxy.Injected()[tc.name] != 1 {
				t.Fatalf("the scale was stalled %d times, want once", proxy.Injected()[tc.name])
			}
		})
	}
}

// writeTree writes a small workspace tree (binary and text files, a hidden directory, a name
// with a space and a non-ASCII letter, an empty file) into /app/tree.
const writeTree = `set -eu
rm -rf /app/tree && mkdir -p /app/tree/src /app/tree/.hidden && cd /app/tree
head -c 3145728 /dev/urandom > big.bin
head -c 4099 /dev/urandom > .hidden/key
printf 'package main\n\nfunc main() {}\n' > src/main.go
printf 'notes ü\n' > 'src/name with space ü.md'
: > empty
`

// manifestScript prints "sha256 size path" for every file of /app/tree, sorted bytewise.
const manifestScript = `set -eu
cd /app/tree
find . -type f | LC_ALL=C sort | while IFS= read -r f; do
  printf '%s %s %s\n' "$(sha256sum < "$f" | cut -d' ' -f1)" "$(wc -c < "$f" | tr -d ' ')" "$f"
done
`

// A delete with a backup on the real node, cut where the backup matters (its Job started but
// not recorded, recorded, succeeded but the removal not recorded, recorded) and not at all: the
// session converges, its zip holds the workspace's files byte for byte, no temporary file is
// left on the backup volume, and the volume goes only after the backup succeeded. Two
// sessions at a time at most.
func TestCutDeleteOnTheRealNode(t *testing.T) {
	p := newPlane(t, planeOptions{realNode: true})
	order := p.watchVolumes(t)
	var mu sync.Mutex
	trees := map[string]string{}
	op := operations[3] // delete, with its backup
	if op.name != "delete" {
		t.Fatalf("operations[3] is %s", op.name)
	}
	op.prepare = func(t *testing.T, p *plane, svc *session.Service) string {
		id := running(t, p, svc)
		p.exec(t, id, writeTree)
		m := p.exec(t, id, manifestScript)
		if !strings.Contains(m, " ./big.bin") {
			t.Fatalf("the tree's manifest has no big.bin:\n%s", m)
		}
		mu.Lock()
		trees[id] = m
		mu.Unlock()
		return id
	}
	check := func(t *testing.T, st *store.Store, r cutRun) {
		t.Helper()
		if bug := checkRest(t, p, st, op, r, order); bug != "" {
			t.Fatalf("session %s: %s", r.id, bug)
		}
		mu.Lock()
		want := trees[r.id]
		mu.Unlock()
		rec, err := st.Get(context.Background(), r.id)
		if err != nil {
			t.Fatal(err)
		}
		p.checkNoTemporaries(t, r.id)
		if rec.State == session.StateDeleted {
			p.checkZip(t, rec.BackupLocation, want)
		}
	}

	rdb, prefix := p.redis(t)
	base := runCut(t, p, newStore(rdb, prefix), op, 0)
	if base.err != nil {
		t.Fatalf("uncut delete: %v", base.err)
	}
	t.Logf("delete makes %d calls: %s", len(base.calls), strings.Join(base.calls, " "))
	check(t, newStore(rdb, prefix), base)

	// the boundaries around the backup, found in the uncut run's calls
	var cuts []int
	for i, c := range base.calls {
		switch {
		case c == "StartBackup" && !slices.Contains(base.calls[:i], "StartBackup"):
			// (cut numbers count from 1: call i is cut number i+1) the Job started but not
			// recorded; recorded
			cuts = append(cuts, i+2, i+3)
		case c == "Put(deleting,await-removal)":
			cuts = append(cuts, i+1, i+2) // succeeded but the removal not recorded; recorded
		}
	}
	if len(cuts) != 4 {
		t.Fatalf("the uncut delete's calls lack its backup's steps: %v", base.calls)
	}
	slots := make(chan struct{}, 2) // two sessions on the real node at a time
	for _, at := range cuts {
		t.Run(fmt.Sprintf("cut-at-%d-%s", at, base.calls[at-1]), func(t *testing.T) {
			t.Parallel()
			slots <- struct{}{}
			defer func() { <-slots }()
			rdb, prefix := p.redis(t)
			r := runCut(t, p, newStore(rdb, prefix), op, at)
			t.Logf("cut at %d: %s (%v)", at, strings.Join(r.calls, " "), r.err)
			check(t, newStore(rdb, prefix), r)
		})
	}
}

// exec runs a shell script in the session's workspace container and returns its output.
func (p *plane) exec(t *testing.T, id, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	pods, err := p.kube.Client.CoreV1().Pods(p.ns).List(ctx, metav1.ListOptions{
		LabelSelector: kube.LabelSession + "=" + id + "," + kube.LabelComponent + "=" + kube.ComponentWorkspace})
	if err != nil {
		t.Fatal(err)
	}
	name := ""
	for _, pod := range pods.Items {
		if pod.DeletionTimestamp == nil && pod.Status.Phase == corev1.PodRunning {
			name = pod.Name
		}
	}
	if name == "" {
		t.Fatalf("session %s has no running pod", id)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(p.kube.Bin, "kubectl"), "--kubeconfig", p.kube.Kubeconfig,
		"-n", p.ns, "exec", name, "-c", kube.ContainerName, "--", "/bin/sh", "-c", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("exec in %s: %v\n%s", name, err, stderr.String())
	}
	return stdout.String()
}

// backupRoot is the host directory of the backup claim's volume.
func (p *plane) backupRoot(t *testing.T) string {
	t.Helper()
	root, err := p.kube.VolumeHostPath(context.Background(), p.ns, backupPVC)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// checkNoTemporaries fails t when the session's backup directory holds anything hidden: a
// backup's temporary directory or file (.partial-*, zip's .*.tmp) left behind.
func (p *plane) checkNoTemporaries(t *testing.T, id string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(p.backupRoot(t), id))
	if errors.Is(err, os.ErrNotExist) {
		return
	} else if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		counts.files.Add(1)
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("session %s: a backup's temporary %s was left on the backup volume", id, e.Name())
		}
	}
}

// checkZip extracts the zip at location with the host's unzip and compares its tree, file by
// file, with the manifest taken in the workspace; bytes missing or changed count as lost.
func (p *plane) checkZip(t *testing.T, location, want string) {
	t.Helper()
	rel, ok := strings.CutPrefix(location, "pvc://"+backupPVC+"/")
	if !ok {
		t.Fatalf("backup location %q is not on %s", location, backupPVC)
	}
	zipPath := filepath.Join(p.backupRoot(t), rel)
	out := t.TempDir()
	if b, err := exec.Command("unzip", "-q", zipPath, "-d", out).CombinedOutput(); err != nil {
		t.Fatalf("unzip %s: %v\n%s", zipPath, err, b)
	}
	got := map[string]string{} // path → "sha size"
	root := filepath.Join(out, "tree")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		got["./"+filepath.ToSlash(strings.TrimPrefix(path, root+string(filepath.Separator)))] =
			fmt.Sprintf("%s %d", hex.EncodeToString(sum[:]), len(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
		f := strings.SplitN(line, " ", 3)
		if len(f) != 3 {
			t.Fatalf("manifest line %q", line)
		}
		files++
		counts.files.Add(1)
		if got[f[2]] != f[0]+" "+f[1] {
			size, _ := strconv.ParseInt(f[1], 10, 64)
			counts.bytesLost.Add(size)
			t.Errorf("%s: in the workspace %s %s bytes, in the zip %q", f[2], f[0], f[1], got[f[2]])
		}
	}
	t.Logf("zip %s: %d files equal the workspace's", location, files)
}
