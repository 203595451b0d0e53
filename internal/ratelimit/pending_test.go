package ratelimit

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestPendingRidesAPipeline, on a real redis-server: a decision queued into a pipeline with
// another read is taken in that one round trip and counts exactly like Allow; after the script
// is flushed from Redis (a restarted server) the ride still decides, by deciding alone once;
// a taken decision is never taken twice, and Take decides one that no read carried.
func TestPendingRidesAPipeline(t *testing.T) {
	rdb, prefix := env.RedisFor(t)
	ctx := t.Context()
	lim := New(rdb, prefix)
	if err := rdb.Set(ctx, prefix+"other", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	const limit = 3
	var verdicts []Result
	decided := func(res Result, err error) error {
		if err != nil {
			return err
		}
		verdicts = append(verdicts, res)
		if !res.Allowed {
			return errRefused
		}
		return nil
	}
	ride := func(p *Pending) (string, error) {
		pipe := rdb.Pipeline()
		settle := p.Ride(ctx, pipe)
		get := pipe.Get(ctx, prefix+"other")
		_, _ = pipe.Exec(ctx)
		if err := settle(); err != nil {
			return "", err
		}
		return get.Val(), get.Err()
	}

	// The connection made and the script loaded: from here on every trip is counted.
	if _, err := lim.Allow(ctx, "warm", limit); err != nil {
		t.Fatal(err)
	}
	trips := countTrips(rdb)
	for i := range limit {
		p := lim.Pending("k", limit, decided)
		if v, err := ride(p); err != nil || v != "v" {
			t.Fatalf("ride %d: %q, %v", i, v, err)
		}
		if err := p.Take(ctx); err != nil {
			t.Fatalf("take after a ride: %v", err)
		}
		if n := trips.n; n != i+1 {
			t.Fatalf("after %d rides: %d round trips, want %d (the decision rides, Take adds none)", i+1, n, i+1)
		}
	}
	if _, err := ride(lim.Pending("k", limit, decided)); !errors.Is(err, errRefused) {
		t.Fatalf("over the limit: %v, want the refusal", err)
	}
	if got := verdicts[len(verdicts)-1]; got.Allowed || got.RetryAfter <= 0 {
		t.Fatalf("refusal: %+v", got)
	}

	// A Redis without the script (SCRIPT FLUSH, as after a restart): still decided, and counted.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := ride(lim.Pending("k2", limit, decided)); err != nil {
		t.Fatalf("ride without the script: %v", err)
	}
	if res, err := lim.Allow(ctx, "k2", limit); err != nil || res.Remaining != limit-2 {
		t.Fatalf("after a ride without the script: %+v, %v (want it counted once)", res, err)
	}

	// No read carried it: Take decides, once.
	p := lim.Pending("k3", 1, decided)
	if err := p.Take(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Take(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := lim.Allow(ctx, "k3", 1); err != nil || res.Allowed {
		t.Fatalf("k3 after one Take: %+v, %v (want its one request spent)", res, err)
	}

	// No decision in the context: nothing rides.
	if PendingFrom(context.Background()) != nil || PendingFrom(WithPending(ctx, p)) != p {
		t.Fatal("PendingFrom")
	}
	var none *Pending
	if err := none.Ride(ctx, rdb.Pipeline())(); err != nil {
		t.Fatal(err)
	}
}

// TestPendingRedisDown: a Redis that cannot answer is the decision's error (the caller's
// Decided fails closed).
func TestPendingRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	var got error
	p := New(rdb, "").Pending("k", 10, func(_ Result, err error) error { got = err; return err })
	pipe := rdb.Pipeline()
	settle := p.Ride(t.Context(), pipe)
	_, _ = pipe.Exec(t.Context())
	if err := settle(); err == nil || got == nil {
		t.Fatalf("settle = %v, decided saw %v: want the connection's error", err, got)
	}
}

var errRefused = errors.New("refused")

// tripCounter counts the client's round trips (a pipeline is one), but for a new
// connection's handshake (HELLO, CLIENT SETINFO).
type tripCounter struct{ n int }

func handshake(cmd redis.Cmder) bool { return cmd.Name() == "hello" || cmd.Name() == "client" }

func countTrips(rdb *redis.Client) *tripCounter {
	c := &tripCounter{}
	rdb.AddHook(c)
	return c
}

func (c *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			c.n++
		}
		return next(ctx, cmd)
	}
}

func (c *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !handshake(cmds[0]) {
			c.n++
		}
		return next(ctx, cmds)
	}
}
