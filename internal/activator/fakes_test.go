package activator

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/ratelimit"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// fakeSessions is the session core for unit tests: Wake moves a sleeping session to waking
// and records who asked.
type fakeSessions struct {
	mu     sync.Mutex
	byID   map[string]*session.Session
	wakes  []string // actors, in order
	getErr error
}

func (f *fakeSessions) put(s *session.Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byID == nil {
		f.byID = map[string]*session.Session{}
	}
	f.byID[s.ID] = s.Clone()
}

func (f *fakeSessions) Get(_ context.Context, id string) (*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.getErr != nil {
		return nil, f.getErr
	}
	s, ok := f.byID[id]
	if !ok {
		return nil, session.NotFound(id)
	}
	return s.Clone(), nil
}

func (f *fakeSessions) Wake(ctx context.Context, id string) (*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.byID[id]
	if !ok {
		return nil, session.NotFound(id)
	}
	f.wakes = append(f.wakes, session.ActorOf(ctx))
	if s.State == session.StateSleeping {
		s.State, s.Pending = session.StateWaking, session.PendingReady
	}
	return s.Clone(), nil
}

func (f *fakeSessions) woken() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.wakes...)
}

func (f *fakeSessions) setState(id string, st session.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byID[id].State, f.byID[id].Pending = st, session.PendingNone
}

type fakePasswords map[string]string

func (f fakePasswords) Password(_ context.Context, id string) (string, error) {
	pw, ok := f[id]
	if !ok {
		return "", session.NotFound(id)
	}
	return pw, nil
}

// fakeLimiter admits perMinute requests per key, then refuses them (no window: tests are short).
type fakeLimiter struct {
	mu   sync.Mutex
	seen map[string]int
}

func (f *fakeLimiter) Allow(_ context.Context, key string, perMinute int) (ratelimit.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = map[string]int{}
	}
	f.seen[key]++
	if f.seen[key] > perMinute {
		return ratelimit.Result{Limit: perMinute, RetryAfter: 6 * time.Second}, nil
	}
	return ratelimit.Result{Allowed: true, Limit: perMinute, Remaining: perMinute - f.seen[key]}, nil
}

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

const (
	testDomain = "ws.test"
	asleepID   = "ab12cd34"
	runningID  = "run12345"
	testPW     = "correct-horse-battery-staple"
)

type unit struct {
	t        *testing.T
	h        *Handler
	sessions *fakeSessions
	limiter  *fakeLimiter
	now      time.Time
}

func newUnit(t *testing.T, mutate func(*Options)) *unit {
	t.Helper()
	u := &unit{t: t, sessions: &fakeSessions{}, limiter: &fakeLimiter{}, now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	u.sessions.put(&session.Session{ID: asleepID, State: session.StateSleeping, WorkspaceURL: "https://vs-code-" + asleepID + "." + testDomain})
	u.sessions.put(&session.Session{ID: runningID, State: session.StateRunning, WorkspaceURL: "https://vs-code-" + runningID + "." + testDomain})
	opts := Options{Domain: testDomain, Secret: testSecret, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if mutate != nil {
		mutate(&opts)
	}
	h, err := New(Deps{Sessions: u.sessions, Passwords: fakePasswords{asleepID: testPW, runningID: "x"}, Limiter: u.limiter,
		Now: func() time.Time { return u.now }, Logger: slog.New(slog.DiscardHandler)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	u.h = h
	return u
}

// do serves one request from 192.0.2.10 (an untrusted peer) for host.
func (u *unit) do(method, host, target string, body url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	u.t.Helper()
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, target, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	r.Host = host
	r.RemoteAddr = "192.0.2.10:4321"
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	u.h.ServeHTTP(w, r)
	return w
}

func host(id string) string { return "vs-code-" + id + "." + testDomain }

func cookieOf(t *testing.T, w *httptest.ResponseRecorder, name string) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}
