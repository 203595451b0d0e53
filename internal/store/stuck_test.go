package store

import (
	"testing"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Stuck runs against both backends, as the suite in store_test.go does.
func TestMiniredisStuck(t *testing.T) { testStuck(t, miniBackend(t)) }

func TestRedisStuck(t *testing.T) { testStuck(t, realBackend(t)) }

func testStuck(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	s := b.store(c, time.Hour)
	now := c.Now()
	limit := 30 * time.Minute
	before := now.Add(-limit)

	pending := func(id string, st session.State, p session.Pending, since time.Time) *session.Session {
		sess := newSession(id, "alice", now.Add(-3*time.Hour))
		sess.State, sess.Pending, sess.PendingSince, sess.UpdatedAt = st, p, since, since
		return sess
	}
	backup := pending("stuck001", session.StateDeleting, session.PendingBackup, now.Add(-2*time.Hour))
	ready := pending("stuck002", session.StateCreating, session.PendingReady, before.Add(-time.Millisecond))
	// Written before PendingSince existed: indexed by UpdatedAt, which Stuck gives back.
	legacy := pending("stuck003", session.StateWaking, session.PendingReady, time.Time{})
	legacy.UpdatedAt = now.Add(-time.Hour)
	atLimit := pending("fresh001", session.StateCreating, session.PendingApply, before) // not before: not stuck
	fresh := pending("fresh002", session.StateDeleting, session.PendingRemoval, now.Add(-time.Minute))
	for _, sess := range []*session.Session{fresh, ready, atLimit, backup, legacy, newSession("none0001", "alice", now.Add(-3*time.Hour))} {
		mustReserve(t, s, sess)
	}
	tomb := pending("tomb0001", session.StateDeleted, session.PendingNone, time.Time{})
	mustReserve(t, s, tomb)

	got, n, err := s.Stuck(ctx, before, 10)
	if err != nil {
		t.Fatal(err)
	}
	if ids := idsOf(got); n != 3 || !equalStrings(ids, []string{"stuck001", "stuck003", "stuck002"}) {
		t.Fatalf("Stuck = %v (count %d), want the three begun before the limit, oldest first", ids, n)
	}
	for i, want := range []*session.Session{backup, legacy, ready} {
		g := got[i]
		since := want.PendingSince
		if since.IsZero() {
			since = want.UpdatedAt
		}
		if g.UserID != want.UserID || g.State != want.State || g.Pending != want.Pending || !g.PendingSince.Equal(since) {
			t.Errorf("Stuck[%d] = %s %s %s %s since %v, want %s %s %s since %v", i, g.ID, g.UserID, g.State, g.Pending,
				g.PendingSince, want.UserID, want.State, want.Pending, since)
		}
	}

	got, n, err = s.Stuck(ctx, before, 2)
	if err != nil || n != 3 || !equalStrings(idsOf(got), []string{"stuck001", "stuck003"}) {
		t.Fatalf("Stuck(limit 2) = %v (count %d), %v; want the two oldest and a count of all three", idsOf(got), n, err)
	}
	if _, _, err := s.Stuck(ctx, before, 0); session.KindOf(err) != session.KindInvalid {
		t.Fatalf("Stuck(limit 0) = %v, want invalid", err)
	}

	// One round trip, once the script is cached.
	rt := NewRoundTrips()
	b.rdb.AddHook(rt)
	if _, _, err := s.Stuck(ctx, before, 10); err != nil {
		t.Fatal(err)
	}
	if rt.Trips() != 1 {
		t.Errorf("Stuck took %d round trips (%d commands), want 1", rt.Trips(), rt.Commands())
	}

	// A step that finishes, or a step that changes (PendingSince moves), is no longer stuck.
	backup.State, backup.Pending, backup.PendingSince = session.StateDeleted, session.PendingNone, time.Time{}
	mustPut(t, s, backup)
	ready.State, ready.Pending, ready.PendingSince = session.StateRunning, session.PendingNone, time.Time{}
	mustPut(t, s, ready)
	legacy.Pending, legacy.PendingSince = session.PendingApply, now
	mustPut(t, s, legacy)
	got, n, err = s.Stuck(ctx, before, 10)
	if err != nil || n != 0 || len(got) != 0 {
		t.Fatalf("Stuck after the steps moved = %v (count %d), %v; want none", idsOf(got), n, err)
	}
}

func idsOf(ss []*session.Session) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}
