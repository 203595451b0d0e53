package datapath_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// Files in /app survive sleep and wake byte for byte: the tree is checksummed in the pod before
// the sleep and in the new pod after the wake.
func TestFilesSurviveSleepAndWake(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	s := f.create(session.CreateRequest{})
	f.exec(s.ID, writeTree)
	before := f.manifest(s.ID)
	first := f.pod(s.ID).UID

	if _, err := f.svc.Sleep(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	f.waitNoPods(s.ID)
	if !f.pvcExists(s.ID) {
		t.Fatal("the volume went with the pod")
	}
	if _, err := f.svc.Wake(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	f.waitState(s.ID, session.StateRunning)
	if f.pod(s.ID).UID == first {
		t.Fatal("the woken workspace runs in the same pod: nothing was slept")
	}
	after := f.manifest(s.ID)
	if after != before {
		t.Fatalf("the tree changed across sleep and wake:\n%s", diffLines(before, after))
	}
	t.Logf("%d entries identical after sleep and wake", strings.Count(after, "\n"))
}

// A delete's zip, extracted with unzip, is the workspace's tree (bytes, modes, links, empty
// directories), and the backup Job was created only after the workspace's pod was gone: the
// Job's creation comes after the pod's deletion in etcd's order (resource versions of one
// etcd), so the zip cannot have read a volume that code-server was still writing.
func TestDeleteZipsTheTreeAfterThePodIsGone(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	s := f.create(session.CreateRequest{})
	f.exec(s.ID, writeTree)
	want := f.manifest(s.ID)

	order := f.recordOrder(ctx, s.ID)
	if _, err := f.svc.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got := f.waitState(s.ID, session.StateDeleted)
	podGone, jobMade := order()
	if podGone == 0 || jobMade == 0 {
		t.Fatalf("saw pod deletion at %d and Job creation at %d", podGone, jobMade)
	}
	if jobMade <= podGone {
		t.Fatalf("the backup Job (resource version %d) was created before the workspace's pod was gone (%d)", jobMade, podGone)
	}
	if f.pvcExists(s.ID) {
		t.Fatal("the volume is still there after the delete")
	}
	dir := f.extract(got.BackupLocation)
	gotTree, err := treeManifest(filepath.Join(dir, "tree"))
	if err != nil {
		t.Fatal(err)
	}
	if gotTree != want {
		t.Fatalf("the extracted zip differs from the workspace:\n%s", diffLines(want, gotTree))
	}
	for _, name := range f.backupFiles(s.ID) {
		if name != filepath.Base(got.BackupLocation) {
			t.Errorf("left beside the zip on the backup volume: %s", name)
		}
	}
	t.Logf("zip %s: %d entries equal the workspace's", got.BackupLocation, strings.Count(want, "\n"))
}

// recordOrder watches the session's workspace pods and backup Jobs; the function it returns
// gives the resource version at which the last pod was deleted and the first Job created.
func (f *fixture) recordOrder(ctx context.Context, id string) func() (podGone, jobMade int64) {
	f.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var podGone, jobMade int64
	rv := func(o metav1.Object) int64 {
		n, err := strconv.ParseInt(o.GetResourceVersion(), 10, 64)
		if err != nil {
			f.t.Errorf("resource version %q: %v", o.GetResourceVersion(), err)
		}
		return n
	}
	sel := metav1.ListOptions{LabelSelector: kube.LabelSession + "=" + id}
	pods, err := f.kube.Client.CoreV1().Pods(f.ns).Watch(ctx, sel)
	if err != nil {
		f.t.Fatal(err)
	}
	jobs, err := f.kube.Client.BatchV1().Jobs(f.ns).Watch(ctx, sel)
	if err != nil {
		f.t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ev := range pods.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Deleted && p.Labels[kube.LabelComponent] == kube.ComponentWorkspace {
				mu.Lock()
				podGone = max(podGone, rv(p))
				mu.Unlock()
			}
		}
	}()
	go func() {
		defer wg.Done()
		for ev := range jobs.ResultChan() {
			if ev.Type == watch.Added {
				if m, err := meta(ev.Object); err == nil {
					mu.Lock()
					if jobMade == 0 {
						jobMade = rv(m)
					}
					mu.Unlock()
				}
			}
		}
	}()
	return func() (int64, int64) {
		cancel()
		pods.Stop()
		jobs.Stop()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return podGone, jobMade
	}
}

func meta(o any) (metav1.Object, error) {
	m, ok := o.(metav1.Object)
	if !ok {
		return nil, errors.New("not an object")
	}
	return m, nil
}

// A backup that cannot finish loses nothing and leaves nothing behind: the volume stays, no
// archive or temporary file is left on the backup volume, and the session is failed with a
// reason its user can act on.
func TestBackupFaults(t *testing.T) {
	t.Run("unreadable file", testUnreadableFile)
	t.Run("full backup volume", testFullBackupVolume)
	t.Run("deadline", testBackupDeadline)
}

// A file the backup cannot read (mode 000, which any user can make) fails the backup with its
// name; the attempts are bounded and counted; a wake brings the files back intact, and once
// the file is readable the delete's zip is the tree.
func testUnreadableFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	s := f.create(session.CreateRequest{})
	f.exec(s.ID, writeTree+"printf 'k' > /app/locked.key && chmod 000 /app/locked.key\n")
	want := f.manifest(s.ID)

	const max = 3 // session.Options.MaxBackupAttempts's default
	for attempt := 1; attempt <= max; attempt++ {
		if _, err := f.svc.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
			t.Fatalf("delete %d: %v", attempt, err)
		}
		got := f.waitState(s.ID, session.StateFailed)
		f.checkFailedBackup(s.ID, got, "cannot be read", "./locked.key", "attempt "+strconv.Itoa(attempt)+" of 3")
		if got.BackupFailures != attempt {
			t.Fatalf("backup_failures = %d after %d failed attempts", got.BackupFailures, attempt)
		}
	}
	_, err := f.svc.Delete(ctx, s.ID, session.DeleteOptions{})
	if !errors.Is(err, session.ErrConflict) || !strings.Contains(err.Error(), "skip_backup") {
		t.Fatalf("a delete after %d failed backups: %v, want a conflict that names skip_backup", max, err)
	}

	if _, err := f.svc.Wake(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	woken := f.waitState(s.ID, session.StateRunning)
	if woken.BackupFailures != 0 {
		t.Fatalf("backup_failures = %d after a wake, want 0", woken.BackupFailures)
	}
	if got := f.manifest(s.ID); got != want {
		t.Fatalf("files changed after failed backups and a wake:\n%s", diffLines(want, got))
	}
	f.exec(s.ID, "chmod 600 /app/locked.key")
	if _, err := f.svc.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	done := f.waitState(s.ID, session.StateDeleted)
	gotTree, err := treeManifest(filepath.Join(f.extract(done.BackupLocation), "tree"))
	if err != nil {
		t.Fatal(err)
	}
	if gotTree != want {
		t.Fatalf("the zip differs from the tree:\n%s", diffLines(want, gotTree))
	}
}

// A backup volume with less room than the workspace's files is refused before anything is
// written.
func testFullBackupVolume(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{backupVolume: func(f *fixture) { f.smallBackupVolume("16m") }})
	ctx := context.Background()
	s := f.create(session.CreateRequest{})
	f.exec(s.ID, writeTree)
	want := f.manifest(s.ID)
	if _, err := f.svc.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got := f.waitState(s.ID, session.StateFailed)
	f.checkFailedBackup(s.ID, got, "backup volume has", "KiB free")
	if _, err := f.svc.Wake(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	f.waitState(s.ID, session.StateRunning)
	if after := f.manifest(s.ID); after != want {
		t.Fatalf("files changed after a refused backup:\n%s", diffLines(want, after))
	}
}

// A backup that overruns its deadline is stopped, and removes its partial archive as it stops.
// The deadline is made to pass while zip is writing (the Job's activeDeadlineSeconds is lowered
// once zip's file is seen on the backup volume), so the test proves the same thing on a fast
// machine and a slow one.
func testBackupDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	s := f.create(session.CreateRequest{})
	f.exec(s.ID, writeTree+"head -c 419430400 /dev/urandom > /app/tree/huge.bin\n")
	if _, err := f.svc.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.until("zip writing its archive", func() (bool, error) {
		if _, err := f.svc.Get(ctx, s.ID); err != nil { // drives the delete to its backup
			return false, err
		}
		for _, name := range f.backupFiles(s.ID) {
			if strings.HasPrefix(name, ".partial-") {
				inside, err := os.ReadDir(filepath.Join(f.backupDir(s.ID), name))
				return err == nil && len(inside) > 0, err
			}
		}
		return false, nil
	})
	job, err := kube.BackupJobName(s.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	patch := []byte(`{"spec":{"activeDeadlineSeconds":1}}`)
	if _, err := f.kube.Client.BatchV1().Jobs(f.ns).Patch(ctx, job, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	got := f.waitState(s.ID, session.StateFailed)
	f.checkFailedBackup(s.ID, got, "DeadlineExceeded")
}

// checkFailedBackup checks a session whose backup failed: its reason names every part of
// want, its volume is there, and once the backup's pods are gone the backup volume holds
// nothing of it.
func (f *fixture) checkFailedBackup(id string, s *session.Session, want ...string) {
	f.t.Helper()
	for _, w := range want {
		if !strings.Contains(s.Reason, w) {
			f.t.Fatalf("reason %q does not say %q", s.Reason, w)
		}
	}
	if !f.pvcExists(id) {
		f.t.Fatal("the volume was removed although its backup failed")
	}
	f.until("the backup's pods are gone", func() (bool, error) {
		l, err := f.kube.Client.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{
			LabelSelector: kube.LabelSession + "=" + id + "," + kube.LabelComponent + "=" + kube.ComponentBackup,
		})
		if err != nil {
			return false, err
		}
		for _, p := range l.Items {
			if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				return false, nil
			}
		}
		return true, nil
	})
	if files := f.backupFiles(id); len(files) > 0 {
		f.t.Fatalf("a failed backup left %v on the backup volume", files)
	}
	f.t.Logf("failed as it should: %s", s.Reason)
}

// smallBackupVolume backs the test's backup claim with a tmpfs of size on the real node (a
// hostPath volume bound to the claim by name), removed when the test ends.
func (f *fixture) smallBackupVolume(size string) {
	f.t.Helper()
	dir := f.t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=1777", "tmpfs", dir).CombinedOutput(); err != nil {
		f.t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	ctx := context.Background()
	name := testenv.UniqueName("backup-small")
	empty := ""
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: f.ns, Name: backupPVC},
		},
	}
	if _, err := f.kube.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: backupPVC},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &empty,
			VolumeName:       name,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("16Mi")}},
		},
	}
	if _, err := f.kube.Client.CoreV1().PersistentVolumeClaims(f.ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		_ = f.kube.Client.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
		// the namespace (and the pods using the volume) may still be going: unmount lazily
		_ = exec.Command("umount", "-l", dir).Run()
	})
	if _, err := os.Stat(dir); err != nil {
		f.t.Fatal(err)
	}
}
