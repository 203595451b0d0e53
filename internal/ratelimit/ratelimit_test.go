package ratelimit

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env, testenv.Options{Redis: true}) }

// TestExactAcrossInstances plays 4 API instances, each with its own client (connection pool)
// to one redis-server, hammering one key at once: exactly the limit is admitted.
func TestExactAcrossInstances(t *testing.T) {
	_, prefix := env.RedisFor(t)
	const (
		limit     = 30 // per minute: a new token every 2s
		instances = 4
		perInst   = 50
	)
	var allowed, denied atomic.Int32
	var wg sync.WaitGroup
	start := time.Now()
	for range instances {
		rdb := env.Redis.Client(t)
		lim := New(rdb, prefix)
		for range perInst {
			wg.Go(func() {
				res, err := lim.Allow(t.Context(), "create:203.0.113.7", limit)
				if err != nil {
					t.Error(err)
					return
				}
				if res.Limit != limit {
					t.Errorf("Limit = %d", res.Limit)
				}
				if res.Allowed {
					allowed.Add(1)
					if res.RetryAfter != 0 {
						t.Errorf("allowed with RetryAfter %v", res.RetryAfter)
					}
				} else {
					denied.Add(1)
					if res.RetryAfter <= 0 || res.RetryAfter > 2*time.Second || res.Remaining != 0 {
						t.Errorf("denied with RetryAfter %v, Remaining %d", res.RetryAfter, res.Remaining)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	// GCRA refills one request every minute/limit = 2s; within that the count is exact.
	if refills := int(elapsed / (time.Minute / limit)); refills == 0 && allowed.Load() != limit {
		t.Fatalf("allowed %d of %d in %v, want exactly %d", allowed.Load(), instances*perInst, elapsed, limit)
	} else if got := int(allowed.Load()); got < limit || got > limit+refills {
		t.Fatalf("allowed %d of %d in %v, want %d..%d", got, instances*perInst, elapsed, limit, limit+refills)
	}
	if int(allowed.Load()+denied.Load()) != instances*perInst {
		t.Fatalf("%d decisions, want %d", allowed.Load()+denied.Load(), instances*perInst)
	}
	t.Logf("%d allowed, %d denied across %d instances in %v", allowed.Load(), denied.Load(), instances, elapsed)
}

// TestSustainedAcrossInstances keeps 4 instances over the limit for a while: what they are
// admitted in total is the burst plus one per emission interval, never more.
func TestSustainedAcrossInstances(t *testing.T) {
	_, prefix := env.RedisFor(t)
	const (
		limit    = 1200 // per minute: burst 1200, then one every 50ms
		interval = time.Minute / limit
		run      = 600 * time.Millisecond
	)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	var lims []*Limiter
	for range 4 {
		rdb := env.Redis.Client(t)
		if err := rdb.Ping(t.Context()).Err(); err != nil { // connect before the clock starts
			t.Fatal(err)
		}
		lims = append(lims, New(rdb, prefix))
	}
	start := time.Now()
	stop := start.Add(run)
	for _, lim := range lims {
		for range 4 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					res, err := lim.Allow(t.Context(), "api:key-1", limit)
					if err != nil {
						t.Error(err)
						return
					}
					if res.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	// Never more than the burst plus one per interval elapsed; the refills are admitted too
	// (the lower bound is loose: a loaded machine may start the workers late).
	lo, hi := limit+1, limit+int(elapsed/interval)+1
	if got := int(allowed.Load()); got < lo || got > hi {
		t.Fatalf("allowed %d in %v, want %d..%d", got, elapsed, lo, hi)
	}
	t.Logf("allowed %d in %v (burst %d + one per %v)", allowed.Load(), elapsed, limit, interval)
}

func TestRefillAndReset(t *testing.T) {
	rdb, prefix := env.RedisFor(t)
	lim := New(rdb, prefix)
	ctx := t.Context()
	const limit = 60 // a new request every second
	for i := range limit {
		res, err := lim.Allow(ctx, "k", limit)
		if err != nil || !res.Allowed {
			t.Fatalf("request %d: %+v, %v", i, res, err)
		}
		// redis_rate floors a float quotient, so Remaining can come out one below the truth;
		// one above if a refill fell inside the loop.
		if want := limit - i - 1; res.Remaining < want-1 || res.Remaining > want+1 {
			t.Fatalf("request %d: Remaining %d, want %d", i, res.Remaining, want)
		}
	}
	res, err := lim.Allow(ctx, "k", limit)
	if err != nil || res.Allowed || res.RetryAfter <= 0 || res.RetryAfter > time.Second {
		t.Fatalf("over the limit: %+v, %v", res, err)
	}
	if res.ResetAfter < 50*time.Second || res.ResetAfter > time.Minute {
		t.Fatalf("ResetAfter %v, want about a minute", res.ResetAfter)
	}
	// Another key is independent.
	if res, err := lim.Allow(ctx, "other", limit); err != nil || !res.Allowed {
		t.Fatalf("other key: %+v, %v", res, err)
	}
	time.Sleep(res.RetryAfter + 20*time.Millisecond)
	if res, err := lim.Allow(ctx, "k", limit); err != nil || !res.Allowed {
		t.Fatalf("after RetryAfter: %+v, %v", res, err)
	}
	if err := lim.Reset(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if res, err := lim.Allow(ctx, "k", limit); err != nil || !res.Allowed || res.Remaining < limit-2 {
		t.Fatalf("after Reset: %+v, %v", res, err)
	}
	// Every key lives under the prefix.
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ours int
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			ours++
			if !strings.HasPrefix(k, prefix+"rate:") {
				t.Errorf("unexpected key %q", k)
			}
			// -1: the key never expires (the failure); -2: it expired since KEYS listed it
			// (a one-request key lives about a second, less than this test on a loaded machine)
			if ttl, _ := rdb.PTTL(ctx, k).Result(); ttl == -1 {
				t.Errorf("key %q has no expiry", k)
			}
		}
	}
	if ours == 0 {
		t.Fatalf("no key under the prefix: %v", keys)
	}
}

func TestBadInput(t *testing.T) {
	lim := New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), "")
	if _, err := lim.Allow(t.Context(), "k", 0); err == nil {
		t.Fatal("Allow(perMinute 0) succeeded")
	}
}

func TestRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1,
		DialerRetryTimeout: time.Millisecond, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	_, err := New(rdb, "").Allow(t.Context(), "k", 10)
	if session.KindOf(err) != session.KindUnavailable {
		t.Fatalf("Allow with Redis down = %v, want unavailable", err)
	}
}
