package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// FuzzCreateBody: whatever the body, POST /session/create never answers 5xx, every refusal
// is the JSON error shape and writes nothing, and every 201 is a session in the store.
func FuzzCreateBody(f *testing.F) {
	for _, s := range []string{
		`{"user_id":"u"}`, `{"user_id":"u","idle_timeout":"15m","labels":{"a":"b"}}`, `{`, `[]`, `null`, `""`,
		`{"user_id":1}`, `{"user_id":"u","idle_timeout":1e400}`, `{"user_id":"u","storage":"9999999999999999999Ei"}`,
		`{"user_id":"\ud800"}`, `{"user_id":"u"} {}`, `{"user_id":"u","labels":{"":""}}`, "\xff\xfe", `{"state":"x"}`,
		`{"user_id":"u","idle_timeout":"-1h"}`, `{"user_id":"u","cpu":"0.000000001m"}`,
		`{"user_id":"u","restore_from":"ab12cd34"}`, `{"user_id":"u","restore_from":"ab12cd34-20260101T000000Z"}`,
		`{"user_id":"u","restore_from":"pvc://hyperbola-backups/ab12cd34/ab12cd34-20260101T000000Z.zip"}`, `{"user_id":"u","restore_from":["x"]}`,
	} {
		f.Add(s, "application/json")
	}
	f.Add(`{"user_id":"u"}`, "text/plain; charset=\x00")
	ts := newTestServer(f, Options{MaxBodyBytes: 4096})
	ts.Server.log = slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, body, ct string) {
		r := httptest.NewRequest(http.MethodPost, "/session/create", strings.NewReader(body))
		r.Header.Set(HeaderAPIKey, testKey)
		r.Header.Set("Content-Type", ct)
		records := ts.fakes.Store.Len()
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r)
		checkFuzzAnswer(t, w)
		if added := ts.fakes.Store.Len() - records; (w.Code == http.StatusCreated) != (added == 1) {
			t.Fatalf("answered %d and wrote %d records: %s", w.Code, added, w.Body.String())
		}
	})
}

// FuzzSessionIDPath: whatever the id segment, the session routes never answer 5xx, refuse
// with the JSON error shape, and only a well-formed id reaches the Manager (which then
// answers for the session: found, unknown, or in a state that refuses the call).
func FuzzSessionIDPath(f *testing.F) {
	for _, s := range []string{"ab12cd34", "../x", "..%2Fx", "ABCDEFGH", "abcdefghi", "é", "%00", "", ".", "a/b", "%zz", "ab12cd34/status", "ab12cd3\u00e9"} {
		f.Add(s)
	}
	ts := newTestServer(f, Options{})
	ts.Server.log = slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, id string) {
		for _, rt := range []struct{ method, suffix string }{{"GET", "/status"}, {"POST", "/sleep"}, {"POST", "/wake"}, {"DELETE", ""}} {
			target := "/session/" + id + rt.suffix
			r, err := http.NewRequest(rt.method, "http://api.test"+target, nil)
			if err != nil {
				return // not a URL any client could send
			}
			r.RemoteAddr = "192.0.2.1:1234"
			r.Header.Set(HeaderAPIKey, testKey)
			before := len(ts.spy.Calls(""))
			w := httptest.NewRecorder()
			ts.ServeHTTP(w, r)
			checkFuzzAnswer(t, w)
			reached := ts.spy.Calls("")[before:]
			for _, c := range reached {
				if !session.ValidID(c.ID) {
					t.Fatalf("%s %q: %q reached the Manager", rt.method, target, c.ID)
				}
			}
			if len(reached) > 0 && w.Code == http.StatusBadRequest {
				t.Fatalf("%s %q: reached the Manager and was refused as bad input: %s", rt.method, target, w.Body.String())
			}
		}
	})
}

// FuzzBackupIDPath: whatever the id segment, DELETE /backups/{backup_id} never answers 5xx,
// refuses with the JSON error shape (a malformed id as a 400 naming backup_id), and the one
// archive the catalog holds is removed only by an answer that says so (200).
func FuzzBackupIDPath(f *testing.F) {
	for _, s := range []string{"ab12cd34-20260101T000000Z", "ab12cd34", "../x", "..%2Fx", "AB12CD34-20260101T000000Z", "ab12cd34-2026",
		"%00", "", ".", "a/b", "%zz", "ab12cd34-20260101T000000Z.zip", "pvc:%2F%2Fhyperbola-backups%2Fab12cd34", "cd34ef56-20260227T120000Z"} {
		f.Add(s)
	}
	ts := newTestServer(f, Options{})
	ts.Server.log = slog.New(slog.DiscardHandler)
	kept := backupOf("cd34ef56", "user@example.com", sessiontest.Epoch.Add(-48*time.Hour))
	f.Fuzz(func(t *testing.T, id string) {
		if err := ts.fakes.Store.PutBackup(context.Background(), kept); err != nil {
			t.Fatal(err)
		}
		ts.fakes.Cluster.PutArchive(kept.Location, session.Archive{Bytes: 1})
		r, err := http.NewRequest(http.MethodDelete, "http://api.test/backups/"+id, nil)
		if err != nil {
			return // not a URL any client could send
		}
		r.RemoteAddr = "192.0.2.1:1234"
		r.Header.Set(HeaderAPIKey, testKey)
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r)
		checkFuzzAnswer(t, w)
		if w.Code == http.StatusBadRequest {
			if e := errorOf(t, w); e.Error.Field != "backup_id" {
				t.Fatalf("%q: a 400 naming %q", id, e.Error.Field)
			}
		}
		_, gone := ts.fakes.Store.GetBackup(context.Background(), kept.ID)
		if (gone != nil) != (w.Code == http.StatusOK) {
			t.Fatalf("%q: answered %d, and the kept archive's record is gone: %v", id, w.Code, gone != nil)
		}
	})
}

func checkFuzzAnswer(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("answered %d: %s", w.Code, w.Body.String())
	}
	if w.Code >= 400 {
		errorOf(t, w)
	}
}
