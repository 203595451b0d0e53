package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func TestListBackupsQuery(t *testing.T) {
	m, srv := newAPI(t)
	var mu sync.Mutex
	var raw []string
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		raw = append(raw, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
		srv.Config.Handler.ServeHTTP(w, r)
	}))
	defer rec.Close()
	c, err := New(rec.URL, key, fast())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := c.ListBackups(ctx, session.BackupListOptions{UserID: "ada+1@example.com", SessionID: "ab12cd34", Limit: 5, Cursor: "YWJj"})
	if err != nil || l.Backups == nil {
		t.Fatalf("%+v %v", l, err)
	}
	if got := m.last.(session.BackupListOptions); got != (session.BackupListOptions{UserID: "ada+1@example.com", SessionID: "ab12cd34", Limit: 5, Cursor: "YWJj"}) {
		t.Fatalf("the server read %+v", got)
	}
	if _, err := c.ListBackups(ctx, session.BackupListOptions{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(raw) != 2 {
		t.Fatalf("requests %q", raw)
	}
	u, _ := url.ParseRequestURI(raw[0][len("GET "):])
	if u.Path != "/backups" || u.Query().Get("user_id") != "ada+1@example.com" || u.Query().Get("limit") != "5" ||
		u.Query().Get("session_id") != "ab12cd34" || u.Query().Get("cursor") != "YWJj" {
		t.Fatalf("query %q", raw[0])
	}
	if raw[1] != "GET /backups" { // nothing given, nothing sent ("?user_id=" is refused)
		t.Fatalf("an empty listing sent %q", raw[1])
	}
}

func TestDeleteBackup(t *testing.T) {
	m, srv := newAPI(t)
	c, _ := New(srv.URL, key, fast())
	ctx := context.Background()
	rec, err := c.DeleteBackup(ctx, "ab12cd34-20261126T020304Z")
	if err != nil || rec.ID != "ab12cd34-20261126T020304Z" || rec.State != session.BackupRemoved || m.last != "ab12cd34-20261126T020304Z" {
		t.Fatalf("%+v %v (server saw %v)", rec, err, m.last)
	}
	// A malformed id is refused before any request, naming backup_id.
	m.last = nil
	for _, id := range []string{"", "../x", "ab12cd34", "ab12cd34-20261126T020304Z/../../sessions"} {
		if _, err := c.DeleteBackup(ctx, id); session.KindOf(err) != session.KindInvalid || session.FieldOf(err) != "backup_id" {
			t.Fatalf("%q: %v", id, err)
		}
	}
	if m.last != nil {
		t.Fatalf("a malformed id reached the server: %v", m.last)
	}
}

// TestBackupErrorsRoundTrip: the server's refusals come back as the core's errors.
func TestBackupErrorsRoundTrip(t *testing.T) {
	m, srv := newAPI(t)
	c, _ := New(srv.URL, key, WithRetries(0))
	ctx := context.Background()
	m.err = session.BackupNotFound("ab12cd34-20261126T020304Z")
	_, err := c.DeleteBackup(ctx, "ab12cd34-20261126T020304Z")
	var ae *APIError
	if !errors.Is(err, session.ErrNotFound) || !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("unknown backup: %v", err)
	}
	m.err = session.Invalid("session_id", "session_id \"X\" is not a session id")
	if _, err := c.ListBackups(ctx, session.BackupListOptions{SessionID: "X"}); session.FieldOf(err) != "session_id" {
		t.Fatalf("list: %v", err)
	}
	m.err = session.Unavailable("redis", errors.New("down"))
	if _, err := c.ListBackups(ctx, session.BackupListOptions{}); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("list: %v", err)
	}
	m.err = session.Invalid("restore_from", "backup ab12cd34-20261126T020304Z is corrupt")
	if _, err := c.Create(ctx, session.CreateRequest{UserID: "u", RestoreFrom: "ab12cd34-20261126T020304Z"}); session.FieldOf(err) != "restore_from" ||
		session.KindOf(err) != session.KindInvalid {
		t.Fatalf("create: %v", err)
	}
	if got := m.last.(session.CreateRequest).RestoreFrom; got != "ab12cd34-20261126T020304Z" {
		t.Fatalf("restore_from reached the server as %q", got)
	}
	// the client's own checks: the limit is the server's to refuse
	m.err = nil
	if _, err := c.ListBackups(ctx, session.BackupListOptions{Limit: -1}); session.FieldOf(err) != "limit" {
		t.Fatalf("limit: %v", err)
	}
}

// TestRestoreCreateMayTakeLong: a create that restores waits for an answer as long as the
// server reads the archive through; other calls keep the client's attempt timeout.
func TestRestoreCreateMayTakeLong(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"uuid":"ab12cd34","user_id":"u","status":"creating","pending":"await-restore"}`)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, key, WithRetries(0), WithAttemptTimeout(100*time.Millisecond))
	ctx := context.Background()
	if _, err := c.Create(ctx, session.CreateRequest{UserID: "u"}); !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("a plain create past the attempt timeout: %v", err)
	}
	s, err := c.Create(ctx, session.CreateRequest{UserID: "u", RestoreFrom: "ab12cd34-20261126T020304Z"})
	if err != nil || s.Pending != session.PendingRestore {
		t.Fatalf("a restoring create: %+v %v", s, err)
	}
	// the caller's own deadline still bounds it
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.Create(short, session.CreateRequest{UserID: "u", RestoreFrom: "ab12cd34-20261126T020304Z"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the caller's deadline: %v", err)
	}
}
