package session

import (
	"strings"
	"time"
)

// DefaultBackupRetention is how long an archive is kept when the deployment sets nothing
// (HYPERBOLA_BACKUP_RETENTION); 0 keeps archives forever.
const DefaultBackupRetention = 30 * 24 * time.Hour

// BackupRecord is one archive in the backup catalog: every backup a delete made, until it is
// removed (DELETE /backups/{id}, or the sweep once it is older than the retention).
type BackupRecord struct {
	// ID names the archive: its file name without ".zip", "<session id>-<UTC time>", e.g.
	// "ab12cd34-20261126T020304Z".
	ID        string `json:"id"`
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id"`
	// Location is where the archive is, e.g.
	// "pvc://hyperbola-backups/ab12cd34/ab12cd34-20261126T020304Z.zip".
	Location string `json:"location"`
	// Bytes is the archive's size.
	Bytes int64 `json:"size_bytes"`
	// Storage is the volume size of the session it was taken from: a restore that asks for
	// none gets at least this much.
	Storage   string    `json:"storage,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the sweep removes it (CreatedAt + the retention); zero keeps it.
	ExpiresAt time.Time   `json:"expires_at,omitzero"`
	State     BackupState `json:"status"`
	// Removal names the Job removing the archive while State is removing.
	Removal string `json:"removal,omitempty"`
	// Reason says why its last removal failed.
	Reason string `json:"reason,omitempty"`
}

// BackupState is where an archive is in its life.
type BackupState string

// The backup states.
const (
	BackupAvailable BackupState = "available" // restorable
	BackupRemoving  BackupState = "removing"  // its removal Job runs; the record goes when it has
	BackupRemoved   BackupState = "removed"   // gone (only ever an answer: the record is gone too)
)

// Clone returns a copy.
func (b *BackupRecord) Clone() *BackupRecord {
	c := *b
	return &c
}

// BackupListOptions filters and pages the backup catalog.
type BackupListOptions struct {
	UserID    string `json:"user_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	Limit     int    `json:"limit,omitempty"`
	Cursor    string `json:"cursor,omitempty"`
}

// BackupList is one page of archives, newest first; NextCursor is "" on the last page.
type BackupList struct {
	Backups    []*BackupRecord `json:"backups"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

// Check validates a listing of backups: a well-formed user and session id when given, a limit
// and a cursor as ListOptions takes them.
func (o BackupListOptions) Check() error {
	if o.SessionID != "" {
		if err := CheckID(o.SessionID); err != nil {
			return Invalid("session_id", "session_id %q is not a session id", o.SessionID)
		}
	}
	return ListOptions{UserID: o.UserID, Limit: o.Limit, Cursor: o.Cursor}.Check()
}

// ArchiveProblem is what is wrong with an archive a restore was asked to read.
type ArchiveProblem string

// The archive problems.
const (
	ArchiveOK      ArchiveProblem = ""
	ArchiveMissing ArchiveProblem = "missing" // no file at the location
	ArchiveNotZip  ArchiveProblem = "not_zip" // the file is not a zip archive
	ArchiveCorrupt ArchiveProblem = "corrupt" // a zip that fails its test (a CRC, a truncated entry)
)

// Archive is what reading an archive through (Cluster.CheckArchive) found.
type Archive struct {
	Problem ArchiveProblem
	// Detail is what the reader said about a problem.
	Detail string
	// Bytes is the archive's size; Files its entries; Uncompressed the bytes its files take.
	Bytes        int64
	Files        int64
	Uncompressed int64
}

// BackupIDOf returns the catalog id of the archive at location (its file name without
// ".zip"), or "" when location is not a backup location.
func BackupIDOf(location string) string {
	rest, ok := strings.CutPrefix(location, "pvc://")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" {
		return ""
	}
	id, ok := strings.CutSuffix(parts[2], ".zip")
	if !ok || CheckBackupID(id) != nil || !strings.HasPrefix(id, parts[1]+"-") {
		return ""
	}
	return id
}

// CheckBackupID validates a backup id: "<session id>-<UTC time to the second>", e.g.
// "ab12cd34-20261126T020304Z".
func CheckBackupID(id string) error {
	sid, ts, ok := strings.Cut(id, "-")
	if !ok || !ValidID(sid) {
		return Invalid("backup_id", "%q is not a backup id such as \"ab12cd34-20261126T020304Z\"", id)
	}
	if _, err := time.Parse(backupTimeLayout, ts); err != nil {
		return Invalid("backup_id", "%q is not a backup id such as \"ab12cd34-20261126T020304Z\"", id)
	}
	return nil
}

// backupTimeLayout is the time in an archive's name (UTC, to the second).
const backupTimeLayout = "20060102T150405Z"

// BackupTime returns when the archive id was taken (from its name).
func BackupTime(id string) (time.Time, bool) {
	_, ts, ok := strings.Cut(id, "-")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(backupTimeLayout, ts)
	return t, err == nil
}

// restoring reports whether the session waits for its volume to be filled from an archive
// (or its restore failed): its workspace must not start until the restore succeeded.
func (s *Session) restoring() bool { return s.RestoreFrom != "" && s.RestoredAt.IsZero() }
