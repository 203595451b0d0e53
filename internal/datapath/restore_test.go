package datapath_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// A deleted workspace comes back from its backup byte for byte: the tree of the restored
// session (files' bytes and modes, directories' modes, links' targets, empty directories)
// equals the one that was deleted, and the archive is untouched by the restore.
func TestRestoreBringsTheTreeBack(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	s := f.create(session.CreateRequest{UserID: "ann@example.com"})
	f.exec(s.ID, writeTree)
	before := f.manifest(s.ID)
	if _, err := f.svc.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone := f.waitState(s.ID, session.StateDeleted)
	zip := f.archivePath(gone.BackupLocation)
	zipSum := f.sha256(zip)

	r, err := f.svc.Create(ctx, session.CreateRequest{UserID: "ann@example.com", RestoreFrom: s.ID})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if r.RestoreFrom != gone.BackupLocation || r.Pending != session.PendingRestore {
		t.Fatalf("the restore's session: %+v", r)
	}
	restored := f.waitState(r.ID, session.StateRunning)
	if restored.RestoredAt.IsZero() {
		t.Fatalf("running without restored_at: %+v", restored)
	}
	after := f.manifest(r.ID)
	if after != before {
		t.Fatalf("the restored tree differs from the deleted one:\n%s", diffLines(before, after))
	}
	if f.sha256(zip) != zipSum {
		t.Fatal("the restore changed the archive")
	}
	for _, owner := range strings.Fields(f.exec(r.ID, "stat -c %u:%g /app/tree /app/tree/run.sh /app/tree/.hidden-dir")) {
		if owner != "1000:1000" {
			t.Fatalf("restored files belong to %s, not to code-server's user (1000:1000)", owner)
		}
	}
	t.Logf("restored %s into %s: %d entries identical", gone.BackupLocation, r.ID, strings.Count(after, "\n"))
}

// Bad restores are refused before anything is made, whatever is wrong with the archive: it
// is another user's, it is not a zip, it is corrupt (a flipped byte in the middle of an
// entry), it is gone from the volume. Each is an invalid restore_from, and the namespace holds
// no new object. A restore whose Job fails (the archive was damaged after the check) leaves
// the session failed with unzip's reason, the new volume empty and the archive as it was.
func TestRestoreRefusesBadArchivesAndFailsCleanly(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	s := f.create(session.CreateRequest{UserID: "ann@example.com"})
	f.exec(s.ID, writeTree)
	if _, err := f.svc.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone := f.waitState(s.ID, session.StateDeleted)
	good, err := f.store.GetBackup(ctx, session.BackupIDOf(gone.BackupLocation))
	if err != nil {
		t.Fatal(err)
	}
	// copies of the good archive, damaged, each in the catalog as ann's
	variant := func(sid string, damage func(path string)) string {
		id := sid + "-" + strings.SplitN(good.ID, "-", 2)[1]
		loc := "pvc://" + backupPVC + "/" + sid + "/" + id + ".zip"
		path := f.archivePath(loc)
		if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(f.archivePath(good.Location))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		damage(path)
		rec := good.Clone()
		rec.ID, rec.SessionID, rec.Location = id, sid, loc
		if err := f.store.PutBackup(ctx, rec); err != nil {
			t.Fatal(err)
		}
		return id
	}
	flip := func(path string) { f.flipMiddle(path) }
	notZip := variant("zz000001", func(path string) {
		if err := os.WriteFile(path, []byte("<html>not a zip</html>\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	corrupt := variant("zz000002", flip)
	missing := variant("zz000003", func(path string) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	})
	objects := f.objectCount()
	for _, c := range []struct{ name, user, ref, says string }{
		{"another user's", "bob@example.com", good.ID, "no backup"},
		{"not a zip", "ann@example.com", notZip, "not a zip archive"},
		{"corrupt", "ann@example.com", corrupt, "is corrupt"},
		{"missing", "ann@example.com", missing, "no longer at"},
	} {
		_, err := f.svc.Create(ctx, session.CreateRequest{UserID: c.user, RestoreFrom: c.ref})
		if !errors.Is(err, session.ErrInvalid) || session.FieldOf(err) != "restore_from" || !strings.Contains(err.Error(), c.says) {
			t.Fatalf("%s: %v, want an invalid restore_from saying %q", c.name, err, c.says)
		}
		if n := f.objectCount(); n != objects {
			t.Fatalf("%s: the refused restore left %d objects (there were %d)", c.name, n, objects)
		}
		t.Logf("%s: refused: %v", c.name, err)
	}

	// Damaged after its check: the Job fails, empties the volume and leaves the archive.
	late := variant("zz000004", func(string) {})
	r, err := f.svc.Create(ctx, session.CreateRequest{UserID: "ann@example.com", RestoreFrom: late})
	if err != nil {
		t.Fatal(err)
	}
	lateZip := f.archivePath("pvc://" + backupPVC + "/zz000004/" + late + ".zip")
	flip(lateZip)
	damaged := f.sha256(lateZip)
	failed := f.waitState(r.ID, session.StateFailed)
	if !strings.Contains(failed.Reason, "restoring from") {
		t.Fatalf("reason %q", failed.Reason)
	}
	if f.sha256(lateZip) != damaged {
		t.Fatal("the failed restore changed the archive")
	}
	names, err := kube.NamesFor(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	root, err := f.kube.VolumeHostPath(ctx, f.ns, names.Data)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "lost+found" {
			t.Fatalf("the failed restore left %s on the volume", e.Name())
		}
	}
	if len(f.pods(r.ID)) != 0 {
		t.Fatal("a workspace started on a volume whose restore failed")
	}
	t.Logf("failed as it should: %s", failed.Reason)
}

// archivePath is the host path of the archive at location on the test's backup volume.
func (f *fixture) archivePath(location string) string {
	f.t.Helper()
	rel, ok := strings.CutPrefix(location, "pvc://"+backupPVC+"/")
	if !ok {
		f.t.Fatalf("backup location %q is not on %s", location, backupPVC)
	}
	root, err := f.kube.VolumeHostPath(context.Background(), f.ns, backupPVC)
	if err != nil {
		f.t.Fatal(err)
	}
	return filepath.Join(root, rel)
}

func (f *fixture) sha256(path string) string {
	f.t.Helper()
	sum, err := fileSHA256(path)
	if err != nil {
		f.t.Fatal(err)
	}
	return sum
}

// flipMiddle inverts 64 bytes in the middle of the file: inside the biggest entry's data, so
// only a test of the entries' checksums finds it.
func (f *fixture) flipMiddle(path string) {
	f.t.Helper()
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		f.t.Fatal(err)
	}
	buf := make([]byte, 64)
	off := st.Size() / 2
	if _, err := fh.ReadAt(buf, off); err != nil {
		f.t.Fatal(err)
	}
	for i := range buf {
		buf[i] ^= 0xff
	}
	if _, err := fh.WriteAt(buf, off); err != nil {
		f.t.Fatal(err)
	}
}

// objectCount counts the namespace's Hyperbola objects that belong to a session.
func (f *fixture) objectCount() int {
	f.t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: kube.LabelSession}
	n := 0
	pvcs, err := f.kube.Client.CoreV1().PersistentVolumeClaims(f.ns).List(ctx, sel)
	if err != nil {
		f.t.Fatal(err)
	}
	deps, err := f.kube.Client.AppsV1().Deployments(f.ns).List(ctx, sel)
	if err != nil {
		f.t.Fatal(err)
	}
	secrets, err := f.kube.Client.CoreV1().Secrets(f.ns).List(ctx, sel)
	if err != nil {
		f.t.Fatal(err)
	}
	jobs, err := f.kube.Client.BatchV1().Jobs(f.ns).List(ctx, sel)
	if err != nil {
		f.t.Fatal(err)
	}
	n += len(pvcs.Items) + len(deps.Items) + len(secrets.Items)
	for _, j := range jobs.Items {
		if j.Labels[kube.LabelComponent] != kube.ComponentBackup {
			n++
		}
	}
	return n
}
