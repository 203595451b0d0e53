package store

import (
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Usage runs against both backends, as the suite in store_test.go does.
func TestMiniredisUsage(t *testing.T) { testUsage(t, miniBackend(t)) }

func TestRedisUsage(t *testing.T) { testUsage(t, realBackend(t)) }

func testUsage(t *testing.T, b *backend) {
	c := newClock()
	s := b.store(c, time.Hour)
	now := c.Now()
	in := func(id, user string, st session.State) {
		sess := newSession(id, user, now.Add(-time.Hour))
		sess.State = st
		mustReserve(t, s, sess)
	}
	for i, st := range []session.State{session.StateCreating, session.StateRunning, session.StateWaking,
		session.StateSleeping, session.StateFailed, session.StateDeleting, session.StateDeleted} {
		in(id(i), "ann@example.com", st)
	}
	in(id(10), "bob@example.com", session.StateRunning)
	in(id(11), "bob@example.com", session.StateDeleted)
	for user, want := range map[string]session.Usage{
		"ann@example.com":  {UserSessions: 6, UserAwake: 3, Awake: 4},
		"bob@example.com":  {UserSessions: 1, UserAwake: 1, Awake: 4},
		"none@example.com": {Awake: 4},
	} {
		got, err := s.Usage(t.Context(), user)
		if err != nil || got != want {
			t.Errorf("Usage(%s) = %+v, %v; want %+v", user, got, err, want)
		}
	}
	// a session put to sleep leaves the awake counts
	sess, err := s.Get(t.Context(), id(1))
	if err != nil {
		t.Fatal(err)
	}
	sess.State = session.StateSleeping
	if err := s.Put(t.Context(), fenceOf(t, s, sess.ID), sess); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Usage(t.Context(), "ann@example.com"); err != nil || got != (session.Usage{UserSessions: 6, UserAwake: 2, Awake: 3}) {
		t.Errorf("after a sleep: %+v, %v", got, err)
	}
}
