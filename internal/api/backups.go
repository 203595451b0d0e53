package api

import (
	"net/http"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// The backup catalog's routes: every archive a delete made, listed and removed by id. A
// restore is a create with restore_from (createInput); its checks are the core's.

// listBackups serves GET /backups?user_id=&session_id=&limit=&cursor=: 200 with a page of
// archives, newest first ("backups" is [] when there are none).
func (s *Server) listBackups(w http.ResponseWriter, r *http.Request) error {
	opts, err := backupsInput(r)
	if err != nil {
		return err
	}
	p := PrincipalOf(r.Context())
	out := session.BackupList{Backups: []*session.BackupRecord{}}
	if scopeList(p, &opts.UserID) {
		res, err := s.m.ListBackups(r.Context(), opts)
		if err != nil {
			return err
		}
		out.NextCursor = res.NextCursor
		for _, b := range res.Backups {
			if p.Allows(b.UserID) {
				out.Backups = append(out.Backups, b)
			}
		}
	}
	wire.WriteJSON(w, http.StatusOK, out)
	return nil
}

// deleteBackup serves DELETE /backups/{backup_id}: 200 with the record once its file is gone
// (status removed), 202 while its removal Job runs (status removing; call again, or let the
// sweep finish it); 404 for an archive the catalog does not hold.
func (s *Server) deleteBackup(w http.ResponseWriter, r *http.Request) error {
	id, err := s.backupInput(w, r)
	if err != nil {
		return err
	}
	if err := s.ownBackup(r.Context(), id); err != nil {
		return err
	}
	rec, err := s.m.DeleteBackup(r.Context(), id)
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if rec.State == session.BackupRemoved {
		status = http.StatusOK
	}
	wire.WriteJSON(w, status, rec)
	return nil
}

// backupsInput reads GET /backups' query; the core checks the values (session_id's form, the
// cursor).
func backupsInput(r *http.Request) (session.BackupListOptions, error) {
	q, err := query(r, "user_id", "session_id", "limit", "cursor")
	if err != nil {
		return session.BackupListOptions{}, err
	}
	opts := session.BackupListOptions{UserID: q["user_id"], SessionID: q["session_id"], Cursor: q["cursor"]}
	opts.Limit, err = queryLimit(q)
	return opts, err
}

// backupInput reads DELETE /backups/{backup_id}: a well-formed id (a malformed one names no
// archive, so it never reaches the Manager), no query, no body (or {}).
func (s *Server) backupInput(w http.ResponseWriter, r *http.Request) (string, error) {
	id := r.PathValue("backup_id")
	if err := session.CheckBackupID(id); err != nil {
		return "", err
	}
	if _, err := query(r); err != nil {
		return "", err
	}
	return id, s.noBody(w, r)
}
