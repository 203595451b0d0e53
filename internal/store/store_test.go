package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// suite runs against miniredis (TestMiniredis) and a real redis-server (TestRedis).
var suite = []struct {
	name string
	fn   func(*testing.T, *backend)
}{
	{"ReserveGet", testReserveGet},
	{"ConcurrentReserve", testConcurrentReserve},
	{"PutMovesIndexes", testPutMovesIndexes},
	{"ConcurrentPuts", testConcurrentPuts},
	{"Tombstone", testTombstone},
	{"Remove", testRemove},
	{"Touch", testTouch},
	{"IdleCandidates", testIdleCandidates},
	{"Expired", testExpired},
	{"Pending", testPending},
	{"DeferIdle", testDeferIdle},
	{"ListPaging", testListPaging},
	{"ListTies", testListTies},
	{"ListFilters", testListFilters},
	{"ListBadInput", testListBadInput},
	{"Lock", testLock},
	{"LockWaits", testLockWaits},
	{"LockExpiry", testLockExpiry},
	{"FencedWrites", testFencedWrites},
	{"LockMutualExclusion", testLockMutualExclusion},
	{"Lease", testLease},
	{"ClaimRequest", testClaimRequest},
	{"RoundTrips", testRoundTrips},
}

func TestMiniredis(t *testing.T) {
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) { c.fn(t, miniBackend(t)) })
	}
}

func TestRedis(t *testing.T) {
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) { c.fn(t, realBackend(t)) })
	}
}

func testReserveGet(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	s := b.store(c, time.Hour)
	in := newSession("ab12cd34", "alice@example.com", c.Now())
	in.Password = "hunter2-secret"
	mustReserve(t, s, in)

	raw, err := b.rdb.Get(ctx, b.prefix+"s:ab12cd34").Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, "hunter2") || strings.Contains(raw, "password") {
		t.Fatalf("stored record holds the password: %s", raw)
	}
	if in.Password != "hunter2-secret" {
		t.Fatal("Reserve changed the caller's session")
	}

	got, err := s.Get(ctx, "ab12cd34")
	if err != nil {
		t.Fatal(err)
	}
	if got.Password != "" || got.UserID != in.UserID || got.State != in.State || !got.CreatedAt.Equal(in.CreatedAt) ||
		got.IdleTimeout != in.IdleTimeout || got.Labels["team"] != "a" || !got.LastActivity.Equal(in.LastActivity) {
		t.Fatalf("Get = %+v, want %+v without password", got, in)
	}

	// A second reservation of the id fails and leaves the record alone.
	other := newSession("ab12cd34", "bob", c.Now())
	ok, err := s.Reserve(ctx, fenceOf(t, s, other.ID), other)
	if err != nil || ok {
		t.Fatalf("second Reserve = %v, %v; want false, nil", ok, err)
	}
	if got, _ := s.Get(ctx, "ab12cd34"); got.UserID != "alice@example.com" {
		t.Fatalf("second Reserve overwrote the record: user %q", got.UserID)
	}
	if _, ok := b.zscore(t, "u:bob", "ab12cd34"); ok {
		t.Fatal("failed Reserve indexed the id under its user")
	}

	_, err = s.Get(ctx, "zz999999")
	if !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want not found", err)
	}
}

func testConcurrentReserve(t *testing.T, b *backend) {
	c := newClock()
	s := b.store(c, time.Hour)
	const n = 32
	var wins atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	l := fenceOf(t, s, "race0001") // one holder racing itself: the script alone decides
	for i := range n {
		wg.Go(func() {
			user := "user-" + id(i)
			ok, err := s.Reserve(t.Context(), l, newSession("race0001", user, c.Now()))
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				wins.Add(1)
				winner.Store(user)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d reservations of one id succeeded, want exactly 1", wins.Load())
	}
	got, err := s.Get(t.Context(), "race0001")
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != winner.Load().(string) {
		t.Fatalf("record belongs to %q, the winner was %q", got.UserID, winner.Load())
	}
	// Only the winner's user index holds the id.
	var indexed int
	for _, k := range b.keys(t) {
		if strings.HasPrefix(k, "u:") {
			indexed++
		}
	}
	if indexed != 1 {
		t.Fatalf("%d user indexes exist, want 1: %v", indexed, b.keys(t))
	}
}

func testPutMovesIndexes(t *testing.T, b *backend) {
	c := newClock()
	s := b.store(c, time.Hour)
	now := c.Now()
	sess := newSession("mv000001", "alice", now)
	mustReserve(t, s, sess)
	created := now.UnixMilli()
	idle := (15 * time.Minute).Milliseconds()

	want := func(state string, idleScore int64, idx ...string) {
		t.Helper()
		got := b.indexesOf(t, "mv000001")
		if !equalStrings(got, idx) {
			t.Fatalf("%s: indexes %v, want %v", state, got, idx)
		}
		if sc, _ := b.zscore(t, "created", "mv000001"); sc != created {
			t.Fatalf("%s: created score %d, want %d", state, sc, created)
		}
		if idleScore != 0 {
			if sc, _ := b.zscore(t, "idle", "mv000001"); sc != idleScore {
				t.Fatalf("%s: idle score %d, want %d", state, sc, idleScore)
			}
		}
		if sc, _ := b.zscore(t, "expires", "mv000001"); sc != sess.ExpiresAt.UnixMilli() {
			t.Fatalf("%s: expires score %d, want %d", state, sc, sess.ExpiresAt.UnixMilli())
		}
	}
	want("running", created+idle, "activity", "created", "expires", "idle", "idlecfg", "state:running", "u:alice")

	sess.State = session.StateSleeping
	mustPut(t, s, sess)
	want("sleeping", 0, "activity", "created", "expires", "state:sleeping", "u:alice")

	// Waking: the idle deadline is back, from the newest activity.
	sess.State = session.StateWaking
	sess.LastActivity = now.Add(time.Minute)
	mustPut(t, s, sess)
	want("waking", created+60_000+idle, "activity", "created", "expires", "idle", "idlecfg", "state:waking", "u:alice")

	// A record with older activity never moves the activity (or the deadline) back.
	sess.State = session.StateRunning
	sess.LastActivity = now
	mustPut(t, s, sess)
	want("running again", created+60_000+idle, "activity", "created", "expires", "idle", "idlecfg", "state:running", "u:alice")

	// A new idle timeout moves the deadline.
	sess.IdleTimeout = session.Duration(time.Hour)
	mustPut(t, s, sess)
	want("longer timeout", created+60_000+time.Hour.Milliseconds(), "activity", "created", "expires", "idle", "idlecfg", "state:running", "u:alice")

	sess.State = session.StateFailed
	sess.Reason = "ImagePullBackOff"
	mustPut(t, s, sess)
	want("failed", 0, "activity", "created", "expires", "state:failed", "u:alice")

	sess.State = session.StateDeleting
	mustPut(t, s, sess)
	want("deleting", 0, "activity", "created", "expires", "state:deleting", "u:alice")

	// A new owner moves the user index.
	sess.UserID = "bob"
	sess.State = session.StateCreating
	mustPut(t, s, sess)
	want("creating for bob", created+60_000+time.Hour.Milliseconds(), "activity", "created", "expires", "idle", "idlecfg", "state:creating", "u:bob")

	// User ids that JSON escapes (<, >, &, non-ASCII) still find their index again.
	sess.UserID = "Zoë <zoe&co@example.com>"
	mustPut(t, s, sess)
	sess.UserID = "bob"
	mustPut(t, s, sess)
	want("back to bob", created+60_000+time.Hour.Milliseconds(), "activity", "created", "expires", "idle", "idlecfg", "state:creating", "u:bob")

	// No idle timeout: no idle deadline.
	sess.IdleTimeout = 0
	mustPut(t, s, sess)
	want("no idle timeout", 0, "activity", "created", "expires", "state:creating", "u:bob")

	got, err := s.Get(t.Context(), "mv000001")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != session.StateCreating || got.UserID != "bob" || !got.LastActivity.Equal(now.Add(time.Minute)) {
		t.Fatalf("Get = state %s user %s activity %s", got.State, got.UserID, got.LastActivity)
	}
}

// testConcurrentPuts races writers moving 5 sessions through random states and owners, with
// touches in between; afterwards every index agrees with every record.
func testConcurrentPuts(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	s := b.store(c, time.Hour)
	now := c.Now()
	const ids = 5
	for i := range ids {
		mustReserve(t, s, newSession(id(i), "alice", now))
	}
	states := []session.State{session.StateCreating, session.StateRunning, session.StateSleeping,
		session.StateWaking, session.StateDeleting, session.StateFailed, session.StateDeleted}
	users := []string{"alice", "bob", "carol"}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for k := range 25 {
				x := newSession(id((w+k)%ids), users[(w*7+k)%3], now)
				x.State = states[(w*3+k*5)%len(states)]
				if k%4 == 0 {
					x.Pending = session.PendingReady
				}
				if err := s.Put(ctx, fenceOf(t, s, x.ID), x); err != nil {
					t.Error(err)
					return
				}
				if err := s.Touch(ctx, id((w+k+1)%ids), now.Add(time.Duration(w*100+k)*time.Millisecond)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range ids {
		x, err := s.Get(ctx, id(i))
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		if x.State == session.StateDeleted {
			want = []string{"state:deleted", "tombstones", "tombuser", "u:" + x.UserID}
		} else {
			want = []string{"activity", "created", "expires"}
			if x.State.Awake() {
				want = append(want, "idle", "idlecfg")
			}
			if x.Pending != session.PendingNone {
				want = append(want, "pending")
			}
			want = append(want, "state:"+string(x.State), "u:"+x.UserID)
		}
		if got := b.indexesOf(t, id(i)); !equalStrings(got, want) {
			t.Fatalf("%s (%s, %s): indexes %v, want %v", id(i), x.State, x.UserID, got, want)
		}
		if x.State.Awake() {
			act, _ := b.zscore(t, "activity", id(i))
			if dl, _ := b.zscore(t, "idle", id(i)); dl != act+(15*time.Minute).Milliseconds() {
				t.Fatalf("%s: idle deadline %d, activity %d", id(i), dl, act)
			}
		}
	}
}

func testTombstone(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	const ttl = time.Second // long enough for a loaded machine to check the tombstone before it expires
	s := b.store(c, ttl)
	sess := newSession("tomb0001", "alice", c.Now())
	mustReserve(t, s, sess)
	mustReserve(t, s, newSession("live0001", "alice", c.Now().Add(time.Millisecond)))

	sess.State = session.StateDeleted
	mustPut(t, s, sess)
	if got := b.indexesOf(t, "tomb0001"); !equalStrings(got, []string{"state:deleted", "tombstones", "tombuser", "u:alice"}) {
		t.Fatalf("tombstone indexes %v", got)
	}
	pttl, err := b.rdb.PTTL(ctx, b.prefix+"s:tomb0001").Result()
	if err != nil || pttl <= 0 || pttl > ttl {
		t.Fatalf("tombstone PTTL = %v, %v; want (0, %v]", pttl, err, ttl)
	}
	got, err := s.Get(ctx, "tomb0001")
	if err != nil || got.State != session.StateDeleted {
		t.Fatalf("Get(tombstone) = %v, %v", got, err)
	}
	// A tombstone's id cannot be reserved again.
	if ok, err := s.Reserve(ctx, fenceOf(t, s, "tomb0001"), newSession("tomb0001", "bob", c.Now())); ok || err != nil {
		t.Fatalf("Reserve(tombstone id) = %v, %v", ok, err)
	}
	// Touching a tombstone records nothing.
	if err := s.Touch(ctx, "tomb0001", c.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.zscore(t, "activity", "tomb0001"); ok {
		t.Fatal("Touch recorded activity on a tombstone")
	}

	ids := func(opts session.ListOptions) []string {
		t.Helper()
		res, err := s.List(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range res.Sessions {
			out = append(out, x.ID)
		}
		return out
	}
	if got := ids(session.ListOptions{}); !equalStrings(got, []string{"live0001"}) {
		t.Fatalf("List() = %v", got)
	}
	if got := ids(session.ListOptions{UserID: "alice"}); !equalStrings(got, []string{"live0001"}) {
		t.Fatalf("List(user) = %v", got)
	}
	if got := ids(session.ListOptions{State: session.StateDeleted}); !equalStrings(got, []string{"tomb0001"}) {
		t.Fatalf("List(deleted) = %v", got)
	}
	if got := ids(session.ListOptions{UserID: "alice", State: session.StateDeleted}); !equalStrings(got, []string{"tomb0001"}) {
		t.Fatalf("List(user, deleted) = %v", got)
	}

	// The tombstone expires.
	b.advance(ttl + 50*time.Millisecond)
	c.Add(ttl + 50*time.Millisecond)
	if _, err := s.Get(ctx, "tomb0001"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get(expired tombstone) = %v, want not found", err)
	}
	if got := ids(session.ListOptions{UserID: "alice", State: session.StateDeleted}); len(got) != 0 {
		t.Fatalf("List(user, deleted) after expiry = %v", got)
	}
	// The next write forgets it everywhere; the id can be reserved again.
	mustReserve(t, s, newSession("live0002", "carol", c.Now()))
	if got := b.indexesOf(t, "tomb0001"); len(got) != 0 {
		t.Fatalf("expired tombstone still in %v", got)
	}
	mustReserve(t, s, newSession("tomb0001", "bob", c.Now()))
	if got := ids(session.ListOptions{UserID: "alice"}); !equalStrings(got, []string{"live0001"}) {
		t.Fatalf("List(alice) after the id was reused = %v", got)
	}
}

func testRemove(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	s := b.store(c, time.Hour)
	sess := newSession("rm000001", "alice", c.Now())
	mustReserve(t, s, sess)
	if err := s.Touch(ctx, "rm000001", c.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "rm000001"); err != nil {
		t.Fatal(err)
	}
	unfence(s, "rm000001") // the lock is not the record's: Remove leaves it to expire
	if ks := b.keys(t); len(ks) != 0 {
		t.Fatalf("keys left after Remove: %v", ks)
	}
	// A tombstone too.
	mustReserve(t, s, sess)
	sess.State = session.StateDeleted
	mustPut(t, s, sess)
	if err := s.Remove(ctx, "rm000001"); err != nil {
		t.Fatal(err)
	}
	unfence(s, "rm000001")
	if ks := b.keys(t); len(ks) != 0 {
		t.Fatalf("keys left after Remove of a tombstone: %v", ks)
	}
	if err := s.Remove(ctx, "rm000001"); err != nil {
		t.Fatalf("Remove(unknown) = %v", err)
	}
}

func testTouch(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	s := b.store(c, time.Hour)
	now := c.Now()
	mustReserve(t, s, newSession("tc000001", "alice", now))
	idle := (15 * time.Minute).Milliseconds()

	t2 := now.Add(10 * time.Minute)
	if err := s.Touch(ctx, "tc000001", t2); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, "tc000001", now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if sc, _ := b.zscore(t, "activity", "tc000001"); sc != t2.UnixMilli() {
		t.Fatalf("activity %d, want %d (never backwards)", sc, t2.UnixMilli())
	}
	if sc, _ := b.zscore(t, "idle", "tc000001"); sc != t2.UnixMilli()+idle {
		t.Fatalf("idle deadline %d, want %d", sc, t2.UnixMilli()+idle)
	}
	got, err := s.Get(ctx, "tc000001")
	if err != nil || !got.LastActivity.Equal(t2) {
		t.Fatalf("Get LastActivity = %v (%v), want %v", got.LastActivity, err, t2)
	}

	// A sleeping session records activity but gets no idle deadline.
	sl := newSession("tc000002", "alice", now)
	sl.State = session.StateSleeping
	mustReserve(t, s, sl)
	if err := s.Touch(ctx, "tc000002", t2); err != nil {
		t.Fatal(err)
	}
	if sc, _ := b.zscore(t, "activity", "tc000002"); sc != t2.UnixMilli() {
		t.Fatalf("sleeping activity %d, want %d", sc, t2.UnixMilli())
	}
	if _, ok := b.zscore(t, "idle", "tc000002"); ok {
		t.Fatal("sleeping session got an idle deadline")
	}

	// Concurrent touches keep the newest.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := s.Touch(ctx, "tc000001", t2.Add(time.Duration(i)*time.Second)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	newest := t2.Add(49 * time.Second).UnixMilli()
	if sc, _ := b.zscore(t, "activity", "tc000001"); sc != newest {
		t.Fatalf("activity after concurrent touches %d, want %d", sc, newest)
	}
	if sc, _ := b.zscore(t, "idle", "tc000001"); sc != newest+idle {
		t.Fatalf("idle after concurrent touches %d, want %d", sc, newest+idle)
	}

	if err := s.Touch(ctx, "zz000000", now); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Touch(unknown) = %v, want not found", err)
	}
	if _, ok := b.zscore(t, "activity", "zz000000"); ok {
		t.Fatal("Touch(unknown) left an activity entry")
	}
}

func testIdleCandidates(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	s := b.store(c, time.Hour)
	now := c.Now()
	old := now.Add(-time.Hour)
	add := func(id string, st session.State, last time.Time, idle time.Duration) {
		x := newSession(id, "alice", old)
		x.State, x.LastActivity, x.IdleTimeout = st, last, session.Duration(idle)
		mustReserve(t, s, x)
	}
	add("idle0001", session.StateRunning, old, 15*time.Minute)                       // overdue by 45m
	add("idle0002", session.StateCreating, now.Add(-20*time.Minute), 15*time.Minute) // by 5m
	add("idle0003", session.StateWaking, now.Add(-30*time.Minute), 15*time.Minute)   // by 15m
	add("busy0001", session.StateRunning, now.Add(-time.Minute), 15*time.Minute)
	add("long0001", session.StateRunning, old, 2*time.Hour)
	add("none0001", session.StateRunning, old, 0)
	add("slep0001", session.StateSleeping, old, 15*time.Minute)
	add("fail0001", session.StateFailed, old, 15*time.Minute)
	add("dele0001", session.StateDeleting, old, 15*time.Minute)
	gone := newSession("gone0001", "alice", old)
	gone.LastActivity = old
	mustReserve(t, s, gone)
	gone.State = session.StateDeleted
	mustPut(t, s, gone)

	got, err := s.IdleCandidates(ctx, now, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"idle0001", "idle0003", "idle0002"}; !equalStrings(got, want) {
		t.Fatalf("IdleCandidates = %v, want %v (most overdue first)", got, want)
	}
	if got, _ := s.IdleCandidates(ctx, now, 1); !equalStrings(got, []string{"idle0001"}) {
		t.Fatalf("IdleCandidates(limit 1) = %v", got)
	}
	// Activity takes a session out; a deadline exactly at now is not overdue yet.
	if err := s.Touch(ctx, "idle0001", now); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, "idle0002", now.Add(-15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.IdleCandidates(ctx, now, 100); !equalStrings(got, []string{"idle0003"}) {
		t.Fatalf("IdleCandidates after touches = %v", got)
	}
	if _, err := s.IdleCandidates(ctx, now, 0); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("IdleCandidates(limit 0) = %v", err)
	}
}

func testExpired(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	s := b.store(c, time.Hour)
	now := c.Now()
	add := func(id string, st session.State, exp time.Time) {
		x := newSession(id, "alice", now.Add(-48*time.Hour))
		x.State, x.ExpiresAt = st, exp
		mustReserve(t, s, x)
	}
	add("expd0001", session.StateSleeping, now.Add(-time.Hour))
	add("expd0002", session.StateRunning, now)
	add("expd0003", session.StateFailed, now.Add(-2*time.Hour))
	add("live0001", session.StateRunning, now.Add(time.Second))
	add("nexp0001", session.StateRunning, time.Time{})
	add("gone0001", session.StateDeleted, now.Add(-3*time.Hour))
	got, err := s.Expired(ctx, now, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"expd0003", "expd0001", "expd0002"}; !equalStrings(got, want) {
		t.Fatalf("Expired = %v, want %v", got, want)
	}

	// A ttl of 0 (zero ExpiresAt) takes the session out of the index on Put, and the record
	// keeps no expiry: it never expires, however late the sweep looks.
	x, err := s.Get(ctx, "expd0001")
	if err != nil {
		t.Fatal(err)
	}
	x.ExpiresAt = time.Time{}
	if err := s.Put(ctx, fenceOf(t, s, x.ID), x); err != nil {
		t.Fatal(err)
	}
	if got, err = s.Expired(ctx, now.Add(100*365*24*time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	if want := []string{"expd0003", "expd0002", "live0001"}; !equalStrings(got, want) {
		t.Fatalf("Expired after clearing expd0001's ttl = %v, want %v", got, want)
	}
	if x, err = s.Get(ctx, "expd0001"); err != nil || !x.ExpiresAt.IsZero() {
		t.Fatalf("Get after clearing the ttl = %v, %v: want no expiry", x, err)
	}
	raw, err := b.rdb.Get(ctx, b.prefix+"s:expd0001").Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, "expires_at") {
		t.Fatalf("the record of a session that never expires holds expires_at: %s", raw)
	}
}

func testPending(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	s := b.store(c, time.Hour)
	now := c.Now()
	a := newSession("pend0001", "alice", now)
	a.State, a.Pending, a.UpdatedAt = session.StateCreating, session.PendingReady, now.Add(2*time.Second)
	mustReserve(t, s, a)
	d := newSession("pend0002", "alice", now)
	d.State, d.Pending, d.UpdatedAt = session.StateDeleting, session.PendingBackup, now.Add(time.Second)
	mustReserve(t, s, d)
	mustReserve(t, s, newSession("none0001", "alice", now))

	got, err := s.Pending(ctx, 10)
	if err != nil || !equalStrings(got, []string{"pend0002", "pend0001"}) {
		t.Fatalf("Pending = %v, %v; want least recently updated first", got, err)
	}
	if got, _ := s.Pending(ctx, 1); !equalStrings(got, []string{"pend0002"}) {
		t.Fatalf("Pending(limit 1) = %v", got)
	}
	a.State, a.Pending = session.StateRunning, session.PendingNone
	mustPut(t, s, a)
	d.State, d.Pending = session.StateDeleted, session.PendingNone
	mustPut(t, s, d)
	if got, _ := s.Pending(ctx, 10); len(got) != 0 {
		t.Fatalf("Pending after the steps finished = %v", got)
	}
}

func testDeferIdle(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	s := b.store(c, time.Hour)
	now := c.Now()
	x := newSession("defr0001", "alice", now.Add(-time.Hour))
	mustReserve(t, s, x)
	sl := newSession("defr0002", "alice", now.Add(-time.Hour))
	sl.State = session.StateSleeping
	mustReserve(t, s, sl)
	if got, _ := s.IdleCandidates(ctx, now, 10); !equalStrings(got, []string{"defr0001"}) {
		t.Fatalf("IdleCandidates = %v", got)
	}
	if err := s.DeferIdle(ctx, "defr0001", now.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.IdleCandidates(ctx, now, 10); len(got) != 0 {
		t.Fatalf("IdleCandidates after DeferIdle = %v", got)
	}
	if got, _ := s.IdleCandidates(ctx, now.Add(6*time.Minute), 10); !equalStrings(got, []string{"defr0001"}) {
		t.Fatalf("IdleCandidates after the deferral = %v", got)
	}
	// An earlier time does not pull the deadline in; activity is untouched.
	if err := s.DeferIdle(ctx, "defr0001", now); err != nil {
		t.Fatal(err)
	}
	if sc, _ := b.zscore(t, "idle", "defr0001"); sc != now.Add(5*time.Minute).UnixMilli() {
		t.Fatalf("idle deadline %d after an earlier DeferIdle", sc)
	}
	if sc, _ := b.zscore(t, "activity", "defr0001"); sc != now.Add(-time.Hour).UnixMilli() {
		t.Fatalf("DeferIdle moved the activity: %d", sc)
	}
	// A touch sets the deadline from the activity again.
	if err := s.Touch(ctx, "defr0001", now.Add(-50*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.IdleCandidates(ctx, now, 10); !equalStrings(got, []string{"defr0001"}) {
		t.Fatalf("IdleCandidates after a touch = %v", got)
	}
	// Sessions without a deadline get none.
	for _, id := range []string{"defr0002", "zz000000"} {
		if err := s.DeferIdle(ctx, id, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.zscore(t, "idle", id); ok {
			t.Fatalf("DeferIdle gave %s an idle deadline", id)
		}
	}
}

// listAll pages through a listing, calling between after each page.
func listAll(t *testing.T, s *Store, opts session.ListOptions, between func(page int)) []string {
	t.Helper()
	var out []string
	for page := 0; ; page++ {
		res, err := s.List(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if opts.Limit > 0 && len(res.Sessions) > opts.Limit {
			t.Fatalf("page of %d, limit %d", len(res.Sessions), opts.Limit)
		}
		for _, x := range res.Sessions {
			out = append(out, x.ID)
		}
		if res.NextCursor == "" {
			return out
		}
		if page > 10_000 {
			t.Fatal("listing does not end")
		}
		opts.Cursor = res.NextCursor
		if between != nil {
			between(page)
		}
	}
}

func testListPaging(t *testing.T, b *backend) {
	c := newClock()
	s := b.store(c, time.Hour)
	base := c.Now()
	var want []string
	for i := range 25 {
		mustReserve(t, s, newSession(id(i), "alice", base.Add(time.Duration(i)*time.Second)))
		want = append(want, id(i))
	}
	got := listAll(t, s, session.ListOptions{Limit: 10}, nil)
	if !equalStrings(got, want) {
		t.Fatalf("pages = %v, want %v", got, want)
	}
	// Exactly one full page: no empty page after it.
	res, err := s.List(t.Context(), session.ListOptions{Limit: 25})
	if err != nil || len(res.Sessions) != 25 || res.NextCursor != "" {
		t.Fatalf("List(limit 25) = %d sessions, cursor %q, %v", len(res.Sessions), res.NextCursor, err)
	}

	// Inserts and deletions between pages: nothing seen twice, nothing that existed
	// throughout is skipped, new sessions show up at the end.
	n := 25
	removed := map[string]bool{}
	var inserted []string
	got = listAll(t, s, session.ListOptions{Limit: 4}, func(page int) {
		x := id(100 + page)
		mustReserve(t, s, newSession(x, "alice", base.Add(time.Duration(n)*time.Second)))
		inserted = append(inserted, x)
		n++
		if page < 4 { // pages 0-3 listed id(0)..id(15): id(24)..id(21) are still ahead
			victim := id(24 - page)
			if err := s.Remove(t.Context(), victim); err != nil {
				t.Fatal(err)
			}
			removed[victim] = true
		}
	})
	seen := map[string]bool{}
	for _, x := range got {
		if seen[x] {
			t.Fatalf("%s listed twice: %v", x, got)
		}
		seen[x] = true
		if removed[x] {
			t.Fatalf("removed %s listed: %v", x, got)
		}
	}
	for i := range 25 {
		if !removed[id(i)] && !seen[id(i)] {
			t.Fatalf("%s skipped: %v", id(i), got)
		}
	}
	for _, x := range inserted {
		if !seen[x] {
			t.Fatalf("%s, inserted while paging, not listed: %v", x, got)
		}
	}
	for i := 1; i < len(got); i++ {
		a, _ := s.Get(t.Context(), got[i-1])
		z, _ := s.Get(t.Context(), got[i])
		if z.CreatedAt.Before(a.CreatedAt) {
			t.Fatalf("not oldest first at %d: %v", i, got)
		}
	}
}

func testListTies(t *testing.T, b *backend) {
	c := newClock()
	s := b.store(c, time.Hour)
	at := c.Now()
	var want []string
	for i := range 30 {
		mustReserve(t, s, newSession(id(i), "alice", at)) // all in the same millisecond
		want = append(want, id(i))
	}
	if got := listAll(t, s, session.ListOptions{Limit: 7}, nil); !equalStrings(got, want) {
		t.Fatalf("pages across a tie = %v, want %v", got, want)
	}
	// The session a cursor points at is removed between pages: the next page starts right
	// after where it was.
	var last string
	opts := session.ListOptions{Limit: 4}
	var seen []string
	for {
		res, err := s.List(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range res.Sessions {
			seen = append(seen, x.ID)
			last = x.ID
		}
		if res.NextCursor == "" {
			break
		}
		if err := s.Remove(t.Context(), last); err != nil {
			t.Fatal(err)
		}
		opts.Cursor = res.NextCursor
	}
	if !equalStrings(seen, want) {
		t.Fatalf("pages across a tie with the cursor's session removed = %v, want %v", seen, want)
	}
}

func testListFilters(t *testing.T, b *backend) {
	c := newClock()
	s := b.store(c, time.Hour)
	base := c.Now()
	states := []session.State{session.StateRunning, session.StateSleeping, session.StateFailed}
	want := map[string][]string{}
	for i := range 60 {
		x := newSession(id(i), []string{"alice", "bob", "carol"}[i%3], base.Add(time.Duration(i)*time.Millisecond))
		x.State = states[(i/3)%3]
		mustReserve(t, s, x)
		want[x.UserID] = append(want[x.UserID], x.ID)
		want[string(x.State)] = append(want[string(x.State)], x.ID)
		want[x.UserID+"/"+string(x.State)] = append(want[x.UserID+"/"+string(x.State)], x.ID)
	}
	for _, tc := range []session.ListOptions{
		{UserID: "alice"}, {UserID: "bob"}, {State: session.StateSleeping}, {State: session.StateFailed},
		{UserID: "carol", State: session.StateRunning}, {UserID: "alice", State: session.StateFailed},
	} {
		k := tc.UserID + "/" + string(tc.State)
		k = strings.Trim(k, "/")
		for _, limit := range []int{1, 3, 100} {
			tc.Limit = limit
			got := listAll(t, s, tc, nil)
			if !equalStrings(got, want[k]) {
				t.Fatalf("List(%+v) = %v, want %v", tc, got, want[k])
			}
		}
	}
	if got := listAll(t, s, session.ListOptions{UserID: "nobody"}, nil); len(got) != 0 {
		t.Fatalf("List(unknown user) = %v", got)
	}
	if got := listAll(t, s, session.ListOptions{State: session.StateWaking}, nil); len(got) != 0 {
		t.Fatalf("List(waking) = %v", got)
	}

	// A filter that matches rarely: a call examines a bounded number of entries, so pages may
	// come back short (even empty) with a cursor, and paging still finds every match.
	var rare []string
	for i := range 2500 {
		x := newSession(id(1000+i), "dave", base.Add(time.Duration(i)*time.Millisecond))
		x.State = session.StateSleeping
		if i%1200 == 1199 {
			x.State = session.StateFailed
			rare = append(rare, x.ID)
		}
		mustReserve(t, s, x)
	}
	opts := session.ListOptions{UserID: "dave", State: session.StateFailed, Limit: 1}
	var got []string
	empty := 0
	for {
		res, err := s.List(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Sessions) == 0 && res.NextCursor != "" {
			empty++
		}
		for _, x := range res.Sessions {
			got = append(got, x.ID)
		}
		if res.NextCursor == "" {
			break
		}
		opts.Cursor = res.NextCursor
	}
	if !equalStrings(got, rare) || empty == 0 {
		t.Fatalf("rare matches = %v (%d empty pages), want %v after at least one empty page", got, empty, rare)
	}
}

func testListBadInput(t *testing.T, b *backend) {
	c := newClock()
	s := b.store(c, time.Hour)
	for i := range 3 {
		mustReserve(t, s, newSession(id(i), "alice", c.Now().Add(time.Duration(i)*time.Millisecond)))
	}
	for _, tc := range []struct {
		opts  session.ListOptions
		field string
	}{
		{session.ListOptions{Cursor: "%%%"}, "cursor"},
		{session.ListOptions{Cursor: "bm90LWEtY3Vyc29y"}, "cursor"}, // "not-a-cursor"
		{session.ListOptions{Cursor: "MTIzOg"}, "cursor"},           // "123:" (no id)
		{session.ListOptions{Cursor: "LTE6YWJj"}, "cursor"},         // "-1:abc"
		{session.ListOptions{Limit: -1}, "limit"},
		{session.ListOptions{State: "sleepy"}, "status"},
	} {
		_, err := s.List(t.Context(), tc.opts)
		if !errors.Is(err, session.ErrInvalid) || session.FieldOf(err) != tc.field {
			t.Errorf("List(%+v) = %v, want invalid %s", tc.opts, err, tc.field)
		}
	}
	res, err := s.List(t.Context(), session.ListOptions{Limit: 5000})
	if err != nil || len(res.Sessions) != 3 {
		t.Fatalf("List(limit 5000) = %v, %v", res, err)
	}
	// A cursor from a past page stays valid after its session is removed.
	res, err = s.List(t.Context(), session.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(t.Context(), id(0)); err != nil {
		t.Fatal(err)
	}
	res, err = s.List(t.Context(), session.ListOptions{Limit: 5, Cursor: res.NextCursor})
	if err != nil || len(res.Sessions) != 2 || res.Sessions[0].ID != id(1) {
		t.Fatalf("List after the cursor's session was removed = %v, %v", res, err)
	}
}

func testLock(t *testing.T, b *backend) {
	ctx := t.Context()
	s := b.store(newClock(), time.Hour)
	release, err := s.Lock(ctx, "lk000001", 10*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = s.Lock(ctx, "lk000001", 10*time.Second, 150*time.Millisecond)
	if !errors.Is(err, session.ErrBusy) || session.KindOf(err) != session.KindBusy {
		t.Fatalf("second Lock = %v, want busy", err)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond || waited > 2*time.Second {
		t.Fatalf("second Lock gave up after %v, want about 150ms", waited)
	}
	// Another session's lock is independent.
	r2, err := s.Lock(ctx, "lk000002", time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	_ = r2.Release(ctx)
	if err := release.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := release.Release(ctx); err != nil {
		t.Fatalf("second release = %v", err)
	}
	r3, err := s.Lock(ctx, "lk000001", time.Second, 0)
	if err != nil {
		t.Fatalf("Lock after release = %v", err)
	}
	_ = r3.Release(ctx)

	// Extend keeps a held lock; it fails once the lock is gone.
	l, err := s.Acquire(ctx, "lk000003", time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := l.Extend(ctx, time.Minute); !ok || err != nil {
		t.Fatalf("Extend = %v, %v", ok, err)
	}
	if pttl, _ := b.rdb.PTTL(ctx, l.Key()).Result(); pttl < 30*time.Second {
		t.Fatalf("PTTL after Extend = %v", pttl)
	}
	_ = l.Release(ctx)
	if ok, err := l.Extend(ctx, time.Minute); ok || err != nil {
		t.Fatalf("Extend after release = %v, %v", ok, err)
	}
	if _, err := s.Lock(ctx, "lk000004", 0, 0); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("Lock(ttl 0) = %v", err)
	}
}

func testLockWaits(t *testing.T, b *backend) {
	ctx := t.Context()
	s := b.store(newClock(), time.Hour)
	release, err := s.Lock(ctx, "lk000001", 10*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		_ = release.Release(context.Background())
	}()
	start := time.Now()
	r2, err := s.Lock(ctx, "lk000001", 10*time.Second, 5*time.Second)
	if err != nil {
		t.Fatalf("waiting Lock = %v", err)
	}
	if waited := time.Since(start); waited < 80*time.Millisecond || waited > 2*time.Second {
		t.Fatalf("waiting Lock took %v, want just over 100ms", waited)
	}
	_ = r2.Release(ctx)

	// A cancelled context ends the wait.
	r3, _ := s.Lock(ctx, "lk000001", 10*time.Second, 0)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(cctx, "lk000001", time.Second, 10*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with an ended context = %v", err)
	}
	_ = r3.Release(ctx)
}

func testLockExpiry(t *testing.T, b *backend) {
	ctx := t.Context()
	s := b.store(newClock(), time.Hour)
	const ttl = 200 * time.Millisecond
	relA, err := s.Lock(ctx, "lk000001", ttl, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.advance(ttl + 50*time.Millisecond)
	// A's lock expired: B takes it.
	relB, err := s.Lock(ctx, "lk000001", 10*time.Second, 0)
	if err != nil {
		t.Fatalf("Lock after expiry = %v", err)
	}
	// A (no longer the holder) releases: B keeps the lock.
	if err := relA.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(ctx, "lk000001", time.Second, 0); !errors.Is(err, session.ErrBusy) {
		t.Fatalf("Lock after a non-holder's release = %v, want busy", err)
	}
	if err := relB.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.rdb.Exists(ctx, b.prefix+"lock:lk000001").Result(); n != 0 {
		t.Fatal("the holder's release left the lock")
	}
}

// testFencedWrites: a writer whose lock expired (and passed to another) writes nothing, even
// though it still has the lock object; the new holder writes.
func testFencedWrites(t *testing.T, b *backend) {
	ctx := t.Context()
	c := newClock()
	s := b.store(c, time.Hour)
	const ttl = 200 * time.Millisecond
	a, err := s.Acquire(ctx, "fn000001", ttl, 0)
	if err != nil {
		t.Fatal(err)
	}
	first := newSession("fn000001", "alice", c.Now())
	if ok, err := s.Reserve(ctx, a, first); !ok || err != nil {
		t.Fatalf("Reserve under the lock = %v, %v", ok, err)
	}
	b.advance(ttl + 50*time.Millisecond) // A stalls past its lock
	bl, err := s.Acquire(ctx, "fn000001", 10*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	woke := first.Clone()
	woke.State = session.StateWaking
	if err := s.Put(ctx, bl, woke); err != nil {
		t.Fatalf("Put by the new holder = %v", err)
	}
	stale := first.Clone()
	stale.State, stale.Pending = session.StateDeleting, session.PendingRemoval
	if err := s.Put(ctx, a, stale); !errors.Is(err, session.ErrBusy) || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("Put by the writer that lost its lock = %v, want busy (lock lost)", err)
	}
	if got, err := s.Get(ctx, "fn000001"); err != nil || got.State != session.StateWaking || got.Pending != session.PendingNone {
		t.Fatalf("after the stale write: %+v, %v; want the new holder's record", got, err)
	}
	if ids, _ := s.Pending(ctx, 10); len(ids) != 0 {
		t.Fatalf("the stale write touched the indexes: pending = %v", ids)
	}
	// A reserve is fenced too: an expired lock reserves nothing.
	x, err := s.Acquire(ctx, "fn000002", ttl, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.advance(ttl + 50*time.Millisecond)
	if ok, err := s.Reserve(ctx, x, newSession("fn000002", "alice", c.Now())); ok || !errors.Is(err, session.ErrBusy) {
		t.Fatalf("Reserve with an expired lock = %v, %v", ok, err)
	}
	if _, err := s.Get(ctx, "fn000002"); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("an expired lock reserved a record: %v", err)
	}
	// A write needs this session's lock from this store.
	if err := s.Put(ctx, bl, newSession("fn000003", "alice", c.Now())); session.KindOf(err) != session.KindInternal {
		t.Fatalf("Put with another session's lock = %v", err)
	}
	if err := s.Put(ctx, nil, newSession("fn000003", "alice", c.Now())); session.KindOf(err) != session.KindInternal {
		t.Fatalf("Put without a lock = %v", err)
	}
	_ = bl.Release(ctx)
}

func testLockMutualExclusion(t *testing.T, b *backend) {
	ctx := t.Context()
	s := b.store(newClock(), time.Hour)
	// Each worker does a non-atomic read-modify-write under the lock; any overlap loses an
	// increment.
	key := b.prefix + "counter"
	const workers, rounds = 8, 10
	var wg sync.WaitGroup
	var inside atomic.Int32
	for range workers {
		wg.Go(func() {
			for range rounds {
				release, err := s.Lock(ctx, "lk000001", 10*time.Second, 20*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) != 1 {
					t.Error("two holders at once")
				}
				n, err := b.rdb.Get(ctx, key).Int()
				if err != nil && !errors.Is(err, redis.Nil) {
					t.Error(err)
				}
				time.Sleep(time.Millisecond)
				b.rdb.Set(ctx, key, n+1, 0)
				inside.Add(-1)
				if err := release.Release(ctx); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n, _ := b.rdb.Get(ctx, key).Int(); n != workers*rounds {
		t.Fatalf("counter %d, want %d", n, workers*rounds)
	}
}

func testLease(t *testing.T, b *backend) {
	ctx := t.Context()
	s := b.store(newClock(), time.Hour)
	var wins atomic.Int32
	var releases []func(context.Context) error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			release, ok, err := s.Lease(ctx, "sweep", 10*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				wins.Add(1)
				mu.Lock()
				releases = append(releases, release)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d sweeps got the lease, want 1", wins.Load())
	}
	if err := releases[0](ctx); err != nil {
		t.Fatal(err)
	}
	release, ok, err := s.Lease(ctx, "sweep", 200*time.Millisecond)
	if !ok || err != nil {
		t.Fatalf("Lease after release = %v, %v", ok, err)
	}
	_ = release
	b.advance(250 * time.Millisecond)
	if _, ok, err := s.Lease(ctx, "sweep", time.Second); !ok || err != nil {
		t.Fatalf("Lease after expiry = %v, %v", ok, err)
	}
}

func testClaimRequest(t *testing.T, b *backend) {
	ctx := t.Context()
	s := b.store(newClock(), time.Hour)
	got, err := s.ClaimRequest(ctx, "key-1", "aaaa0001", time.Second)
	if err != nil || got != "aaaa0001" {
		t.Fatalf("first claim = %q, %v", got, err)
	}
	got, err = s.ClaimRequest(ctx, "key-1", "bbbb0002", time.Second)
	if err != nil || got != "aaaa0001" {
		t.Fatalf("second claim = %q, %v; want the first id", got, err)
	}
	b.advance(time.Second + 50*time.Millisecond)
	got, err = s.ClaimRequest(ctx, "key-1", "cccc0003", time.Second)
	if err != nil || got != "cccc0003" {
		t.Fatalf("claim after expiry = %q, %v", got, err)
	}
	// Concurrent claims agree on one id.
	var wg sync.WaitGroup
	results := make([]string, 20)
	for i := range results {
		wg.Go(func() {
			r, err := s.ClaimRequest(ctx, "key-2", id(i), time.Minute)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		})
	}
	wg.Wait()
	for _, r := range results {
		if r != results[0] {
			t.Fatalf("claims disagree: %v", results)
		}
	}
}

func testRoundTrips(t *testing.T, b *backend) {
	ctx := t.Context()
	rt := NewRoundTrips()
	b.rdb.AddHook(rt)
	c := newClock()
	s := b.store(c, time.Hour)
	for i := range 50 {
		mustReserve(t, s, newSession(id(i), "alice", c.Now().Add(time.Duration(i)*time.Millisecond)))
	}
	// Warm every script, so EVALSHA finds it.
	_ = s.Touch(ctx, id(0), c.Now())
	_, _ = s.List(ctx, session.ListOptions{})
	l1 := fenceOf(t, s, id(1))
	for _, tc := range []struct {
		name string
		fn   func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, id(1)); return err }},
		{"Put", func() error { return s.Put(ctx, l1, newSession(id(1), "alice", c.Now())) }},
		{"Touch", func() error { return s.Touch(ctx, id(1), c.Now()) }},
		{"List(50)", func() error { _, err := s.List(ctx, session.ListOptions{}); return err }},
		{"List(user)", func() error { _, err := s.List(ctx, session.ListOptions{UserID: "alice"}); return err }},
		{"IdleCandidates", func() error { _, err := s.IdleCandidates(ctx, c.Now(), 100); return err }},
	} {
		rt.Reset()
		if err := tc.fn(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if rt.Trips() != 1 {
			t.Errorf("%s took %d round trips (%d commands), want 1", tc.name, rt.Trips(), rt.Commands())
		}
	}
}

func TestUnavailable(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond,
		DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	s := New(rdb, "", Options{})
	mustReserve(t, s, newSession("ab12cd34", "alice", time.Now()))
	l34, l35 := fenceOf(t, s, "ab12cd34"), fenceOf(t, s, "ab12cd35")
	m.Close()
	ctx := t.Context()
	checks := map[string]error{}
	_, checks["Get"] = s.Get(ctx, "ab12cd34")
	checks["Put"] = s.Put(ctx, l34, newSession("ab12cd34", "alice", time.Now()))
	_, checks["Reserve"] = s.Reserve(ctx, l35, newSession("ab12cd35", "alice", time.Now()))
	_, checks["List"] = s.List(ctx, session.ListOptions{})
	checks["Touch"] = s.Touch(ctx, "ab12cd34", time.Now())
	checks["Remove"] = s.Remove(ctx, "ab12cd34")
	_, checks["Lock"] = s.Lock(ctx, "ab12cd34", time.Second, 0)
	_, checks["ClaimRequest"] = s.ClaimRequest(ctx, "k", "ab12cd34", time.Second)
	_, checks["IdleCandidates"] = s.IdleCandidates(ctx, time.Now(), 10)
	checks["Ping"] = s.Ping(ctx)
	for name, err := range checks {
		if session.KindOf(err) != session.KindUnavailable {
			t.Errorf("%s with Redis down = %v, want unavailable", name, err)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := encodeCursor(1764000000123, "ab12cd34")
	n, id, err := decodeCursor(c)
	if err != nil || n != 1764000000123 || id != "ab12cd34" {
		t.Fatalf("decodeCursor(encodeCursor) = %d, %q, %v", n, id, err)
	}
}

func TestRejectsBadRecords(t *testing.T) {
	b := miniBackend(t)
	s := b.store(newClock(), time.Hour)
	for name, x := range map[string]*session.Session{
		"no id":    {UserID: "a", State: session.StateRunning},
		"no user":  {ID: "ab12cd34", State: session.StateRunning},
		"no state": {ID: "ab12cd34", UserID: "a"},
		"bad utf8": {ID: "ab12cd34", UserID: "a\xff", State: session.StateRunning},
	} {
		if err := s.Put(t.Context(), nil, x); !errors.Is(err, session.ErrInvalid) {
			t.Errorf("%s: Put = %v, want invalid", name, err)
		}
	}
	if ks := b.keys(t); len(ks) != 0 {
		t.Fatalf("rejected records left keys: %v", ks)
	}
}
