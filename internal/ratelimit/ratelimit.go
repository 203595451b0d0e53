// Package ratelimit limits requests per key with GCRA (github.com/go-redis/redis_rate) in
// Redis, so several API instances sharing one Redis enforce one limit exactly: each decision
// is one Lua script run atomically on the server, against the server's clock.
//
// Keys: <prefix>rate:<key> (a string holding the key's theoretical arrival time; it expires
// by itself once the key is back to a full burst).
package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
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
	lim *redis_rate.Limiter
}

// New returns a Limiter keeping its keys under prefix (DefaultPrefix when "").
func New(rdb redis.UniversalClient, prefix string) *Limiter {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Limiter{lim: redis_rate.NewLimiter(prefixed{rdb: rdb, prefix: prefix})}
}

// Allow decides one request for key under a limit of perMinute requests per minute, with a
// burst of perMinute: a fresh key admits perMinute requests at once, then one every
// minute/perMinute. Redis failures are a *session.Error of KindUnavailable.
func (l *Limiter) Allow(ctx context.Context, key string, perMinute int) (Result, error) {
	if perMinute <= 0 {
		return Result{}, fmt.Errorf("rate limit for %q: perMinute must be positive, got %d", key, perMinute)
	}
	res, err := l.lim.Allow(ctx, key, redis_rate.PerMinute(perMinute))
	if err != nil {
		return Result{}, session.Unavailable("redis", fmt.Errorf("rate limit %q: %w", key, err))
	}
	out := Result{
		Allowed:    res.Allowed > 0,
		Limit:      perMinute,
		Remaining:  res.Remaining,
		RetryAfter: max(res.RetryAfter, 0),
		ResetAfter: max(res.ResetAfter, 0),
	}
	if out.Allowed {
		out.RetryAfter = 0
	}
	return out, nil
}

// Reset forgets key's history: its next request sees a full burst.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if err := l.lim.Reset(ctx, key); err != nil {
		return session.Unavailable("redis", fmt.Errorf("reset rate limit %q: %w", key, err))
	}
	return nil
}

// prefixed is the client redis_rate is given: it puts prefix in front of every key, so the
// limiter's keys ("rate:<key>") live under the project's prefix like every other key.
type prefixed struct {
	rdb    redis.UniversalClient
	prefix string
}

func (p prefixed) keys(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = p.prefix + k
	}
	return out
}

func (p prefixed) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.rdb.Eval(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.rdb.EvalSha(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.rdb.EvalRO(ctx, script, p.keys(keys), args...)
}

func (p prefixed) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.rdb.EvalShaRO(ctx, sha1, p.keys(keys), args...)
}

func (p prefixed) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	return p.rdb.ScriptExists(ctx, hashes...)
}

func (p prefixed) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	return p.rdb.ScriptLoad(ctx, script)
}

func (p prefixed) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return p.rdb.Del(ctx, p.keys(keys)...)
}
