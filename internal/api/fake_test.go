package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

const testKey = "test-key-0123456789"

// fakeManager records every call; Err (when set) is returned by every method.
type fakeManager struct {
	mu    sync.Mutex
	calls []string
	Err   error
	Panic bool
	State session.State
	Last  any
}

func (f *fakeManager) record(name string, arg any) (*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name)
	f.Last = arg
	if f.Panic {
		panic("fake manager panics")
	}
	if f.Err != nil {
		return nil, f.Err
	}
	st := f.State
	if st == "" {
		st = session.StateRunning
	}
	now := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	return &session.Session{
		ID: "ab12cd34", UserID: "user@example.com", State: st, WorkspaceURL: "https://vs-code-ab12cd34.example.test",
		Image: "codercom/code-server:4.96.4", Storage: "5Gi", CPU: "250m", Memory: "256Mi",
		IdleTimeout: session.Duration(15 * time.Minute), BackupOnDelete: true,
		CreatedAt: now, UpdatedAt: now, LastActivity: now, ExpiresAt: now.Add(24 * time.Hour),
	}, nil
}

func (f *fakeManager) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeManager) Create(_ context.Context, req session.CreateRequest) (*session.Session, error) {
	s, err := f.record("Create", req)
	if s != nil {
		s.State, s.Password = session.StateCreating, "pw-once"
	}
	return s, err
}
func (f *fakeManager) Get(_ context.Context, id string) (*session.Session, error) {
	return f.record("Get", id)
}
func (f *fakeManager) List(_ context.Context, opts session.ListOptions) (*session.ListResult, error) {
	s, err := f.record("List", opts)
	if err != nil {
		return nil, err
	}
	if opts.State != "" && opts.State != s.State {
		return &session.ListResult{}, nil
	}
	if opts.Cursor != "" { // the second page is empty
		return &session.ListResult{}, nil
	}
	return &session.ListResult{Sessions: []*session.Session{s}, NextCursor: "MTIzOmFiMTJjZDM0"}, nil
}
func (f *fakeManager) Sleep(_ context.Context, id string) (*session.Session, error) {
	s, err := f.record("Sleep", id)
	if s != nil {
		s.State = session.StateSleeping
	}
	return s, err
}
func (f *fakeManager) Wake(_ context.Context, id string) (*session.Session, error) {
	return f.record("Wake", id)
}
func (f *fakeManager) Update(_ context.Context, id string, req session.UpdateRequest) (*session.Session, error) {
	return f.record("Update", req)
}
func (f *fakeManager) Delete(_ context.Context, id string, opts session.DeleteOptions) (*session.Session, error) {
	s, err := f.record("Delete", opts)
	if s != nil {
		s.State = session.StateDeleting
	}
	return s, err
}

// fakeLimiter admits n requests per key, then refuses.
type fakeLimiter struct {
	mu    sync.Mutex
	n     map[string]int
	keys  []string
	Err   error
	Limit int
}

func (l *fakeLimiter) Allow(_ context.Context, key string, perMinute int) (RateResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Err != nil {
		return RateResult{}, l.Err
	}
	if l.n == nil {
		l.n = map[string]int{}
	}
	l.keys = append(l.keys, key)
	l.n[key]++
	lim := perMinute
	if l.Limit > 0 {
		lim = l.Limit
	}
	if l.n[key] > lim {
		return RateResult{Allowed: false, Limit: lim, RetryAfter: 1500 * time.Millisecond, ResetAfter: time.Minute}, nil
	}
	return RateResult{Allowed: true, Limit: lim, Remaining: lim - l.n[key], ResetAfter: time.Duration(l.n[key]) * time.Minute / time.Duration(lim)}, nil
}

type testServer struct {
	*Server
	m   *fakeManager
	lim *fakeLimiter
	log *bytes.Buffer
}

func newTestServer(t testing.TB, opts Options) *testServer {
	t.Helper()
	if opts.APIKeys == nil {
		opts.APIKeys = []string{"other-key", testKey}
	}
	var buf bytes.Buffer
	ts := &testServer{m: &fakeManager{}, lim: &fakeLimiter{}, log: &buf}
	ts.Server = New(Deps{
		Manager: ts.m, Limiter: ts.lim,
		Health: HealthFunc(func(context.Context) map[string]error { return map[string]error{"redis": nil, "kubernetes": nil} }),
		Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: &buf}, nil)),
	}, opts)
	return ts
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// req is one request to run against a Server.
type req struct {
	method, target, body string
	header               map[string]string
	noKey                bool
	ct                   string // Content-Type; "-" for none; default application/json when there is a body
}

func (ts *testServer) do(t testing.TB, q req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r := httptest.NewRequest(q.method, "http://api.test"+q.target, body)
	if !q.noKey {
		r.Header.Set(HeaderAPIKey, testKey)
	}
	switch {
	case q.ct == "-":
	case q.ct != "":
		r.Header.Set("Content-Type", q.ct)
	case q.body != "":
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, r)
	return w
}

// errorOf decodes and checks the one error shape.
func errorOf(t testing.TB, w *httptest.ResponseRecorder) ErrorBody {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type %q, body %q", ct, w.Body.String())
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatalf("body is not JSON: %v: %q", err, w.Body.String())
	}
	var e ErrorBody
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("body is not the error shape: %v: %q", err, w.Body.String())
	}
	if e.Error.Code == "" || e.Error.Message == "" || e.RequestID == "" {
		t.Fatalf("error shape lacks code, message or request_id: %q", w.Body.String())
	}
	if e.RequestID != w.Header().Get(HeaderRequestID) {
		t.Fatalf("request_id %q differs from the header %q", e.RequestID, w.Header().Get(HeaderRequestID))
	}
	return e
}
