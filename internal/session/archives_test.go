package session_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// backedUp creates a session of user's (with storage, "" for the default), deletes it and lets
// its backup succeed: it returns the tombstone and the archive's catalog record.
func (r *rig) backedUp(user, storage string) (*session.Session, *session.BackupRecord) {
	r.t.Helper()
	s := r.create(session.CreateRequest{UserID: user, Storage: storage})
	r.ready(s.ID)
	d := must(r.t)(r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{}))
	r.Cluster.FinishBackup(s.ID, d.Attempt, session.BackupSucceeded, "")
	if g := r.get(s.ID); g.State != session.StateDeleted {
		r.t.Fatalf("after its backup: %+v", g)
	}
	l, err := r.svc.ListBackups(r.ctx, session.BackupListOptions{SessionID: s.ID})
	if err != nil || len(l.Backups) != 1 {
		r.t.Fatalf("the archive of %s is not in the catalog: %+v, %v", s.ID, l, err)
	}
	r.Clock.Add(time.Second) // the next archive gets another name
	return r.get(s.ID), l.Backups[0]
}

func TestDeleteCatalogsTheArchive(t *testing.T) {
	r := newRig(t)
	d, b := r.backedUp("ann@example.com", "7Gi")
	want := session.BackupRecord{
		ID: session.BackupIDOf(d.BackupLocation), SessionID: d.ID, UserID: "ann@example.com",
		Location: d.BackupLocation, Bytes: 1 << 20, Storage: "7Gi", State: session.BackupAvailable,
	}
	want.CreatedAt, _ = session.BackupTime(want.ID)
	want.ExpiresAt = want.CreatedAt.Add(session.DefaultBackupRetention)
	if want.ID == "" || *b != want {
		t.Fatalf("catalog record\n got %+v\nwant %+v", *b, want)
	}
	l, err := r.svc.ListBackups(r.ctx, session.BackupListOptions{UserID: "bob@example.com"})
	if err != nil || len(l.Backups) != 0 {
		t.Fatalf("another user's listing shows it: %+v %v", l, err)
	}
}

// A restore from a location, a backup id or a session id reads the archive through, applies
// the workspace at zero replicas, fills the volume with a restore Job and only then starts it.
func TestRestoreFromEachReference(t *testing.T) {
	r := newRig(t)
	d, b := r.backedUp("ann@example.com", "")
	for _, ref := range []string{b.Location, b.ID, d.ID} {
		t.Run(ref, func(t *testing.T) {
			s := r.create(session.CreateRequest{UserID: "ann@example.com", RestoreFrom: ref})
			if s.State != session.StateCreating || s.Pending != session.PendingRestore || s.RestoreFrom != b.Location ||
				!s.RestoredAt.IsZero() || s.Attempt != 1 || s.Password == "" {
				t.Fatalf("created: %+v", s)
			}
			if ws, _ := r.Cluster.Workspace(s.ID); ws.Replicas != 0 {
				t.Fatalf("the workspace was applied with %d replicas before its volume was filled", ws.Replicas)
			}
			if got := r.Cluster.RestoredFrom(s.ID, 1); got != b.Location {
				t.Fatalf("restore Job reads %q", got)
			}
			if g := r.get(s.ID); g.Pending != session.PendingRestore || r.Cluster.Replicas(s.ID) != 0 {
				t.Fatalf("while the restore runs: %+v, %d replicas", g, r.Cluster.Replicas(s.ID))
			}
			r.Cluster.FinishRestore(s.ID, 1, session.BackupSucceeded, "")
			g := r.get(s.ID)
			if g.Pending != session.PendingReady || g.RestoredAt.IsZero() || r.Cluster.Replicas(s.ID) != 1 {
				t.Fatalf("after the restore: %+v, %d replicas", g, r.Cluster.Replicas(s.ID))
			}
			if g := r.ready(s.ID); g.State != session.StateRunning {
				t.Fatalf("not running: %+v", g)
			}
			if got := strings.Join(r.Recorder.Types(s.ID), ","); got != "created,restored,ready" {
				t.Fatalf("events %s", got)
			}
		})
	}
}

// A restore created asleep fills its volume and stays asleep.
func TestRestoreAsleep(t *testing.T) {
	r := newRig(t)
	_, b := r.backedUp("ann@example.com", "")
	s := r.create(session.CreateRequest{UserID: "ann@example.com", RestoreFrom: b.ID, State: session.StateSleeping})
	r.Cluster.FinishRestore(s.ID, 1, session.BackupSucceeded, "")
	g := r.get(s.ID)
	if g.State != session.StateSleeping || g.Pending != session.PendingNone || g.RestoredAt.IsZero() || r.Cluster.Replicas(s.ID) != 0 {
		t.Fatalf("after the restore: %+v, %d replicas", g, r.Cluster.Replicas(s.ID))
	}
	if g := must(t)(r.svc.Wake(r.ctx, s.ID)); g.State != session.StateWaking || r.Cluster.Replicas(s.ID) != 1 {
		t.Fatalf("wake: %+v", g)
	}
}

// Every bad restore_from is an invalid argument naming it (or storage), and nothing is written:
// no record, no object, no Job.
func TestRestoreRefusesBadInput(t *testing.T) {
	r := newRig(t)
	_, b := r.backedUp("ann@example.com", "")
	_, other := r.backedUp("bob@example.com", "")
	loc := func(id string) string { return "pvc://backups/" + id[:8] + "/" + id + ".zip" }
	place := func(id string, a session.Archive) string {
		if err := r.Store.PutBackup(r.ctx, &session.BackupRecord{ID: id, SessionID: id[:8], UserID: "ann@example.com",
			Location: loc(id), State: session.BackupAvailable, CreatedAt: sessionEpoch}); err != nil {
			t.Fatal(err)
		}
		r.Cluster.PutArchive(loc(id), a)
		return id
	}
	notZip := place("zz000001-20260301T000000Z", session.Archive{Problem: session.ArchiveNotZip, Detail: "starts with <html>"})
	corrupt := place("zz000002-20260301T000000Z", session.Archive{Problem: session.ArchiveCorrupt, Detail: "bad CRC"})
	missing := place("zz000003-20260301T000000Z", session.Archive{Problem: session.ArchiveMissing})
	huge := place("zz000004-20260301T000000Z", session.Archive{Uncompressed: 6 << 30})
	if err := r.Store.PutBackup(r.ctx, &session.BackupRecord{ID: "zz000005-20260301T000000Z", SessionID: "zz000005", UserID: "ann@example.com",
		Location: loc("zz000005-20260301T000000Z"), State: session.BackupRemoving, CreatedAt: sessionEpoch}); err != nil {
		t.Fatal(err)
	}

	records, calls := r.Store.Len(), len(r.Cluster.Calls())
	for _, c := range []struct {
		name, ref, storage, field, says string
	}{
		{"another user's backup", other.ID, "", "restore_from", "no backup"},
		{"another user's location", other.Location, "", "restore_from", "no backup"},
		{"another user's session", other.SessionID, "", "restore_from", "no backup"},
		{"an unknown backup", "ab12cd34-20260101T000000Z", "", "restore_from", "no backup"},
		{"a location on another volume", strings.Replace(b.Location, "pvc://backups/", "pvc://elsewhere/", 1), "", "restore_from", "no backup"},
		{"a location of no shape", "pvc://backups/x.zip", "", "restore_from", "not a backup location"},
		{"neither", "../../etc/passwd", "", "restore_from", "not a backup location"},
		{"not a zip", notZip, "", "restore_from", "not a zip archive: starts with <html>"},
		{"corrupt", corrupt, "", "restore_from", "is corrupt (it fails its test: bad CRC)"},
		{"gone from the volume", missing, "", "restore_from", "no longer at"},
		{"being removed", "zz000005-20260301T000000Z", "", "restore_from", "being removed"},
		{"a volume too small", huge, "5Gi", "storage", "cannot hold the 6Gi of files"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "ann@example.com", RestoreFrom: c.ref, Storage: c.storage})
			if !errors.Is(err, session.ErrInvalid) || session.FieldOf(err) != c.field || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v (field %q), want an invalid %s saying %q", err, session.FieldOf(err), c.field, c.says)
			}
			if r.Store.Len() != records || len(r.Cluster.Calls()) != calls {
				t.Fatalf("a refused restore wrote something: %d records (was %d), calls %v", r.Store.Len(), records, r.Cluster.Calls()[calls:])
			}
		})
	}
}

// A failed restore leaves the session failed with the reason, its workspace never started;
// it cannot sleep or change, a wake runs the restore again, and a delete takes no backup.
func TestFailedRestore(t *testing.T) {
	r := newRig(t)
	_, b := r.backedUp("ann@example.com", "")
	s := r.create(session.CreateRequest{UserID: "ann@example.com", RestoreFrom: b.ID})
	r.Cluster.FinishRestore(s.ID, 1, session.BackupFailed, "unzip: write error (disk full?)")
	g := r.get(s.ID)
	if g.State != session.StateFailed || g.Pending != session.PendingNone || !strings.Contains(g.Reason, "unzip: write error") ||
		!strings.Contains(g.Reason, b.Location) || r.Cluster.Replicas(s.ID) != 0 {
		t.Fatalf("after a failed restore: %+v, %d replicas", g, r.Cluster.Replicas(s.ID))
	}
	if !slices.Contains(r.Cluster.Archives(), b.Location) {
		t.Fatal("the archive went")
	}
	for name, call := range map[string]func() error{
		"sleep":  func() error { _, err := r.svc.Sleep(r.ctx, s.ID); return err },
		"update": func() error { _, err := r.svc.Update(r.ctx, s.ID, session.UpdateRequest{CPU: ptr("1")}); return err },
	} {
		if err := call(); !errors.Is(err, session.ErrConflict) || !strings.Contains(err.Error(), "restore") {
			t.Fatalf("%s of a failed restore: %v", name, err)
		}
	}
	w := must(t)(r.svc.Wake(r.ctx, s.ID))
	if w.State != session.StateCreating || w.Pending != session.PendingRestore || w.Attempt != 2 || r.Cluster.RestoredFrom(s.ID, 2) != b.Location {
		t.Fatalf("wake of a failed restore: %+v", w)
	}
	r.Cluster.FinishRestore(s.ID, 2, session.BackupFailed, "killed")
	r.get(s.ID)
	calls := len(r.Cluster.Calls())
	del := must(t)(r.svc.Delete(r.ctx, s.ID, session.DeleteOptions{}))
	if del.State != session.StateDeleted && del.Pending != session.PendingRemoval {
		t.Fatalf("delete of a failed restore: %+v", del)
	}
	for _, c := range r.Cluster.Calls()[calls:] {
		if strings.HasPrefix(c, "backup ") {
			t.Fatalf("a volume that was never restored was backed up: %v", r.Cluster.Calls()[calls:])
		}
	}
	if got := strings.Join(r.Recorder.Types(s.ID), ","); !strings.HasPrefix(got, "created,restore_failed,restore_retried,restore_failed,delete_started") {
		t.Fatalf("events %s", got)
	}
}

// A restore that names no size gets its original's volume, never less than the default.
func TestRestoreTakesTheOriginalSize(t *testing.T) {
	r := newRig(t)
	_, big := r.backedUp("ann@example.com", "8Gi")
	_, small := r.backedUp("ann@example.com", "1Gi")
	for _, c := range []struct{ ref, storage, want string }{
		{big.ID, "", "8Gi"}, {big.ID, "10Gi", "10Gi"}, {small.ID, "", session.DefaultStorage},
	} {
		s := r.create(session.CreateRequest{UserID: "ann@example.com", RestoreFrom: c.ref, Storage: c.storage})
		if s.Storage != c.want {
			t.Fatalf("restore of %s with storage %q: %s, want %s", c.ref, c.storage, s.Storage, c.want)
		}
	}
}

func TestDeleteBackup(t *testing.T) {
	r := newRig(t)
	_, b := r.backedUp("ann@example.com", "")
	got, err := r.svc.DeleteBackup(r.ctx, b.ID)
	if err != nil || got.State != session.BackupRemoved {
		t.Fatalf("delete: %+v %v", got, err)
	}
	if slices.Contains(r.Cluster.Archives(), b.Location) || !slices.Equal(r.Cluster.Removed(), []string{b.Location}) {
		t.Fatalf("archives left %v, removed %v", r.Cluster.Archives(), r.Cluster.Removed())
	}
	if _, err := r.svc.DeleteBackup(r.ctx, b.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("a second delete: %v", err)
	}
	if _, err := r.svc.DeleteBackup(r.ctx, "nope"); !errors.Is(err, session.ErrInvalid) || session.FieldOf(err) != "backup_id" {
		t.Fatalf("a malformed id: %v", err)
	}
	if _, err := r.svc.Create(r.ctx, session.CreateRequest{UserID: "ann@example.com", RestoreFrom: b.ID}); session.FieldOf(err) != "restore_from" {
		t.Fatalf("restore of a removed backup: %v", err)
	}
}

// Removal Jobs that take a while are finished by later prunes; one that fails keeps the
// archive, says why, and is tried again with a fresh Job.
func TestRemovalFinishesLaterOrRetries(t *testing.T) {
	r := newRig(t)
	_, b := r.backedUp("ann@example.com", "")
	r.Cluster.SetAutoRemove("")
	got, err := r.svc.DeleteBackup(r.ctx, b.ID)
	if err != nil || got.State != session.BackupRemoving || got.Removal == "" {
		t.Fatalf("delete: %+v %v", got, err)
	}
	p, err := r.svc.PruneBackups(r.ctx, r.Clock.Now(), 100)
	if err != nil || !slices.Equal(p.Removing, []string{b.ID}) || len(p.Removed) != 0 {
		t.Fatalf("prune while the Job runs: %+v %v", p, err)
	}
	r.Cluster.FinishRemoval(got.Removal, session.BackupFailed)
	p, err = r.svc.PruneBackups(r.ctx, r.Clock.Now(), 100)
	if err != nil || len(p.Failed) != 1 || !strings.Contains(p.Failed[0], b.ID) {
		t.Fatalf("prune after the Job failed: %+v %v", p, err)
	}
	if rec, _ := r.Store.GetBackup(r.ctx, b.ID); rec.State != session.BackupAvailable || rec.Reason == "" {
		t.Fatalf("after a failed removal: %+v", rec)
	}
	r.Clock.Add(time.Second)
	r.Cluster.SetAutoRemove(session.BackupSucceeded)
	if got, err := r.svc.DeleteBackup(r.ctx, b.ID); err != nil || got.State != session.BackupRemoved {
		t.Fatalf("delete again: %+v %v", got, err)
	}
}

// The sweep's prune removes the archives older than the retention, and only those.
func TestPruneRemovesExpiredArchives(t *testing.T) {
	r := newRig(t)
	_, old := r.backedUp("ann@example.com", "")
	r.Clock.Add(20 * 24 * time.Hour)
	_, young := r.backedUp("ann@example.com", "")
	r.Clock.Add(11 * 24 * time.Hour) // old is 31 days old, young 11
	p, err := r.svc.PruneBackups(r.ctx, r.Clock.Now(), 100)
	if err != nil || !slices.Equal(p.Removed, []string{old.ID}) {
		t.Fatalf("prune: %+v %v", p, err)
	}
	if l, _ := r.svc.ListBackups(r.ctx, session.BackupListOptions{UserID: "ann@example.com"}); len(l.Backups) != 1 || l.Backups[0].ID != young.ID {
		t.Fatalf("left: %+v", l.Backups)
	}

	keep := newRig(t)
	keep.svc = keep.Service(session.Options{Domain: "ws.test", BackupRetention: -1})
	_, b := keep.backedUp("ann@example.com", "")
	if b.ExpiresAt != (time.Time{}) {
		t.Fatalf("an archive kept forever has an expiry: %+v", b)
	}
	keep.Clock.Add(1000 * 24 * time.Hour)
	if p, err := keep.svc.PruneBackups(keep.ctx, keep.Clock.Now(), 100); err != nil || len(p.Removed)+len(p.Removing) != 0 {
		t.Fatalf("prune with retention off: %+v %v", p, err)
	}
}

func TestListBackupsPages(t *testing.T) {
	r := newRig(t)
	var ids []string
	for range 5 {
		_, b := r.backedUp("ann@example.com", "")
		ids = append([]string{b.ID}, ids...) // newest first
	}
	var got []string
	cursor := ""
	for {
		l, err := r.svc.ListBackups(r.ctx, session.BackupListOptions{UserID: "ann@example.com", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range l.Backups {
			got = append(got, b.ID)
		}
		if cursor = l.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("pages %v, want %v", got, ids)
	}
	for _, bad := range []session.BackupListOptions{{UserID: "tab\there"}, {SessionID: "NOPE"}, {Limit: -1}, {Cursor: "!!"}} {
		if _, err := r.svc.ListBackups(r.ctx, bad); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
}

// A retried create (the same request_id) answers the session the first one made, without
// reading the archive again: it may have changed since, and a read takes a Job.
func TestRetriedRestoreAnswersTheFirstSession(t *testing.T) {
	r := newRig(t)
	_, b := r.backedUp("ann@example.com", "")
	req := session.CreateRequest{UserID: "ann@example.com", RestoreFrom: b.ID, RequestID: "restore-1"}
	first := r.create(req)
	r.Cluster.PutArchive(b.Location, session.Archive{Problem: session.ArchiveCorrupt, Detail: "bad CRC"})
	again := r.create(req)
	if again.ID != first.ID || again.RestoreFrom != b.Location {
		t.Fatalf("the retry made %+v, the first %+v", again, first)
	}
}
