// Package ratelimit limits requests per key with GCRA in Redis (the script of
// github.com/go-redis/redis_rate), so several API instances sharing one Redis enforce one limit
// exactly: each decision is one Lua script run atomically on the server, against the server's
// clock. A decision can also ride in a pipeline with the request's own first read (Pending),
// so a read route costs one round trip instead of two.
//
// Keys: <prefix>rate:<key> (a string holding the key's theoretical arrival time; it expires
// by itself once the key is back to a full burst).
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// DefaultPrefix is the key prefix used when New is given "".
const DefaultPrefix = "hyperbola:"

// Result is one decision.
type Result struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the number of requests allowed per minute (also the burst).
	Limit int
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// RetryAfter is how long until a request will be allowed; 0 when this one was.
	RetryAfter time.Duration
	// ResetAfter is how long until the key is back to a full burst of Limit.
	ResetAfter time.Duration
}

// Limiter limits requests per key.
type Limiter struct {
	rdb    redis.UniversalClient
	prefix string
}

// New returns a Limiter keeping its keys under prefix (DefaultPrefix when "").
func New(rdb redis.UniversalClient, prefix string) *Limiter {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Limiter{rdb: rdb, prefix: prefix}
}

// Allow decides one request for key under a limit of perMinute requests per minute, with a
// burst of perMinute: a fresh key admits perMinute requests at once, then one every
// minute/perMinute. Redis failures are a *session.Error of KindUnavailable.
func (l *Limiter) Allow(ctx context.Context, key string, perMinute int) (Result, error) {
	if err := checkLimit(key, perMinute); err != nil {
		return Result{}, err
	}
	return decode(key, perMinute, gcra.Run(ctx, l.rdb, []string{l.key(key)}, args(perMinute)...))
}

// Reset forgets key's history: its next request sees a full burst.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if err := l.rdb.Del(ctx, l.key(key)).Err(); err != nil {
		return session.Unavailable("redis", fmt.Errorf("reset rate limit %q: %w", key, err))
	}
	return nil
}

func (l *Limiter) key(key string) string { return l.prefix + "rate:" + key }

func checkLimit(key string, perMinute int) error {
	if perMinute <= 0 {
		return fmt.Errorf("rate limit for %q: perMinute must be positive, got %d", key, perMinute)
	}
	return nil
}

// args are gcra's ARGV for perMinute, a cost of one.
func args(perMinute int) []any {
	return []any{perMinute, perMinute, time.Minute.Seconds(), 1}
}

// decode reads gcra's answer.
func decode(key string, perMinute int, cmd *redis.Cmd) (Result, error) {
	fail := func(err error) (Result, error) {
		return Result{}, session.Unavailable("redis", fmt.Errorf("rate limit %q: %w", key, err))
	}
	v, err := cmd.Slice()
	if err != nil {
		return fail(err)
	}
	if len(v) != 4 {
		return fail(fmt.Errorf("gcra answered %d values, want 4", len(v)))
	}
	allowed, ok1 := v[0].(int64)
	remaining, ok2 := v[1].(int64)
	retry, err1 := seconds(v[2])
	reset, err2 := seconds(v[3])
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return fail(fmt.Errorf("gcra answered %v", v))
	}
	out := Result{
		Allowed:    allowed > 0,
		Limit:      perMinute,
		Remaining:  int(remaining),
		RetryAfter: max(retry, 0),
		ResetAfter: max(reset, 0),
	}
	if out.Allowed {
		out.RetryAfter = 0
	}
	return out, nil
}

// seconds reads one of gcra's string durations (-1 is none: negative).
func seconds(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("not a string: %v", v)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	if f < 0 {
		return -1, nil
	}
	return time.Duration(f * float64(time.Second)), nil
}
