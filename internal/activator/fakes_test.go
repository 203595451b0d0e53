package activator

import (
	"context"
	"errors"
	"log/slog"
	"net"
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
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session/sessiontest"
)

// sessions is the real session Service on the core's fakes, seen through a Spy.
type sessions struct {
	*sessiontest.Spy
	fakes  *sessiontest.Fakes
	seeded []*session.Session
}

func newSessions(ss ...*session.Session) *sessions {
	return newSessionsWith(session.Options{Domain: testDomain}, ss...)
}

// newSessionsWith is newSessions with the Service's options (its Limits, say).
func newSessionsWith(opts session.Options, ss ...*session.Session) *sessions {
	f := sessiontest.New()
	f.Seed(ss...)
	return &sessions{Spy: sessiontest.NewSpy(f.Service(opts)), fakes: f, seeded: ss}
}

// state is the session's recorded state.
func (s *sessions) state(id string) session.State {
	rec, err := s.fakes.Store.Get(context.Background(), id)
	if err != nil {
		panic(err)
	}
	return rec.State
}

// woken returns who asked for each wake of a session that exists, in order.
func (s *sessions) woken() []string {
	var out []string
	for _, c := range s.Calls("Wake") {
		if !errors.Is(c.Err, session.ErrNotFound) {
			out = append(out, c.Actor)
		}
	}
	return out
}

// setState puts the session's record in state st, as a transition elsewhere would leave it.
func (s *sessions) setState(id string, st session.State) {
	ctx := context.Background()
	rec, err := s.fakes.Store.Get(ctx, id)
	if err != nil {
		panic(err)
	}
	rec.State, rec.Pending = st, session.PendingNone
	if err := s.fakes.Store.Seed(rec); err != nil {
		panic(err)
	}
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

// hostWake is the wake cookie's name over https, the units' scheme.
var hostWake = CookieName("https", WakeCookie)

// count is how many requests key has seen.
func (f *fakeLimiter) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[key]
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
	sessions *sessions
	limiter  *fakeLimiter
	now      time.Time
}

func newUnit(t *testing.T, mutate func(*Options)) *unit {
	t.Helper()
	u := &unit{t: t, limiter: &fakeLimiter{}, now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		sessions: newSessions(
			&session.Session{ID: asleepID, UserID: "u", State: session.StateSleeping, WorkspaceURL: session.WorkspaceURL(asleepID, testDomain)},
			&session.Session{ID: runningID, UserID: "u", State: session.StateRunning, WorkspaceURL: session.WorkspaceURL(runningID, testDomain)},
		)}
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
	return u.doFrom("192.0.2.10", method, host, target, body, cookies...)
}

// doFrom serves one request from the client ip (an untrusted peer) for host.
func (u *unit) doFrom(ip, method, host, target string, body url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	u.t.Helper()
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, target, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	r.Host = host
	r.RemoteAddr = net.JoinHostPort(ip, "4321")
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
