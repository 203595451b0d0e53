package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Redis: true}) }

// backend is one Redis the store's tests run against: miniredis or a real redis-server.
type backend struct {
	rdb    redis.UniversalClient
	prefix string
	// advance lets d pass on the server's clock (key expiries): miniredis fast-forwards, a
	// real server is waited for.
	advance func(d time.Duration)
	real    bool
	mini    *miniredis.Miniredis
}

func miniBackend(t testing.TB) *backend {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return &backend{rdb: rdb, prefix: "hyperbola:", advance: m.FastForward, mini: m}
}

func realBackend(t testing.TB) *backend {
	t.Helper()
	rdb, prefix := env.RedisFor(t)
	return &backend{rdb: rdb, prefix: prefix, advance: time.Sleep, real: true}
}

// clock is the shared settable clock.
type clock = testenv.Clock

func newClock() *clock { return testenv.NewClock(time.Now().Truncate(time.Millisecond)) }

func (b *backend) store(c *clock, ttl time.Duration) *Store {
	return New(b.rdb, b.prefix, Options{TombstoneTTL: ttl, Now: c.Now})
}

// zscore returns member's score in the zset name (under the prefix).
func (b *backend) zscore(t testing.TB, name, member string) (int64, bool) {
	t.Helper()
	v, err := b.rdb.ZScore(t.Context(), b.prefix+name, member).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false
	}
	if err != nil {
		t.Fatalf("ZSCORE %s %s: %v", name, member, err)
	}
	return int64(v), true
}

// keys returns every key under the prefix, sorted, without the prefix.
func (b *backend) keys(t testing.TB) []string {
	t.Helper()
	ks, err := b.rdb.Keys(t.Context(), b.prefix+"*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	for i := range ks {
		ks[i] = ks[i][len(b.prefix):]
	}
	sort.Strings(ks)
	return ks
}

// indexesOf lists the zsets and hashes under the prefix that hold id.
func (b *backend) indexesOf(t testing.TB, id string) []string {
	t.Helper()
	var out []string
	for _, k := range b.keys(t) {
		typ, err := b.rdb.Type(t.Context(), b.prefix+k).Result()
		if err != nil {
			t.Fatalf("TYPE %s: %v", k, err)
		}
		switch typ {
		case "zset":
			if _, ok := b.zscore(t, k, id); ok {
				out = append(out, k)
			}
		case "hash":
			if ok, _ := b.rdb.HExists(t.Context(), b.prefix+k, id).Result(); ok {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// newSession returns a running session created at created, idle after 15 minutes, expiring
// after a day.
func newSession(id, user string, created time.Time) *session.Session {
	return &session.Session{
		ID:             id,
		UserID:         user,
		State:          session.StateRunning,
		WorkspaceURL:   "https://vs-code-" + id + ".example.test",
		Image:          "codercom/code-server:4.96.4",
		Storage:        "5Gi",
		CPU:            "250m",
		Memory:         "256Mi",
		IdleTimeout:    session.Duration(15 * time.Minute),
		BackupOnDelete: true,
		Labels:         map[string]string{"team": "a"},
		CreatedAt:      created,
		UpdatedAt:      created,
		LastActivity:   created,
		ExpiresAt:      created.Add(24 * time.Hour),
	}
}

// id returns a valid session id made from n.
func id(n int) string { return fmt.Sprintf("s%07d", n) }

func mustReserve(t testing.TB, s *Store, sess *session.Session) {
	t.Helper()
	ok, err := s.Reserve(t.Context(), fenceOf(t, s, sess.ID), sess)
	if err != nil || !ok {
		t.Fatalf("Reserve(%s) = %v, %v", sess.ID, ok, err)
	}
}

func mustPut(t testing.TB, s *Store, sess *session.Session) {
	t.Helper()
	if err := s.Put(t.Context(), fenceOf(t, s, sess.ID), sess); err != nil {
		t.Fatalf("Put(%s): %v", sess.ID, err)
	}
}

// fences holds the locks fenceOf took, one per store and session, for the test's writes.
var fences sync.Map // fenceKey → *Lock

type fenceKey struct {
	s  *Store
	id string
}

// fenceOf returns a lock of session id on s for the test's writes: taken on first use (for an
// hour) and released when the test ends.
func fenceOf(t testing.TB, s *Store, id string) session.Lock {
	t.Helper()
	k := fenceKey{s, id}
	if l, ok := fences.Load(k); ok {
		return l.(*Lock)
	}
	l, err := s.Acquire(context.Background(), id, time.Hour, 10*time.Second)
	if err != nil {
		t.Fatalf("lock %s: %v", id, err)
	}
	fences.Store(k, l)
	t.Cleanup(func() {
		fences.Delete(k)
		_ = l.Release(context.Background())
	})
	return l
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// unfence releases the lock fenceOf took for session id on s (a later fenceOf takes another).
func unfence(s *Store, id string) {
	if l, ok := fences.LoadAndDelete(fenceKey{s, id}); ok {
		_ = l.(*Lock).Release(context.Background())
	}
}
