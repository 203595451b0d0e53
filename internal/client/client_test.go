package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

const key = "client-test-key"

// stubManager answers from a function, recording requests.
type stubManager struct {
	mu   sync.Mutex
	err  error
	last any
}

func (s *stubManager) answer(arg any) (*session.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = arg
	if s.err != nil {
		return nil, s.err
	}
	return &session.Session{ID: "ab12cd34", UserID: "u", State: session.StateRunning, WorkspaceURL: "https://x", Password: "pw"}, nil
}
func (s *stubManager) Create(_ context.Context, r session.CreateRequest) (*session.Session, error) {
	return s.answer(r)
}
func (s *stubManager) Get(_ context.Context, id string) (*session.Session, error) {
	return s.answer(id)
}
func (s *stubManager) Await(_ context.Context, id string, wait time.Duration) (*session.Session, error) {
	return s.answer(awaitArgs{id, wait})
}

type awaitArgs struct {
	id   string
	wait time.Duration
}

func (s *stubManager) List(_ context.Context, o session.ListOptions) (*session.ListResult, error) {
	x, err := s.answer(o)
	if err != nil {
		return nil, err
	}
	return &session.ListResult{Sessions: []*session.Session{x}, NextCursor: "YWJj"}, nil
}
func (s *stubManager) Sleep(_ context.Context, id string) (*session.Session, error) {
	return s.answer(id)
}
func (s *stubManager) Wake(_ context.Context, id string) (*session.Session, error) {
	return s.answer(id)
}
func (s *stubManager) Update(_ context.Context, _ string, r session.UpdateRequest) (*session.Session, error) {
	return s.answer(r)
}
func (s *stubManager) ListBackups(_ context.Context, o session.BackupListOptions) (*session.BackupList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = o
	return &session.BackupList{Backups: []*session.BackupRecord{}}, s.err
}

func (s *stubManager) DeleteBackup(_ context.Context, id string) (*session.BackupRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = id
	return &session.BackupRecord{ID: id, State: session.BackupRemoved}, s.err
}

func (s *stubManager) Delete(_ context.Context, _ string, o session.DeleteOptions) (*session.Session, error) {
	return s.answer(o)
}

func newAPI(t *testing.T) (*stubManager, *httptest.Server) {
	t.Helper()
	m := &stubManager{}
	srv := httptest.NewServer(api.New(api.Deps{Manager: m, Logger: slog.New(slog.DiscardHandler)}, api.Options{APIKeys: []string{key}}))
	t.Cleanup(srv.Close)
	return m, srv
}

func fast() Option { return WithBackoff(time.Millisecond, 5*time.Millisecond) }

func TestRoundTrip(t *testing.T) {
	m, srv := newAPI(t)
	c, err := New(srv.URL+"/", key, fast())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	idle := session.Duration(20 * time.Minute)
	s, err := c.Create(ctx, session.CreateRequest{UserID: "u", IdleTimeout: &idle, Labels: map[string]string{"a": "b"}, RequestID: "rid-1"})
	if err != nil || s.Password != "pw" {
		t.Fatalf("%+v %v", s, err)
	}
	// The API scopes an idempotency key to the calling key (and the body) before the core
	// sees it: the same key sent again reaches the core as the same scoped key.
	cr := m.last.(session.CreateRequest)
	if !strings.HasPrefix(cr.RequestID, "k1:") || cr.IdleTimeout.D() != 20*time.Minute || cr.Labels["a"] != "b" {
		t.Fatalf("%+v", cr)
	}
	if _, err := c.Create(ctx, session.CreateRequest{UserID: "u", IdleTimeout: &idle, Labels: map[string]string{"a": "b"}, RequestID: "rid-1"}); err != nil {
		t.Fatal(err)
	}
	if again := m.last.(session.CreateRequest).RequestID; again != cr.RequestID {
		t.Fatalf("the same request id reached the core as %q, then %q", cr.RequestID, again)
	}
	if _, err := c.Create(ctx, session.CreateRequest{UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	// a create without RequestID gets a generated key, scoped like any other
	if k := m.last.(session.CreateRequest).RequestID; !strings.HasPrefix(k, "k1:") || k == cr.RequestID {
		t.Fatalf("a create without RequestID gets a generated key, got %q", k)
	}
	for name, fn := range map[string]func() (*session.Session, error){
		"get":   func() (*session.Session, error) { return c.Get(ctx, "ab12cd34") },
		"sleep": func() (*session.Session, error) { return c.Sleep(ctx, "ab12cd34") },
		"wake":  func() (*session.Session, error) { return c.Wake(ctx, "ab12cd34") },
		"delete": func() (*session.Session, error) {
			return c.Delete(ctx, "ab12cd34", session.DeleteOptions{SkipBackup: true})
		},
	} {
		if s, err := fn(); err != nil || s.ID != "ab12cd34" {
			t.Fatalf("%s: %+v %v", name, s, err)
		}
	}
	if s, err := c.Update(ctx, "ab12cd34", session.UpdateRequest{Labels: map[string]string{}}); err != nil || s.ID != "ab12cd34" {
		t.Fatalf("update: %+v %v", s, err)
	}
	if up := m.last.(session.UpdateRequest); up.Labels == nil || len(up.Labels) != 0 {
		t.Fatalf("empty labels must reach the server as {} (clear all): %+v", up)
	}
	if _, err := c.Delete(ctx, "ab12cd34", session.DeleteOptions{SkipBackup: true}); err != nil || !m.last.(session.DeleteOptions).SkipBackup {
		t.Fatal("skip_backup lost")
	}
	lr, err := c.List(ctx, session.ListOptions{UserID: "u@x", State: session.StateRunning, Limit: 5, Cursor: "YWJj"})
	if err != nil || len(lr.Sessions) != 1 || lr.NextCursor != "YWJj" {
		t.Fatalf("%+v %v", lr, err)
	}
	if lo := m.last.(session.ListOptions); lo.UserID != "u@x" || lo.State != session.StateRunning || lo.Limit != 5 || lo.Cursor != "YWJj" {
		t.Fatalf("%+v", lo)
	}
	checks, err := c.Health(ctx)
	if err != nil || checks == nil {
		t.Fatalf("%v %v", checks, err)
	}
}

// TestErrorKindsRoundTrip: every kind the server sends comes back with its Kind and Field.
func TestErrorKindsRoundTrip(t *testing.T) {
	m, srv := newAPI(t)
	c, _ := New(srv.URL, key, WithRetries(0))
	for _, want := range []*session.Error{
		{Kind: session.KindInvalid, Field: "storage", Message: "storage cannot shrink"},
		{Kind: session.KindNotFound, Message: "session \"ab12cd34\" not found"},
		{Kind: session.KindConflict, Message: "deleting"},
		{Kind: session.KindBusy, Message: "locked"},
		{Kind: session.KindUnavailable, Message: "redis unavailable"},
		{Kind: session.KindBackup, Message: "backup failed"},
		{Kind: session.KindRateLimited, Message: "slow"},
		{Kind: session.KindInternal, Message: "bug"},
		{Kind: session.KindQuota, Limit: session.LimitRunningPerUser, Message: "sleep one first"},
		{Kind: session.KindInvalid, Field: "memory", Limit: session.LimitMaxMemory, Message: "above the maximum"},
	} {
		m.err = want
		_, err := c.Sleep(context.Background(), "ab12cd34")
		if session.KindOf(err) != want.Kind || session.FieldOf(err) != want.Field || session.LimitOf(err) != want.Limit {
			t.Fatalf("sent %v (%s/%s), got %v (%s/%s)", want, want.Kind, want.Field, err, session.KindOf(err), session.FieldOf(err))
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.RequestID == "" || ae.Status == 0 {
			t.Fatalf("no API detail in %v", err)
		}
		if want.Kind == session.KindNotFound && !errors.Is(err, session.ErrNotFound) {
			t.Fatal("errors.Is(ErrNotFound) fails")
		}
	}
	// Client-side checks and HTTP-level errors.
	if _, err := c.Get(context.Background(), "../etc"); session.FieldOf(err) != "uuid" {
		t.Fatalf("a malformed id is refused locally: %v", err)
	}
	bad, _ := New(srv.URL, "wrong", WithRetries(0))
	if _, err := bad.Get(context.Background(), "ab12cd34"); session.KindOf(err) != session.KindInvalid || session.FieldOf(err) != "api_key" {
		t.Fatalf("401: %v", err)
	}
	prefixed, _ := New(srv.URL+"/v9", key, WithRetries(0))
	if _, err := prefixed.Get(context.Background(), "ab12cd34"); errors.Is(err, session.ErrNotFound) || session.FieldOf(err) != "endpoint" {
		t.Fatalf("an unknown route must not read as a missing session: %v", err)
	}
	for _, ep := range []string{"", "ftp://x", "http://", "http://x?y=1", "::"} {
		if _, err := New(ep, key); session.FieldOf(err) != "endpoint" {
			t.Fatalf("endpoint %q: %v", ep, err)
		}
	}
	if _, err := New("https://x", " "); session.FieldOf(err) != "api_key" {
		t.Fatal(err)
	}
}

func TestForeign404IsNotNotFound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>404</html>", http.StatusNotFound)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, key)
	_, err := c.Get(context.Background(), "ab12cd34")
	if errors.Is(err, session.ErrNotFound) || session.KindOf(err) != session.KindInternal {
		t.Fatalf("%v", err)
	}
}

// flaky answers 503 (or drops the connection) n times, then passes to next.
func flaky(n int32, drop bool, next http.Handler, seen *[]string, mu *sync.Mutex) http.Handler {
	var count atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*seen = append(*seen, r.Method+" "+r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		if count.Add(1) <= n {
			if drop {
				hj, _ := w.(http.Hijacker)
				conn, _, _ := hj.Hijack()
				_ = conn.Close()
				return
			}
			w.Header().Set("Retry-After", "0")
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func TestRetries(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("drop=%v", drop), func(t *testing.T) {
			m := &stubManager{}
			var seen []string
			var mu sync.Mutex
			h := api.New(api.Deps{Manager: m, Logger: slog.New(slog.DiscardHandler)}, api.Options{APIKeys: []string{key}})
			srv := httptest.NewServer(flaky(2, drop, h, &seen, &mu))
			defer srv.Close()
			c, _ := New(srv.URL, key, fast())
			if _, err := c.Create(context.Background(), session.CreateRequest{UserID: "u"}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 3 || seen[0] != seen[1] || seen[1] != seen[2] {
				t.Fatalf("a retried create keeps its Idempotency-Key: %v", seen)
			}
		})
	}
}

func TestNoRetryOnClientErrorsAndGiveUp(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Path == "/sessions" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"error":{"code":"internal","message":"internal error"},"request_id":"r1"}`)
	}))
	defer srv.Close()
	c, _ := New(srv.URL, key, fast(), WithRetries(3))
	if _, err := c.Get(context.Background(), "ab12cd34"); session.KindOf(err) != session.KindInternal || n.Load() != 1 {
		t.Fatalf("500 is not retried: %v after %d", err, n.Load())
	}
	n.Store(0)
	if _, err := c.List(context.Background(), session.ListOptions{}); session.KindOf(err) != session.KindUnavailable || n.Load() != 4 {
		t.Fatalf("503 is retried 3 times then given up: %v after %d", err, n.Load())
	}
}

func TestContextStopsRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens: every attempt is a connection error
	c, _ := New("http://"+addr, key, WithBackoff(50*time.Millisecond, 50*time.Millisecond), WithRetries(100))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Get(ctx, "ab12cd34")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
	c2, _ := New("http://"+addr, key, WithRetries(0))
	if _, err := c2.Get(context.Background(), "ab12cd34"); session.KindOf(err) != session.KindUnavailable {
		t.Fatalf("a connection error is unavailable: %v", err)
	}
}

// A create without a RequestID sends a fresh idempotency key of its own, the same on each of
// its retries, so a retried create cannot make a second workspace.
func TestCreateSendsItsOwnIdempotencyKey(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key")+"|"+requestIDOf(r))
		n := len(keys)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"try again"}}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"uuid":"ab12cd34","user_id":"u","status":"creating"}`))
	}))
	defer srv.Close()
	c, err := New(srv.URL, key, fast())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), session.CreateRequest{UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != keys[1] || !strings.Contains(keys[0], "hyperbola-client-") {
		t.Fatalf("keys sent: %q", keys)
	}
}

// requestIDOf reads request_id from a create's JSON body.
func requestIDOf(r *http.Request) string {
	var body struct {
		RequestID string `json:"request_id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	return body.RequestID
}
