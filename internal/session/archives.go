package session

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// This file is the backup catalog and restores: every archive a delete made is recorded
// (catalog), listed and removed on request or after the retention (ListBackups, DeleteBackup,
// PruneBackups), and a create with restore_from fills the new volume from one (restoreSource,
// stepRestore).

// restoreSource resolves a create's restore_from to an archive of the caller's, reads the
// archive through (Cluster.CheckArchive) and sets sess to be filled from it. Every problem
// is a KindInvalid error naming restore_from (or storage, when the volume asked for cannot
// hold the archive's files), and nothing is written.
func (s *Service) restoreSource(ctx context.Context, req CreateRequest, sess *Session) error {
	rec, err := s.findBackup(ctx, req.UserID, strings.TrimSpace(req.RestoreFrom))
	if err != nil {
		return err
	}
	a, err := s.cluster.CheckArchive(ctx, rec.Location)
	if err != nil {
		return fmt.Errorf("reading the archive %s: %w", rec.Location, err)
	}
	switch a.Problem {
	case ArchiveOK:
	case ArchiveMissing:
		return Invalid("restore_from", "backup %s is no longer at %s", rec.ID, rec.Location)
	case ArchiveNotZip:
		return Invalid("restore_from", "backup %s (%s) is not a zip archive: %s", rec.ID, rec.Location, a.Detail)
	case ArchiveCorrupt:
		return Invalid("restore_from", "backup %s (%s) is corrupt (it fails its test: %s); restore another backup", rec.ID, rec.Location, a.Detail)
	default:
		return fmt.Errorf("reading the archive %s: unknown problem %q", rec.Location, a.Problem)
	}
	size, err := ParseQuantity("storage", sess.Storage)
	if err != nil {
		return err
	}
	if strings.TrimSpace(req.Storage) == "" && rec.Storage != "" {
		// a restore that names no size gets at least its original volume's
		if was, err := resource.ParseQuantity(rec.Storage); err == nil && was.Cmp(size) > 0 {
			sess.Storage, size = rec.Storage, was
		}
	}
	if a.Uncompressed > size.Value() {
		return Invalid("storage", "storage %s cannot hold the %s of files in backup %s: ask for more",
			sess.Storage, resource.NewQuantity(a.Uncompressed, resource.BinarySI), rec.ID)
	}
	sess.RestoreFrom = rec.Location
	sess.Attempt = 1
	return nil
}

// findBackup resolves ref (a backup location, a backup id or a session id: its latest
// archive) to an available archive of userID's. An archive of another user's is answered as
// one that does not exist.
func (s *Service) findBackup(ctx context.Context, userID, ref string) (*BackupRecord, error) {
	notFound := Invalid("restore_from", "no backup %q of user %q", ref, userID)
	var rec *BackupRecord
	var err error
	switch {
	case strings.HasPrefix(ref, "pvc://"):
		id := BackupIDOf(ref)
		if id == "" {
			return nil, Invalid("restore_from", "%q is not a backup location (pvc://<volume>/<session id>/<backup id>.zip)", ref)
		}
		if rec, err = s.store.GetBackup(ctx, id); err == nil && rec.Location != ref {
			return nil, notFound
		}
	case CheckBackupID(ref) == nil:
		rec, err = s.store.GetBackup(ctx, ref)
	case ValidID(ref):
		var l *BackupList
		if l, err = s.store.ListBackups(ctx, BackupListOptions{SessionID: ref, Limit: 20}); err != nil {
			return nil, err
		}
		for _, b := range l.Backups {
			if b.UserID == userID && b.State == BackupAvailable {
				return b, nil
			}
		}
		return nil, notFound
	default:
		return nil, Invalid("restore_from", "restore_from %q is not a backup location, a backup id or a session id", ref)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, notFound
	case err != nil:
		return nil, err
	case rec.UserID != userID:
		return nil, notFound
	case rec.State != BackupAvailable:
		return nil, Invalid("restore_from", "backup %s is being removed", rec.ID)
	}
	return rec, nil
}

// stepRestore follows a restoring session's restore Job: it starts it, and on success lets
// the workspace start (or stay asleep); on failure the session is failed with the Job's
// reason, its volume emptied by the Job and the archive untouched.
func (s *Service) stepRestore(ctx context.Context, sess *Session) error {
	b, err := s.cluster.RestoreStatus(ctx, sess.ID, sess.Attempt)
	if err != nil {
		return fmt.Errorf("restore status of session %s: %w", sess.ID, err)
	}
	switch b.Phase {
	case BackupRunning:
		return nil
	case BackupMissing: // not started yet, or removed after it finished unseen: run it (again)
		_, err := s.cluster.StartRestore(ctx, sess.ID, sess.Attempt, sess.RestoreFrom)
		if errors.Is(err, ErrNotFound) { // no volume (lost): apply the workspace again first
			s.await(sess, PendingApply)
			return s.put(ctx, sess)
		}
		if err != nil {
			return fmt.Errorf("starting the restore of session %s: %w", sess.ID, err)
		}
		return nil
	case BackupFailed:
		from := sess.State
		sess.State = StateFailed
		sess.Reason = fmt.Sprintf("restoring from %s failed (the archive is untouched and the volume was emptied; "+
			"wake the session to try again, or delete it): %s", sess.RestoreFrom, b.Reason)
		s.await(sess, PendingNone)
		if err := s.put(ctx, sess); err != nil {
			return err
		}
		s.record(ctx, sess, "restore_failed", from, b.Reason)
		s.log.Error("restore failed", "id", sess.ID, "from", sess.RestoreFrom, "attempt", sess.Attempt, "reason", b.Reason)
		return nil
	case BackupSucceeded:
		sess.RestoredAt = s.opts.Now().UTC()
		// awake, the ready step scales the workspace up: it finds it at zero replicas
		s.await(sess, s.afterApply(sess))
		if err := s.put(ctx, sess); err != nil {
			return err
		}
		s.record(ctx, sess, "restored", sess.State, sess.RestoreFrom)
		return nil
	}
	return fmt.Errorf("session %s: unknown restore phase %q", sess.ID, b.Phase)
}

// retryRestore runs a failed restore again, with a fresh Job (a wake of the session asks for it).
// The session will start once restored, so the running counts are checked with the write, as
// a wake's are.
func (s *Service) retryRestore(ctx context.Context, sess *Session) error {
	from := sess.State
	sess.Attempt++
	sess.State, sess.Reason = StateCreating, ""
	s.await(sess, PendingRestore)
	if err := s.withQuota(ctx, sess.UserID, false, true, func() error { return s.put(ctx, sess) }); err != nil {
		return err
	}
	s.record(ctx, sess, "restore_retried", from, sess.RestoreFrom)
	return s.advance(ctx, sess)
}

// restoringConflict refuses what a session whose volume is not restored yet cannot do.
func restoringConflict(sess *Session, what string) error {
	if sess.State == StateFailed {
		return Conflict("session %s: its restore from %s failed (%s); wake it to try again, or delete it",
			sess.ID, sess.RestoreFrom, sess.Reason)
	}
	return Conflict("session %s is being restored from %s: it cannot %s until it runs", sess.ID, sess.RestoreFrom, what)
}

// catalog records the archive a delete's backup wrote.
func (s *Service) catalog(ctx context.Context, sess *Session, b *Backup) error {
	return s.Catalog(ctx, sess.ID, sess.UserID, sess.Storage, b)
}

// Catalog records an archive that a backup of session id (userID's, its volume storage in
// size) wrote, before its volume goes: an archive nobody can find is lost too. Reconcile
// calls it for the orphaned volumes it backs up. An archive whose location the catalog
// cannot name is logged and left out.
func (s *Service) Catalog(ctx context.Context, id, userID, storage string, b *Backup) error {
	bid := BackupIDOf(b.Location)
	created, ok := BackupTime(bid)
	if bid == "" || !ok {
		s.log.Error("a backup's location is not one the catalog can name; the archive is not listed",
			"id", id, "location", b.Location)
		return nil
	}
	rec := &BackupRecord{
		ID: bid, SessionID: id, UserID: userID, Location: b.Location, Bytes: b.Bytes,
		Storage: storage, CreatedAt: created, State: BackupAvailable,
	}
	if s.opts.BackupRetention > 0 {
		rec.ExpiresAt = created.Add(s.opts.BackupRetention)
	}
	if err := s.store.PutBackup(ctx, rec); err != nil {
		return fmt.Errorf("recording backup %s of session %s: %w", bid, id, err)
	}
	return nil
}

// ListBackups pages the backup catalog, newest first.
func (s *Service) ListBackups(ctx context.Context, opts BackupListOptions) (*BackupList, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	return s.store.ListBackups(ctx, opts)
}

// DeleteBackup removes archive id: its record says removing while the removal Job runs (a
// later call or the sweep finishes it), and the answer is removed once the file is gone.
func (s *Service) DeleteBackup(ctx context.Context, id string) (*BackupRecord, error) {
	if err := CheckBackupID(id); err != nil {
		return nil, err
	}
	rec, err := s.store.GetBackup(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := s.removeBackups(ctx, []*BackupRecord{rec})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// BackupPrune is what one prune of the catalog did.
type BackupPrune struct {
	// Removed are the archives whose files are gone (their records too).
	Removed []string `json:"removed"`
	// Removing are the archives whose removal runs; a later prune finishes them.
	Removing []string `json:"removing"`
	// Failed says why removals failed (they are tried again next time).
	Failed []string `json:"failed,omitempty"`
}

// PruneBackups removes up to limit archives older than the retention and finishes removals
// that are under way (the sweep calls it on every run). With retention off it only finishes
// removals asked for.
func (s *Service) PruneBackups(ctx context.Context, now time.Time, limit int) (*BackupPrune, error) {
	report := &BackupPrune{Removed: []string{}, Removing: []string{}}
	removing, err := s.store.RemovingBackups(ctx, limit)
	if err != nil {
		return nil, err
	}
	expired := []*BackupRecord{}
	if s.opts.BackupRetention > 0 {
		if expired, err = s.store.ExpiredBackups(ctx, now, limit); err != nil {
			return nil, err
		}
	}
	for _, batch := range [][]*BackupRecord{removing, expired} {
		if len(batch) == 0 {
			continue
		}
		out, err := s.removeBackups(ctx, batch)
		if err != nil {
			return report, err
		}
		for _, b := range out {
			switch {
			case b.State == BackupRemoved:
				report.Removed = append(report.Removed, b.ID)
			case b.State == BackupRemoving:
				report.Removing = append(report.Removing, b.ID)
			case b.Reason != "":
				report.Failed = append(report.Failed, b.ID+": "+b.Reason)
			}
		}
	}
	return report, nil
}

// removeBackups removes the archives of recs: the available ones are marked removing under a
// fresh removal Job, each Job is started (or found), and the records of archives whose Job
// succeeded go. It answers each record as it is after that (removed: gone).
func (s *Service) removeBackups(ctx context.Context, recs []*BackupRecord) ([]*BackupRecord, error) {
	fresh := []string{}
	for _, r := range recs {
		if r.State != BackupRemoving || r.Removal == "" {
			fresh = append(fresh, r.ID)
		}
	}
	name := removalName(fresh, s.opts.Now())
	groups := map[string][]*BackupRecord{}
	var order []string
	for _, r := range recs {
		if r.State != BackupRemoving || r.Removal == "" {
			r.State, r.Removal, r.Reason = BackupRemoving, name, ""
			if err := s.store.PutBackup(ctx, r); err != nil {
				return nil, err
			}
		}
		if _, ok := groups[r.Removal]; !ok {
			order = append(order, r.Removal)
		}
		groups[r.Removal] = append(groups[r.Removal], r)
	}
	for _, job := range order {
		group := groups[job]
		locations := make([]string, len(group))
		for i, r := range group {
			locations[i] = r.Location
		}
		b, err := s.cluster.RemoveArchives(ctx, job, locations)
		if err != nil {
			return nil, fmt.Errorf("removing archives (%s): %w", job, err)
		}
		for _, r := range group {
			switch b.Phase {
			case BackupSucceeded:
				if err := s.store.RemoveBackup(ctx, r.ID); err != nil {
					return nil, err
				}
				r.State, r.Removal = BackupRemoved, ""
				s.log.Info("backup removed", "backup", r.ID, "location", r.Location, "user_id", r.UserID)
			case BackupFailed:
				r.State, r.Removal, r.Reason = BackupAvailable, "", cmp.Or(b.Reason, "the removal Job failed")
				if err := s.store.PutBackup(ctx, r); err != nil {
					return nil, err
				}
				s.log.Error("removing a backup failed; it is kept", "backup", r.ID, "reason", b.Reason)
			}
		}
	}
	return recs, nil
}

// removalName names the Job removing the archives ids, marked at now: a fresh name for every
// marking, so a removal that failed is tried again by a new Job.
func removalName(ids []string, now time.Time) string {
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id + "\n"))
	}
	h.Write([]byte(strconv.FormatInt(now.UnixNano(), 10)))
	return "hyperbola-rm-" + hex.EncodeToString(h.Sum(nil))[:12]
}
