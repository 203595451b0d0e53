package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api/apispec"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// backupOf is an available archive of session sid, owned by user, taken at.
func backupOf(sid, user string, at time.Time) *session.BackupRecord {
	id := sid + "-" + at.UTC().Format("20060102T150405Z")
	return &session.BackupRecord{
		ID: id, SessionID: sid, UserID: user, Location: "pvc://hyperbola-backups/" + sid + "/" + id + ".zip",
		Bytes: 4096, Storage: "5Gi", CreatedAt: at.UTC(), ExpiresAt: at.UTC().Add(session.DefaultBackupRetention),
		State: session.BackupAvailable,
	}
}

// seedBackups puts recs in the fake catalog, each with its archive on the fake backup volume.
func (ts *testServer) seedBackups(t *testing.T, recs ...*session.BackupRecord) {
	t.Helper()
	for _, b := range recs {
		if err := ts.fakes.Store.PutBackup(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		ts.fakes.Cluster.PutArchive(b.Location, session.Archive{Bytes: b.Bytes, Files: 3, Uncompressed: 1 << 20})
	}
}

// catalog is the whole fake catalog, and the fake backup volume, as text.
func (ts *testServer) catalog(t *testing.T) string {
	t.Helper()
	l, err := ts.fakes.Store.ListBackups(context.Background(), session.BackupListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(l)
	return fmt.Sprintf("catalog %s, archives %q, removed %q", b, ts.fakes.Cluster.Archives(), ts.fakes.Cluster.Removed())
}

func decodeBackups(t *testing.T, body []byte) session.BackupList {
	t.Helper()
	var l session.BackupList
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("not a backup list: %v: %s", err, body)
	}
	return l
}

func TestListBackups(t *testing.T) {
	ts := newTestServer(t, Options{})
	at := sessiontest.Epoch.Add(-48 * time.Hour)
	ts.seedBackups(t,
		backupOf("cd34ef56", "user@example.com", at),
		backupOf("cd34ef56", "user@example.com", at.Add(time.Hour)),
		backupOf("ef56ab12", "user@example.com", at.Add(2*time.Hour)),
		backupOf("gh78ij90", "other@example.com", at.Add(3*time.Hour)))

	// A user's archives, newest first, two to a page.
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		target := "/backups?user_id=user%40example.com&limit=2"
		if cursor != "" {
			target += "&cursor=" + cursor
		}
		w := ts.do(t, req{method: "GET", target: target})
		if w.Code != http.StatusOK {
			t.Fatalf("page %d: %d %s", page, w.Code, w.Body.String())
		}
		l := decodeBackups(t, w.Body.Bytes())
		for _, b := range l.Backups {
			if b.UserID != "user@example.com" {
				t.Fatalf("another user's archive listed: %+v", b)
			}
			got = append(got, b.ID)
		}
		if cursor = l.NextCursor; cursor == "" {
			break
		}
		if page > 3 {
			t.Fatal("the pages never end")
		}
	}
	want := []string{"ef56ab12-20260227T140000Z", "cd34ef56-20260227T130000Z", "cd34ef56-20260227T120000Z"}
	if !slices.Equal(got, want) {
		t.Fatalf("pages gave %q, want %q", got, want)
	}

	// One session's archives; everyone's; none.
	w := ts.do(t, req{method: "GET", target: "/backups?session_id=cd34ef56"})
	if l := decodeBackups(t, w.Body.Bytes()); w.Code != 200 || len(l.Backups) != 2 || l.NextCursor != "" {
		t.Fatalf("by session: %d %s", w.Code, w.Body.String())
	}
	w = ts.do(t, req{method: "GET", target: "/backups"})
	if l := decodeBackups(t, w.Body.Bytes()); w.Code != 200 || len(l.Backups) != 4 {
		t.Fatalf("all: %d %s", w.Code, w.Body.String())
	}
	w = ts.do(t, req{method: "GET", target: "/backups?user_id=nobody"})
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"backups":[]`) {
		t.Fatalf("none: %d %s", w.Code, w.Body.String())
	}
	// The record's members as the API documents them.
	w = ts.do(t, req{method: "GET", target: "/backups?user_id=other%40example.com"})
	for _, member := range []string{`"id":"gh78ij90-20260227T150000Z"`, `"session_id":"gh78ij90"`, `"user_id":"other@example.com"`,
		`"location":"pvc://hyperbola-backups/gh78ij90/gh78ij90-20260227T150000Z.zip"`, `"size_bytes":4096`,
		`"created_at":"2026-02-27T15:00:00Z"`, `"expires_at":"2026-03-29T15:00:00Z"`, `"status":"available"`} {
		if !strings.Contains(w.Body.String(), member) {
			t.Errorf("the record lacks %s: %s", member, w.Body.String())
		}
	}
}

func TestDeleteBackup(t *testing.T) {
	ts := newTestServer(t, Options{})
	at := sessiontest.Epoch.Add(-48 * time.Hour)
	gone, slow := backupOf("cd34ef56", "user@example.com", at), backupOf("ef56ab12", "user@example.com", at)
	ts.seedBackups(t, gone, slow)

	// Removed at once: 200, the record as it was with status removed; the file and the record gone.
	w := ts.do(t, req{method: "DELETE", target: "/backups/" + gone.ID})
	var rec session.BackupRecord
	if err := json.Unmarshal(w.Body.Bytes(), &rec); err != nil || w.Code != http.StatusOK || rec.ID != gone.ID ||
		rec.State != session.BackupRemoved || rec.Location != gone.Location {
		t.Fatalf("%d %s (%v)", w.Code, w.Body.String(), err)
	}
	if !slices.Contains(ts.fakes.Cluster.Removed(), gone.Location) {
		t.Fatalf("the archive was not removed: %q", ts.fakes.Cluster.Removed())
	}
	if _, err := ts.fakes.Store.GetBackup(context.Background(), gone.ID); session.KindOf(err) != session.KindNotFound {
		t.Fatalf("the record is still there: %v", err)
	}
	// Again: the catalog no longer knows it.
	w = ts.do(t, req{method: "DELETE", target: "/backups/" + gone.ID})
	if e := errorOf(t, w); w.Code != http.StatusNotFound || e.Error.Code != "not_found" || !strings.Contains(e.Error.Message, gone.ID) {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}

	// A removal Job that runs on: 202 removing, then 200 once it is done.
	ts.fakes.Cluster.SetAutoRemove("")
	w = ts.do(t, req{method: "DELETE", target: "/backups/" + slow.ID})
	if err := json.Unmarshal(w.Body.Bytes(), &rec); err != nil || w.Code != http.StatusAccepted || rec.State != session.BackupRemoving || rec.Removal == "" {
		t.Fatalf("%d %s (%v)", w.Code, w.Body.String(), err)
	}
	ts.fakes.Cluster.FinishRemoval(rec.Removal, session.BackupSucceeded)
	w = ts.do(t, req{method: "DELETE", target: "/backups/" + slow.ID, body: `{}`})
	if err := json.Unmarshal(w.Body.Bytes(), &rec); err != nil || w.Code != http.StatusOK || rec.State != session.BackupRemoved {
		t.Fatalf("%d %s (%v)", w.Code, w.Body.String(), err)
	}
	if l := ts.do(t, req{method: "GET", target: "/backups"}); !strings.Contains(l.Body.String(), `"backups":[]`) {
		t.Fatalf("the catalog still lists: %s", l.Body.String())
	}
}

// TestBackupBadInput: malformed ids and queries are 400 naming the parameter, unknown ids 404,
// and none of them changes the catalog or the backup volume.
func TestBackupBadInput(t *testing.T) {
	ts := newTestServer(t, Options{})
	b := backupOf("cd34ef56", "user@example.com", sessiontest.Epoch.Add(-time.Hour))
	ts.seedBackups(t, b)
	cases := []struct {
		name   string
		q      req
		status int
		code   string
		field  string
	}{
		{"unknown id", req{method: "DELETE", target: "/backups/ab12cd34-20250101T000000Z"}, 404, "not_found", ""},
		{"id without time", req{method: "DELETE", target: "/backups/ab12cd34"}, 400, "invalid_argument", "backup_id"},
		{"id with a bad time", req{method: "DELETE", target: "/backups/ab12cd34-2026"}, 400, "invalid_argument", "backup_id"},
		{"id a location", req{method: "DELETE", target: "/backups/" + strings.ReplaceAll(b.Location, "/", "%2F")}, 400, "invalid_argument", "backup_id"},
		{"id upper case", req{method: "DELETE", target: "/backups/AB12CD34-20261126T020304Z"}, 400, "invalid_argument", "backup_id"},
		{"id ../x escaped", req{method: "DELETE", target: "/backups/..%2Fx"}, 400, "invalid_argument", "backup_id"},
		{"id ../x", req{method: "DELETE", target: "/backups/../x"}, 400, "invalid_argument", "backup_id"},
		{"id with .zip", req{method: "DELETE", target: "/backups/" + b.ID + ".zip"}, 400, "invalid_argument", "backup_id"},
		{"query on delete", req{method: "DELETE", target: "/backups/" + b.ID + "?force=true"}, 400, "invalid_argument", "force"},
		{"body on delete", req{method: "DELETE", target: "/backups/" + b.ID, body: `{"force":true}`}, 400, "invalid_argument", "force"},
		{"without a key", req{method: "DELETE", target: "/backups/" + b.ID, noKey: true}, 401, "unauthenticated", ""},
		{"wrong method", req{method: "POST", target: "/backups/" + b.ID, body: `{}`}, 405, "method_not_allowed", ""},
		{"list without a key", req{method: "GET", target: "/backups", noKey: true}, 401, "unauthenticated", ""},
		{"bad session_id", req{method: "GET", target: "/backups?session_id=ABC"}, 400, "invalid_argument", "session_id"},
		{"limit not a number", req{method: "GET", target: "/backups?limit=ten"}, 400, "invalid_argument", "limit"},
		{"zero limit", req{method: "GET", target: "/backups?limit=0"}, 400, "invalid_argument", "limit"},
		{"huge limit", req{method: "GET", target: "/backups?limit=1001"}, 400, "invalid_argument", "limit"},
		{"bad cursor", req{method: "GET", target: "/backups?cursor=!!!"}, 400, "invalid_argument", "cursor"},
		{"empty user_id", req{method: "GET", target: "/backups?user_id="}, 400, "invalid_argument", "user_id"},
		{"repeated user_id", req{method: "GET", target: "/backups?user_id=a&user_id=b"}, 400, "invalid_argument", "user_id"},
		{"user_id control char", req{method: "GET", target: "/backups?user_id=a%07b"}, 400, "invalid_argument", "user_id"},
		{"unknown parameter", req{method: "GET", target: "/backups?status=available"}, 400, "invalid_argument", "status"},
	}
	before := ts.catalog(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := ts.do(t, c.q)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body.String())
			}
			if e := errorOf(t, w); e.Error.Code != c.code || e.Error.Field != c.field {
				t.Fatalf("error %+v, want code %q field %q", e.Error, c.code, c.field)
			}
			if after := ts.catalog(t); after != before {
				t.Fatalf("a refused request changed the catalog:\n before %s\n after  %s", before, after)
			}
		})
	}
}

// TestCreateRestoreRefused: a restore_from the core refuses is a 400 naming restore_from (or
// storage), and nothing is written: no session record, no object applied, no Job, no event,
// the catalog and the archives as they were.
func TestCreateRestoreRefused(t *testing.T) {
	ts := newTestServer(t, Options{})
	at := sessiontest.Epoch.Add(-time.Hour)
	mine, theirs := backupOf("cd34ef56", "u@example.com", at), backupOf("ef56ab12", "other@example.com", at)
	corrupt, notZip := backupOf("gh78ij90", "u@example.com", at), backupOf("ij90kl12", "u@example.com", at)
	missing, removing := backupOf("kl12mn34", "u@example.com", at), backupOf("mn34op56", "u@example.com", at)
	big := backupOf("op56qr78", "u@example.com", at)
	removing.State, removing.Removal = session.BackupRemoving, "hyperbola-rm-000000000000"
	ts.seedBackups(t, mine, theirs, corrupt, notZip, removing)
	ts.fakes.Cluster.PutArchive(corrupt.Location, session.Archive{Problem: session.ArchiveCorrupt, Detail: "bad CRC-32 for file a.txt"})
	ts.fakes.Cluster.PutArchive(notZip.Location, session.Archive{Problem: session.ArchiveNotZip, Detail: "End-of-central-directory signature not found"})
	if err := ts.fakes.Store.PutBackup(context.Background(), missing); err != nil { // recorded, but no file
		t.Fatal(err)
	}
	big.Storage = "1Gi"
	ts.seedBackups(t, big)
	ts.fakes.Cluster.PutArchive(big.Location, session.Archive{Bytes: 1 << 30, Files: 9, Uncompressed: 3 << 30})

	create := func(extra string) req {
		return req{method: "POST", target: "/session/create", body: `{"user_id":"u@example.com"` + extra + `}`}
	}
	cases := []struct {
		name    string
		q       req
		field   string
		message string // a part of the message
	}{
		{"another user's backup id", create(`,"restore_from":"` + theirs.ID + `"`), "restore_from", "no backup"},
		{"another user's location", create(`,"restore_from":"` + theirs.Location + `"`), "restore_from", "no backup"},
		{"another user's session", create(`,"restore_from":"ef56ab12"`), "restore_from", "no backup"},
		{"unknown backup id", create(`,"restore_from":"cd34ef56-20200101T000000Z"`), "restore_from", "no backup"},
		{"unknown session", create(`,"restore_from":"zz99zz99"`), "restore_from", "no backup"},
		{"a location elsewhere", create(`,"restore_from":"pvc://other-volume/cd34ef56/` + mine.ID + `.zip"`), "restore_from", "no backup"},
		{"not a location", create(`,"restore_from":"pvc://hyperbola-backups/x.zip"`), "restore_from", "not a backup location"},
		{"not a reference", create(`,"restore_from":"s3://bucket/a.zip"`), "restore_from", "is not a backup location, a backup id or a session id"},
		{"corrupt", create(`,"restore_from":"` + corrupt.ID + `"`), "restore_from", "corrupt"},
		{"not a zip", create(`,"restore_from":"` + notZip.Location + `"`), "restore_from", "not a zip"},
		{"file missing", create(`,"restore_from":"` + missing.ID + `"`), "restore_from", "no longer at"},
		{"being removed", create(`,"restore_from":"` + removing.ID + `"`), "restore_from", "being removed"},
		{"storage too small", create(`,"restore_from":"` + big.ID + `","storage":"2Gi"`), "storage", "cannot hold"},
		{"restore_from a number", create(`,"restore_from":42`), "restore_from", "must be a string"},
		{"restore_from with another bad member", create(`,"restore_from":"` + mine.ID + `","storage":"lots"`), "storage", ""},
	}
	before, beforeCatalog := ts.writes(t), ts.catalog(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := ts.do(t, c.q)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", w.Code, w.Body.String())
			}
			e := errorOf(t, w)
			if e.Error.Code != "invalid_argument" || e.Error.Field != c.field || !strings.Contains(e.Error.Message, c.message) {
				t.Fatalf("error %+v, want field %q and a message with %q", e.Error, c.field, c.message)
			}
			if after := ts.writes(t); after != before {
				t.Fatalf("a refused restore wrote:\n before %s\n after  %s", before, after)
			}
			if after := ts.catalog(t); after != beforeCatalog {
				t.Fatalf("a refused restore changed the catalog:\n before %s\n after  %s", beforeCatalog, after)
			}
		})
	}
	if len(ts.spy.IDs("Create")) != 0 {
		t.Fatalf("a refused restore created %q", ts.spy.IDs("Create"))
	}
}

// TestCreateRestore: a good restore_from (a backup id, a location, or a deleted session's id)
// is 201 with the session creating, pending await-restore, restore_from the archive's
// location; the workspace does not start until the volume is filled.
func TestCreateRestore(t *testing.T) {
	at := sessiontest.Epoch.Add(-time.Hour)
	older, newer := backupOf("cd34ef56", "u@example.com", at.Add(-time.Hour)), backupOf("cd34ef56", "u@example.com", at)
	for _, c := range []struct{ name, from, want string }{
		{"backup id", older.ID, older.Location},
		{"location", older.Location, older.Location},
		{"session id: its latest", "cd34ef56", newer.Location},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := newTestServer(t, Options{})
			ts.seedBackups(t, older, newer)
			w := ts.do(t, req{method: "POST", target: "/session/create", body: `{"user_id":"u@example.com","restore_from":"` + c.from + `"}`})
			if w.Code != http.StatusCreated {
				t.Fatalf("%d %s", w.Code, w.Body.String())
			}
			var s session.Session
			if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
				t.Fatal(err)
			}
			if s.State != session.StateCreating || s.Pending != session.PendingRestore || s.RestoreFrom != c.want ||
				!s.RestoredAt.IsZero() || s.Password == "" || s.Storage != "5Gi" {
				t.Fatalf("created %s", w.Body.String())
			}
			if strings.Contains(w.Body.String(), "restored_at") {
				t.Fatalf("restored_at before the restore: %s", w.Body.String())
			}
			rec, err := ts.fakes.Store.Get(context.Background(), s.ID)
			if err != nil || rec.RestoreFrom != c.want || rec.Pending != session.PendingRestore {
				t.Fatalf("record %+v (%v)", rec, err)
			}
			if got := ts.fakes.Cluster.RestoredFrom(s.ID, s.Attempt); got != "" && got != c.want {
				t.Fatalf("the restore Job reads %q", got)
			}
			// the archive is only read: still there, still in the catalog
			if !slices.Contains(ts.fakes.Cluster.Archives(), c.want) {
				t.Fatalf("the archive is gone: %q", ts.fakes.Cluster.Archives())
			}
			if _, err := ts.fakes.Store.GetBackup(context.Background(), session.BackupIDOf(c.want)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSpecDescribesBackups checks the backup routes' answers, and a restore's, good and bad,
// against docs/api/openapi.yaml.
func TestSpecDescribesBackups(t *testing.T) {
	spec, err := apispec.Load(context.Background(), specPath)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Options{})
	at := sessiontest.Epoch.Add(-time.Hour)
	a, b, c := backupOf("cd34ef56", "u@example.com", at), backupOf("ef56ab12", "u@example.com", at.Add(time.Minute)),
		backupOf("gh78ij90", "u@example.com", at.Add(2*time.Minute))
	c.ExpiresAt = time.Time{} // kept forever
	ts.seedBackups(t, a, b, c)
	ts.fakes.Cluster.PutArchive(c.Location, session.Archive{Problem: session.ArchiveCorrupt, Detail: "bad CRC"})
	check := func(q req, status int) {
		t.Helper()
		w := ts.do(t, q)
		if w.Code != status {
			t.Errorf("%s %s: %d, want %d: %s", q.method, q.target, w.Code, status, w.Body.String())
		}
		var body io.Reader
		if q.body != "" {
			body = strings.NewReader(q.body)
		}
		r := httptest.NewRequest(q.method, "http://api.test"+q.target, body)
		if err := spec.CheckResponse(context.Background(), r, w.Code, w.Header(), bytes.Clone(w.Body.Bytes())); err != nil {
			t.Error(err)
		}
	}
	check(req{method: "GET", target: "/backups?user_id=u%40example.com&limit=2"}, 200)
	check(req{method: "GET", target: "/backups?session_id=zz99zz99"}, 200)
	check(req{method: "GET", target: "/backups?limit=0"}, 400)
	check(req{method: "POST", target: "/session/create", body: `{"user_id":"u@example.com","restore_from":"` + a.ID + `"}`}, 201)
	check(req{method: "POST", target: "/session/create", body: `{"user_id":"v@example.com","restore_from":"` + b.ID + `"}`}, 400)
	check(req{method: "POST", target: "/session/create", body: `{"user_id":"u@example.com","restore_from":"` + c.ID + `"}`}, 400)
	check(req{method: "DELETE", target: "/backups/" + b.ID}, 200)
	check(req{method: "DELETE", target: "/backups/" + b.ID}, 404)
	check(req{method: "DELETE", target: "/backups/nope"}, 400)
	ts.fakes.Cluster.SetAutoRemove("")
	check(req{method: "DELETE", target: "/backups/" + c.ID}, 202)
	// a restored session, as its status reports it once the Job succeeded
	restored := seedSession("kl12mn34")
	restored.RestoreFrom, restored.RestoredAt = a.Location, sessiontest.Epoch
	ts.fakes.Seed(restored)
	check(req{method: "GET", target: "/session/kl12mn34/status"}, 200)
}
