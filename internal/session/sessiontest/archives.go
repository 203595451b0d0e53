package sessiontest

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// archives is the fake cluster's backup volume and its restore and removal Jobs.
type archives struct {
	mu          sync.Mutex
	files       map[string]*session.Archive // location → what CheckArchive finds; absent: missing
	restores    map[string]*session.Backup  // "<id>/<attempt>"
	restoredBy  map[string]string           // "<id>/<attempt>" → the location it restores
	autoRestore session.BackupPhase
	removals    map[string]*session.Backup // by Job name
	removed     []string                   // locations removed, in order
	autoRemove  session.BackupPhase
}

// PutArchive places an archive on the fake backup volume: a healthy one of size bytes
// unpacking to uncompressed bytes, or one with a problem.
func (c *Cluster) PutArchive(location string, a session.Archive) {
	c.arch.mu.Lock()
	defer c.arch.mu.Unlock()
	c.arch.init()
	c.arch.files[location] = &a
}

// Archives lists the locations on the fake backup volume.
func (c *Cluster) Archives() []string {
	c.arch.mu.Lock()
	defer c.arch.mu.Unlock()
	var out []string
	for l := range c.arch.files {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// SetAutoRestore makes restore Jobs end at once in phase ("" leaves them running until
// FinishRestore).
func (c *Cluster) SetAutoRestore(phase session.BackupPhase) {
	c.arch.mu.Lock()
	defer c.arch.mu.Unlock()
	c.arch.autoRestore = phase
}

// FinishRestore ends the restore Job of (id, attempt) in phase, with reason.
func (c *Cluster) FinishRestore(id string, attempt int, phase session.BackupPhase, reason string) {
	c.arch.mu.Lock()
	defer c.arch.mu.Unlock()
	if b := c.arch.restores[backupKey(id, attempt)]; b != nil {
		b.Phase, b.Reason = phase, reason
	}
}

// RestoredFrom reports the location the restore Job of (id, attempt) reads, "" when none ran.
func (c *Cluster) RestoredFrom(id string, attempt int) string {
	c.arch.mu.Lock()
	defer c.arch.mu.Unlock()
	return c.arch.restoredBy[backupKey(id, attempt)]
}

// SetAutoRemove makes removal Jobs end at once in phase ("" leaves them running); by
// default they succeed at once.
func (c *Cluster) SetAutoRemove(phase session.BackupPhase) {
	c.arch.mu.Lock()
	defer c.arch.mu.Unlock()
	c.arch.autoRemove = phase
}

// FinishRemoval ends the removal Job name in phase: on success its archives go.
func (c *Cluster) FinishRemoval(name string, phase session.BackupPhase) {
	c.arch.mu.Lock()
	defer c.arch.mu.Unlock()
	if b := c.arch.removals[name]; b != nil {
		b.Phase = phase
		if phase == session.BackupFailed {
			b.Reason = "rm: permission denied"
		}
		if phase == session.BackupSucceeded {
			for _, l := range strings.Split(b.Location, "\n") {
				delete(c.arch.files, l)
				c.arch.removed = append(c.arch.removed, l)
			}
		}
	}
}

// Removed lists the locations removal Jobs removed, in order.
func (c *Cluster) Removed() []string {
	c.arch.mu.Lock()
	defer c.arch.mu.Unlock()
	return append([]string(nil), c.arch.removed...)
}

func (a *archives) init() {
	if a.files == nil {
		a.files = map[string]*session.Archive{}
		a.restores = map[string]*session.Backup{}
		a.restoredBy = map[string]string{}
		a.removals = map[string]*session.Backup{}
		a.autoRemove = session.BackupSucceeded
	}
}

// StartRestore starts (or finds) the restore Job of (id, attempt); NotFound without a volume.
func (c *Cluster) StartRestore(ctx context.Context, id string, attempt int, location string) (*session.Backup, error) {
	if err := c.call(ctx, "StartRestore"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	w := c.ws[id]
	hasPVC := w != nil && w.kinds[session.ObjectPVC]
	if hasPVC {
		c.calls = append(c.calls, fmt.Sprintf("restore %s %d %s", id, attempt, location))
	}
	c.mu.Unlock()
	c.arch.mu.Lock()
	defer c.arch.mu.Unlock()
	c.arch.init()
	k := backupKey(id, attempt)
	if b := c.arch.restores[k]; b != nil {
		cp := *b
		return &cp, nil
	}
	if !hasPVC {
		return nil, session.NotFound(id)
	}
	b := &session.Backup{Phase: session.BackupRunning}
	if c.arch.autoRestore != "" {
		b.Phase = c.arch.autoRestore
	}
	if a := c.arch.files[location]; a == nil || a.Problem != session.ArchiveOK {
		b.Phase, b.Reason = session.BackupFailed, "unzip: cannot read "+location
	} else if b.Phase == session.BackupFailed {
		b.Reason = "unzip: write error (disk full?)"
	}
	c.arch.restores[k] = b
	c.arch.restoredBy[k] = location
	cp := *b
	return &cp, nil
}

// RestoreStatus reports the restore Job of (id, attempt); missing when it was never started.
func (c *Cluster) RestoreStatus(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	if err := c.call(ctx, "RestoreStatus"); err != nil {
		return nil, err
	}
	c.arch.mu.Lock()
	defer c.arch.mu.Unlock()
	if b := c.arch.restores[backupKey(id, attempt)]; b != nil {
		cp := *b
		return &cp, nil
	}
	return &session.Backup{Phase: session.BackupMissing}, nil
}

// CheckArchive reports the archive placed at location (PutArchive), missing when none was.
func (c *Cluster) CheckArchive(ctx context.Context, location string) (*session.Archive, error) {
	if err := c.call(ctx, "CheckArchive"); err != nil {
		return nil, err
	}
	c.arch.mu.Lock()
	defer c.arch.mu.Unlock()
	if a := c.arch.files[location]; a != nil {
		cp := *a
		return &cp, nil
	}
	return &session.Archive{Problem: session.ArchiveMissing, Detail: "no such file"}, nil
}

// RemoveArchives starts (or finds) the removal Job name; it ends as SetAutoRemove says.
func (c *Cluster) RemoveArchives(ctx context.Context, name string, locations []string) (*session.Backup, error) {
	if err := c.call(ctx, "RemoveArchives"); err != nil {
		return nil, err
	}
	c.arch.mu.Lock()
	c.arch.init()
	b := c.arch.removals[name]
	if b == nil {
		// the fake keeps the Job's archives in Location, one per line
		b = &session.Backup{Phase: session.BackupRunning, Location: strings.Join(locations, "\n")}
		c.arch.removals[name] = b
		phase := c.arch.autoRemove
		c.arch.mu.Unlock()
		if phase != "" {
			c.FinishRemoval(name, phase)
		}
		c.arch.mu.Lock()
	}
	cp := *b
	cp.Location = ""
	c.arch.mu.Unlock()
	return &cp, nil
}

// backupRecords is the fake store's backup catalog.
type backupRecords struct {
	recs map[string]*session.BackupRecord
}

func (b *backupRecords) init() {
	if b.recs == nil {
		b.recs = map[string]*session.BackupRecord{}
	}
}

// PutBackup writes the record.
func (s *Store) PutBackup(ctx context.Context, b *session.BackupRecord) error {
	if err := s.call(ctx, "PutBackup"); err != nil {
		return err
	}
	if err := session.CheckBackupID(b.ID); err != nil {
		return fmt.Errorf("fake store: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backups.init()
	s.backups.recs[b.ID] = b.Clone()
	return nil
}

// GetBackup reads the record.
func (s *Store) GetBackup(ctx context.Context, id string) (*session.BackupRecord, error) {
	if err := s.call(ctx, "GetBackup"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.backups.recs[id]; b != nil {
		return b.Clone(), nil
	}
	return nil, session.BackupNotFound(id)
}

// ListBackups pages the records newest first (by time, then id), by user or session.
func (s *Store) ListBackups(ctx context.Context, opts session.BackupListOptions) (*session.BackupList, error) {
	if err := s.call(ctx, "ListBackups"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []*session.BackupRecord
	for _, b := range s.backups.recs {
		if (opts.UserID == "" || b.UserID == opts.UserID) && (opts.SessionID == "" || b.SessionID == opts.SessionID) {
			all = append(all, b)
		}
	}
	key := func(b *session.BackupRecord) string { return b.CreatedAt.UTC().Format(time.RFC3339) + "/" + b.ID }
	sort.Slice(all, func(i, j int) bool { return key(all[i]) > key(all[j]) })
	after := ""
	if opts.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(opts.Cursor)
		if err != nil {
			return nil, session.Invalid("cursor", "cursor is not one this API returned")
		}
		after = string(raw)
	}
	limit := opts.Limit
	if limit == 0 {
		limit = 100
	}
	out := &session.BackupList{Backups: []*session.BackupRecord{}}
	for _, b := range all {
		if after != "" && key(b) >= after {
			continue
		}
		if len(out.Backups) == limit {
			out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(key(out.Backups[limit-1])))
			break
		}
		out.Backups = append(out.Backups, b.Clone())
	}
	return out, nil
}

// RemoveBackup deletes the record.
func (s *Store) RemoveBackup(ctx context.Context, id string) error {
	if err := s.call(ctx, "RemoveBackup"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.backups.recs, id)
	return nil
}

// ExpiredBackups returns available records whose expiry is at or before now, oldest first.
func (s *Store) ExpiredBackups(ctx context.Context, now time.Time, limit int) ([]*session.BackupRecord, error) {
	return s.backupsWhere(ctx, "ExpiredBackups", limit, func(b *session.BackupRecord) bool {
		return b.State == session.BackupAvailable && !b.ExpiresAt.IsZero() && !b.ExpiresAt.After(now)
	})
}

// RemovingBackups returns records being removed.
func (s *Store) RemovingBackups(ctx context.Context, limit int) ([]*session.BackupRecord, error) {
	return s.backupsWhere(ctx, "RemovingBackups", limit, func(b *session.BackupRecord) bool {
		return b.State == session.BackupRemoving
	})
}

func (s *Store) backupsWhere(ctx context.Context, method string, limit int, keep func(*session.BackupRecord) bool) ([]*session.BackupRecord, error) {
	if err := s.call(ctx, method); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []*session.BackupRecord{}
	for _, b := range s.backups.recs {
		if keep(b) {
			out = append(out, b.Clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
