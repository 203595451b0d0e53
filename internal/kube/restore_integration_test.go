package kube

import (
	"archive/zip"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// These tests run the restore, check and prune Jobs on the local cluster's real node: real
// containers of the backup image, real volumes whose files the test reads on this host.

// realPatience bounds every wait on the real node: far above what a step takes on a loaded
// 2-core machine, so it only ends a test that would otherwise hang.
const realPatience = 5 * time.Minute

// realCluster gives t a Cluster in a fresh namespace whose Jobs and volumes (the backup claim
// among them) are on the real node (the package's on-demand real-node cluster).
func realCluster(t *testing.T) (*Cluster, *testenv.Kube) {
	t.Helper()
	k, ns := env.RealNodeNamespace(t)
	node := k.RealNode
	o := testOptions()
	o.Namespace, o.BackupPVC, o.BackupImage = ns, backupPVC, node.BackupImage
	o.StorageClass, o.NodeSelector, o.Tolerations = node.StorageClass, node.NodeSelector(), []corev1.Toleration{node.Toleration()}
	o.BackupDeadline = realPatience
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := k.CreateBackupPVCOn(t.Context(), ns, backupPVC, node.StorageClass); err != nil {
		t.Fatal(err)
	}
	return NewCluster(k.Client, o), k
}

// outcome waits, on the namespace's changes, until status reports a finished Job.
func outcome(t *testing.T, k *testenv.Kube, ns, what string, status func() (*session.Backup, error)) *session.Backup {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), realPatience)
	defer cancel()
	changed := testenv.Changes(ctx, t, k.Client, ns)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	for {
		b, err := status()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if b.Phase == session.BackupSucceeded || b.Phase == session.BackupFailed {
			t.Logf("timing: %s %s after %v", what, b.Phase, time.Since(start).Round(time.Millisecond))
			return b
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not finished after %v (last: %+v)", what, realPatience, b)
		case <-changed:
		case <-tick.C:
		}
	}
}

// writeSourceTree makes a workspace as users make them under dir: modes from 600 to 755, a
// 0700 directory, symlinks to a file, to a directory and dangling, empty directories, an empty
// file, non-ASCII names and a 1 MiB random file; every file and directory with a modification
// time of whole seconds (zip keeps them to the second).
func writeSourceTree(t *testing.T, dir string) {
	t.Helper()
	rnd := make([]byte, 1<<20)
	if _, err := crand.Read(rnd); err != nil {
		t.Fatal(err)
	}
	files := []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{"hello.txt", 0o644, []byte("hello, world\n")},
		{"run.sh", 0o755, []byte("#!/bin/sh\necho hi\n")},
		{".env", 0o600, []byte("TOKEN=abc\n")},
		{"src/pkg/main.go", 0o640, []byte("package main\n\nfunc main() {}\n")},
		{"private/secret.txt", 0o600, []byte("secret\n")},
		{"docs/name with spaces ü.md", 0o644, []byte("# notes ✓ é\n")},
		{"ünïcødé-名前.txt", 0o664, []byte("名前\n")},
		{"tools/build", 0o750, []byte("#!/bin/sh\n")},
		{"big.bin", 0o644, rnd},
		{"empty-file", 0o644, nil},
	}
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{"src", 0o755}, {"src/pkg", 0o755}, {"private", 0o700}, {"docs", 0o750}, {"tools", 0o755},
		{"empty", 0o755}, {"empty/nested-empty", 0o755},
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(dir, d.path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	when := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for i, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		at := when.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range [][2]string{{"src/pkg/main.go", "link-to-main"}, {"src", "link-to-dir"}, {"/nonexistent/target", "dangling-link"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	// deepest first: a directory's time is set after its children are written
	for i := len(dirs) - 1; i >= 0; i-- {
		p := filepath.Join(dir, dirs[i].path)
		if err := os.Chmod(p, dirs[i].mode); err != nil {
			t.Fatal(err)
		}
		at := when.Add(-time.Duration(i+1) * 24 * time.Hour)
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
}

// zipTree zips dir as the backup Job does (find's list, symlinks as links, in the C locale),
// storing .bin files uncompressed so a test can find their bytes in the archive.
func zipTree(t *testing.T, dir, out string) []byte {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `find . -mindepth 1 -print | zip -q -y -n .bin -@ "$OUT"`)
	cmd.Dir, cmd.Env = dir, []string{"PATH=/usr/bin:/bin", "OUT=" + out}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zip: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// manifest lists every entry under dir, sorted bytewise by path: its type, mode, owner,
// modification time and the SHA-256 of a file's bytes or a link's target. withOwner adds the
// owner's uid.
func manifest(t *testing.T, dir string, withOwner bool) string {
	t.Helper()
	var lines []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel := "./" + filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
		owner := ""
		if withOwner {
			owner = fmt.Sprintf(" uid=%d", fi.Sys().(*syscall.Stat_t).Uid)
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			lines = append(lines, fmt.Sprintf("l %s -> %s%s", rel, target, owner))
		case fi.IsDir():
			lines = append(lines, fmt.Sprintf("d %o %s %s%s", fi.Mode().Perm(), fi.ModTime().UTC().Format(time.RFC3339), rel, owner))
		default:
			lines = append(lines, fmt.Sprintf("f %o %s %s %s%s", fi.Mode().Perm(), fi.ModTime().UTC().Format(time.RFC3339), fileSum(t, p), rel, owner))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(entryPath(a), entryPath(b)) })
	return strings.Join(lines, "\n") + "\n"
}

// entryPath is the path in a manifest line.
func entryPath(line string) string {
	i := strings.Index(line, " ./")
	rest := line[i+1:]
	if j := strings.Index(rest, " -> "); j >= 0 && line[0] == 'l' {
		return rest[:j]
	}
	if j := strings.Index(rest, " uid="); j >= 0 {
		return rest[:j]
	}
	return rest
}

func fileSum(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// entries lists dir's entries' names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestIntegrationRealNodeArchives(t *testing.T) {
	c, k := realCluster(t)
	ctx := t.Context()
	o := c.Options()
	ns := o.Namespace

	// The archives of a deleted session, as its backups named them.
	from, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	at := func(h int) string {
		return BackupLocation(o, from, time.Date(2026, 11, 27, h, 0, 0, 0, time.UTC))
	}
	good, notZip, corrupt, empty, missing := at(1), at(2), at(3), at(4), at(5)

	// A missing archive; checking it is the backup claim's first use, which binds it.
	start := time.Now()
	a, err := c.CheckArchive(ctx, missing)
	if err != nil || a.Problem != session.ArchiveMissing {
		t.Fatalf("CheckArchive(missing) = %+v, %v", a, err)
	}
	t.Logf("timing: CheckArchive (a fresh backup claim) %v", time.Since(start).Round(time.Millisecond))

	// Write the archives onto the backup volume, owned by the Jobs' user as a backup's are.
	root, err := k.VolumeHostPath(ctx, ns, backupPVC)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeSourceTree(t, src)
	goodZip := zipTree(t, src, filepath.Join(t.TempDir(), "good.zip"))
	big, err := os.ReadFile(filepath.Join(src, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	at0 := bytes.Index(goodZip, big[:4096])
	if at0 < 0 {
		t.Fatal("big.bin is not stored in the archive")
	}
	corruptZip := slices.Clone(goodZip)
	corruptZip[at0+len(big)/2] ^= 0xff
	dir := filepath.Join(root, from)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	hostPath := func(loc string) string {
		rel, err := ArchivePath(o, loc)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Join(root, rel)
	}
	for loc, data := range map[string][]byte{
		good: goodZip, corrupt: corruptZip, notZip: []byte("PK, but not a zip archive\n"),
		empty: append([]byte("PK\x05\x06"), make([]byte, 18)...),
	} {
		if err := os.WriteFile(hostPath(loc), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(hostPath(loc), int(UserID), int(GroupID)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, int(UserID), int(GroupID)); err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{good: fileSum(t, hostPath(good)), corrupt: fileSum(t, hostPath(corrupt))}

	// What the check reads through, against what Go's reader finds in the same bytes.
	zr, err := zip.NewReader(bytes.NewReader(goodZip), int64(len(goodZip)))
	if err != nil {
		t.Fatal(err)
	}
	var uncompressed int64
	for _, f := range zr.File {
		uncompressed += int64(f.UncompressedSize64)
	}
	for loc, want := range map[string]session.Archive{
		good:  {Bytes: int64(len(goodZip)), Files: int64(len(zr.File)), Uncompressed: uncompressed},
		empty: {Bytes: 22},
	} {
		a, err := c.CheckArchive(ctx, loc)
		if err != nil || *a != want {
			t.Errorf("CheckArchive(%s) = %+v, %v; want %+v", loc, a, err, want)
		}
	}
	if a, err := c.CheckArchive(ctx, notZip); err != nil || a.Problem != session.ArchiveNotZip || !strings.Contains(a.Detail, "504b2c20") {
		t.Errorf("CheckArchive(not a zip) = %+v, %v", a, err)
	}
	a, err = c.CheckArchive(ctx, corrupt)
	if err != nil || a.Problem != session.ArchiveCorrupt || !strings.Contains(a.Detail, "big.bin") || !strings.Contains(a.Detail, "CRC") {
		t.Errorf("CheckArchive(corrupt) = %+v, %v", a, err)
	}
	t.Logf("corrupt: %s", a.Detail)
	if l, err := k.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelComponent + "=" + ComponentCheck}); err != nil || len(l.Items) != 0 {
		t.Errorf("check Jobs left: %v, %v", l, err)
	}

	// Restores into a new session's volume (the workspace asleep, as a restoring session is).
	ws := newWorkspace(t)
	ws.Replicas = 0
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	n, _ := NamesFor(ws.ID)
	restore := func(attempt int, loc string) *session.Backup {
		t.Helper()
		if _, err := c.StartRestore(ctx, ws.ID, attempt, loc); err != nil {
			t.Fatal(err)
		}
		return outcome(t, k, ns, fmt.Sprintf("restore %d", attempt), func() (*session.Backup, error) {
			return c.RestoreStatus(ctx, ws.ID, attempt)
		})
	}
	// A corrupt archive fails, leaves the volume empty and the archive as it was.
	b := restore(1, corrupt)
	if b.Phase != session.BackupFailed || !strings.Contains(b.Reason, "CRC") {
		t.Errorf("restore of a corrupt archive: %+v", b)
	}
	t.Logf("corrupt restore: %s", b.Reason)
	data, err := k.VolumeHostPath(ctx, ns, n.Data)
	if err != nil {
		t.Fatal(err)
	}
	if left := entries(t, data); len(left) != 0 {
		t.Errorf("a failed restore left %v", left)
	}
	// What a restore finds is removed first, a directory it may not write into included.
	if err := os.MkdirAll(filepath.Join(data, "stale/locked"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "stale/locked/file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"stale", "stale/locked", "stale/locked/file"} {
		if err := os.Chown(filepath.Join(data, p), int(UserID), int(GroupID)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(data, "stale/locked"), 0o500); err != nil {
		t.Fatal(err)
	}
	if b := restore(2, missing); b.Phase != session.BackupFailed || !strings.Contains(b.Reason, "archive missing") {
		t.Errorf("restore of a missing archive: %+v", b)
	}
	if b := restore(3, good); b.Phase != session.BackupSucceeded || b.Reason != "" {
		t.Fatalf("restore: %+v", b)
	}
	want, got := manifest(t, src, false), manifest(t, data, false)
	if got != want {
		t.Errorf("the restored tree differs from the archived one:\n--- want\n%s--- got\n%s", want, got)
	}
	t.Logf("restored %d entries, checksums, modes, times and link targets equal", strings.Count(got, "\n"))
	for _, line := range strings.Split(strings.TrimSpace(manifest(t, data, true)), "\n") {
		if !strings.HasSuffix(line, fmt.Sprintf(" uid=%d", UserID)) {
			t.Errorf("not code-server's user's: %s", line)
		}
	}
	for loc, sum := range sums {
		if fileSum(t, hostPath(loc)) != sum {
			t.Errorf("archive %s changed", loc)
		}
	}

	// The restored volume's backup (the backup Job's own zip) says its size, and restores
	// into another session's volume as the tree it came from.
	if _, err := c.StartBackup(ctx, ws.ID, 1); err != nil {
		t.Fatal(err)
	}
	b = outcome(t, k, ns, "backup", func() (*session.Backup, error) { return c.BackupStatus(ctx, ws.ID, 1) })
	if b.Phase != session.BackupSucceeded {
		t.Fatalf("backup: %+v", b)
	}
	if fi, err := os.Stat(hostPath(b.Location)); err != nil || fi.Size() != b.Bytes {
		t.Errorf("backup size %d, the archive: %v, %v", b.Bytes, fi, err)
	}
	again := newWorkspace(t)
	again.Replicas = 0
	if err := c.Apply(ctx, again); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartRestore(ctx, again.ID, 1, b.Location); err != nil {
		t.Fatal(err)
	}
	if b := outcome(t, k, ns, "restore of the backup", func() (*session.Backup, error) { return c.RestoreStatus(ctx, again.ID, 1) }); b.Phase != session.BackupSucceeded {
		t.Fatalf("restore of the backup: %+v", b)
	}
	nAgain, _ := NamesFor(again.ID)
	dataAgain, err := k.VolumeHostPath(ctx, ns, nAgain.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got := manifest(t, dataAgain, false); got != want {
		t.Errorf("backed up and restored again, the tree differs:\n--- want\n%s--- got\n%s", want, got)
	}

	if b := restore(4, empty); b.Phase != session.BackupSucceeded {
		t.Errorf("restore of an empty archive: %+v", b)
	}
	if left := entries(t, data); len(left) != 0 {
		t.Errorf("an empty archive restored %v", left)
	}

	// Deleting the volume stops a running restore and removes the finished ones.
	if _, err := c.StartRestore(ctx, ws.ID, 5, good); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteWorkspace(ctx, ws.ID, true); err != nil {
		t.Fatal(err)
	}
	outcome(t, k, ns, "restore Jobs gone", func() (*session.Backup, error) {
		sel, _ := ComponentSelector(ws.ID, ComponentRestore)
		l, err := k.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil || len(l.Items) > 0 {
			return &session.Backup{Phase: session.BackupRunning}, err
		}
		return &session.Backup{Phase: session.BackupSucceeded}, nil
	})

	// Removal: the files go, the session's directory once it is empty; again is harmless.
	remove := func(name string, locs ...string) *session.Backup {
		t.Helper()
		return outcome(t, k, ns, "removal "+name, func() (*session.Backup, error) { return c.RemoveArchives(ctx, name, locs) })
	}
	if b := remove("hyperbola-rm-one", good, notZip, missing); b.Phase != session.BackupSucceeded {
		t.Fatalf("removal: %+v", b)
	}
	if left := entries(t, dir); !slices.Equal(left, []string{filepath.Base(hostPath(corrupt)), filepath.Base(hostPath(empty))}) {
		t.Errorf("left after the first removal: %v", left)
	}
	if b := remove("hyperbola-rm-two", corrupt, empty, good); b.Phase != session.BackupSucceeded {
		t.Fatalf("removal: %+v", b)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the session's directory is still there: %v (%v)", err, entries(t, dir))
	}
	if b := remove("hyperbola-rm-two", corrupt, empty, good); b.Phase != session.BackupSucceeded {
		t.Errorf("the same removal again: %+v", b)
	}
	if b := remove("hyperbola-rm-three", good, corrupt); b.Phase != session.BackupSucceeded {
		t.Errorf("a removal of what is gone: %+v", b)
	}
}
