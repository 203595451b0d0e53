package datapath_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Cluster: true, Redis: true, RealNode: true})
}

// backupPVC is the shared backup claim's name in each test's namespace.
const backupPVC = "hyperbola-backups"

// patience bounds every wait: far above what a step takes on a loaded 2-core machine, so it
// only ends a test that would otherwise hang.
const patience = 5 * time.Minute

// fixture is one test's control plane on the real node: its own namespace (with its own
// backup claim) and Redis prefix, and a Service whose workspaces and backups run there.
type fixture struct {
	t       *testing.T
	ns      string
	kube    *testenv.Kube
	node    *testenv.RealNode
	store   *store.Store
	svc     *session.Service
	cluster *kube.Cluster
}

// fixtureOptions adjust a fixture before its parts are built.
type fixtureOptions struct {
	kube func(*kube.Options)
	now  func() time.Time
	// backupVolume, when set, makes the backup claim itself (a small volume, say) instead of
	// a local-path claim.
	backupVolume func(f *fixture)
}

func newFixture(t *testing.T, fo fixtureOptions) *fixture {
	t.Helper()
	k, ns := env.Namespace(t)
	rdb, prefix := env.RedisFor(t)
	f := &fixture{t: t, ns: ns, kube: k, node: k.RealNode}
	if f.node == nil {
		t.Fatal("the local cluster has no real node")
	}
	ctx := context.Background()
	if fo.backupVolume != nil {
		fo.backupVolume(f)
	} else if err := k.CreateBackupPVCOn(ctx, ns, backupPVC, f.node.StorageClass); err != nil {
		t.Fatal(err)
	}
	// the configuration's defaults, with the workspaces and backups on the real node
	ko := kube.Options{Namespace: ns, Domain: "ws.example.test", Port: 8080, StorageClass: f.node.StorageClass,
		IngressClass: "nginx", ClusterIssuer: "letsencrypt", IngressNamespace: "ingress-nginx",
		NodeSelector: f.node.NodeSelector(), Tolerations: []corev1.Toleration{f.node.Toleration()},
		BackupPVC: backupPVC, BackupImage: f.node.BackupImage, BackupDeadline: 30 * time.Minute}
	if fo.kube != nil {
		fo.kube(&ko)
	}
	if err := ko.Validate(); err != nil {
		t.Fatal(err)
	}
	f.store = store.New(rdb, prefix, store.Options{TombstoneTTL: 24 * time.Hour, Now: fo.now})
	f.cluster = kube.NewClusterWithMetadata(k.Client, k.Metadata(t), ko)
	f.svc = session.NewService(f.cluster, f.store, session.Options{Domain: ko.Domain,
		Image: f.node.WorkspaceImage, Storage: "2Gi", Now: fo.now})
	return f
}

// until calls check whenever the namespace changes (or every second) until it reports done.
// check drives the session forward itself (Get does); it fails the test after patience.
func (f *fixture) until(what string, check func() (bool, error)) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	changed := testenv.Changes(ctx, f.t, f.kube.Client, f.ns)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	var lastErr error
	for {
		done, err := check()
		if err != nil {
			lastErr = err
		}
		if done {
			f.t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			f.t.Fatalf("%s: not after %s (last error: %v)", what, patience, lastErr)
		case <-changed:
		case <-tick.C:
		}
	}
}

// waitState drives the session with Get until it is in want with nothing pending.
func (f *fixture) waitState(id string, want session.State) *session.Session {
	f.t.Helper()
	var last *session.Session
	f.until(fmt.Sprintf("session %s %s", id, want), func() (bool, error) {
		s, err := f.svc.Get(context.Background(), id)
		if err != nil {
			return false, err
		}
		last = s
		if s.State == session.StateFailed && want != session.StateFailed {
			return false, fmt.Errorf("session failed: %s", s.Reason)
		}
		return s.State == want && s.Pending == session.PendingNone, nil
	})
	return last
}

// create makes a running workspace on the real node.
func (f *fixture) create(req session.CreateRequest) *session.Session {
	f.t.Helper()
	if req.UserID == "" {
		req.UserID = "alice@example.com"
	}
	s, err := f.svc.Create(context.Background(), req)
	if err != nil {
		f.t.Fatalf("create: %v", err)
	}
	return f.waitState(s.ID, session.StateRunning)
}

// pods lists the session's workspace pods (terminating ones included).
func (f *fixture) pods(id string) []corev1.Pod {
	f.t.Helper()
	l, err := f.kube.Client.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: kube.LabelSession + "=" + id + "," + kube.LabelComponent + "=" + kube.ComponentWorkspace,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return l.Items
}

// pod returns the session's one running workspace pod.
func (f *fixture) pod(id string) corev1.Pod {
	f.t.Helper()
	for _, p := range f.pods(id) {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			if p.Spec.NodeName != f.node.NodeName {
				f.t.Fatalf("pod %s runs on %q, not on the real node %q", p.Name, p.Spec.NodeName, f.node.NodeName)
			}
			return p
		}
	}
	f.t.Fatalf("session %s has no running pod", id)
	return corev1.Pod{}
}

// waitNoPods waits until the session has no workspace pod left.
func (f *fixture) waitNoPods(id string) {
	f.t.Helper()
	f.until("session "+id+" has no pod", func() (bool, error) { return len(f.pods(id)) == 0, nil })
}

// exec runs a shell script in the session's workspace container (as its user, 1000).
func (f *fixture) exec(id, script string) string {
	f.t.Helper()
	p := f.pod(id)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	out, err := f.kube.Exec(ctx, f.ns, p.Name, kube.ContainerName, script)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// writeTree is the data-path tests' workspace (testenv.WorkspaceTree), with a big file of
// 100 MB; manifestScript checksums it, and treeManifest computes the same from a directory on
// this host.
var (
	writeTree      = testenv.WorkspaceTree(100 << 20)
	manifestScript = testenv.TreeManifestScript
)

// manifest checksums the session's /app/tree in its pod.
func (f *fixture) manifest(id string) string {
	f.t.Helper()
	m := f.exec(id, manifestScript)
	if !strings.Contains(m, " ./big.bin") {
		f.t.Fatalf("the tree's manifest has no big.bin:\n%s", m)
	}
	return m
}

// treeManifest is manifestScript's output for dir on this host.
func treeManifest(dir string) (string, error) {
	type entry struct{ path, line string }
	var entries []entry
	err := filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		rel := "./" + filepath.ToSlash(strings.TrimPrefix(path, dir+string(filepath.Separator)))
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			entries = append(entries, entry{rel, fmt.Sprintf("l %s -> %s", rel, target)})
		case fi.IsDir():
			entries = append(entries, entry{rel, fmt.Sprintf("d %o %s", fi.Mode().Perm(), rel)})
		default:
			sum, err := fileSHA256(path)
			if err != nil {
				return err
			}
			entries = append(entries, entry{rel, fmt.Sprintf("f %o %s %s", fi.Mode().Perm(), sum, rel)})
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	// the pod sorts the paths bytewise (LC_ALL=C sort)
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.line + "\n")
	}
	return b.String(), nil
}

func fileSHA256(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// backupDir is the host directory of the session's backups on the backup claim's volume.
func (f *fixture) backupDir(id string) string {
	f.t.Helper()
	root, err := f.kube.VolumeHostPath(context.Background(), f.ns, backupPVC)
	if err != nil {
		f.t.Fatal(err)
	}
	return filepath.Join(root, id)
}

// backupFiles lists what the session's backup directory holds (hidden temporary files
// included); none when the directory does not exist, or the backup claim was never bound
// (nothing can have been written to it).
func (f *fixture) backupFiles(id string) []string {
	f.t.Helper()
	pvc, err := f.kube.Client.CoreV1().PersistentVolumeClaims(f.ns).Get(context.Background(), backupPVC, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	if pvc.Spec.VolumeName == "" {
		return nil
	}
	entries, err := os.ReadDir(f.backupDir(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// extract unzips the backup at location (pvc://<claim>/<id>/<file>) with the host's unzip,
// as a user restoring it by hand would, and returns the directory.
func (f *fixture) extract(location string) string {
	f.t.Helper()
	rel, ok := strings.CutPrefix(location, "pvc://"+backupPVC+"/")
	if !ok {
		f.t.Fatalf("backup location %q is not on %s", location, backupPVC)
	}
	id, _, _ := strings.Cut(rel, "/")
	zipPath := filepath.Join(filepath.Dir(f.backupDir(id)), rel)
	out := f.t.TempDir()
	cmd := exec.Command("unzip", "-q", zipPath, "-d", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		f.t.Fatalf("unzip %s: %v\n%s", zipPath, err, b)
	}
	return out
}

// pvcExists reports whether the session's data claim is still there.
func (f *fixture) pvcExists(id string) bool {
	f.t.Helper()
	l, err := f.kube.Client.CoreV1().PersistentVolumeClaims(f.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: kube.LabelSession + "=" + id,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return len(l.Items) == 1
}

// diffLines describes how two manifests differ.
var diffLines = testenv.DiffLines
