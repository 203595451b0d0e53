package ratelimit

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Pending is one request's decision, not taken yet. A read route's middleware makes one and
// puts it in the request's context (WithPending); the store's first read of the request takes
// it in the same pipeline (Ride), so the limit costs no round trip of its own. Whatever the
// handler does first, the decision is taken once: by Ride, or by Take.
//
// Decided is given the decision (or the error of a Redis that could not answer) and says what
// it means for the request: nil lets the read go on, an error (429, 503) is what the read
// returns instead of its data. It runs before the read's caller sees any data, so nothing is
// done for a refused request.
type Pending struct {
	l         *Limiter
	key       string
	perMinute int
	decided   func(Result, error) error

	mu    sync.Mutex
	taken bool
}

// Pending makes key's decision under perMinute, to be taken later by Ride or Take.
func (l *Limiter) Pending(key string, perMinute int, decided func(Result, error) error) *Pending {
	return &Pending{l: l, key: key, perMinute: perMinute, decided: decided}
}

type pendingKey struct{}

// WithPending returns ctx carrying p, for the request's first read.
func WithPending(ctx context.Context, p *Pending) context.Context {
	return context.WithValue(ctx, pendingKey{}, p)
}

// PendingFrom returns the decision ctx carries, or nil.
func PendingFrom(ctx context.Context) *Pending {
	p, _ := ctx.Value(pendingKey{}).(*Pending)
	return p
}

// Ride queues the decision into pipe unless it was taken, and returns what to call once pipe
// has run: settle returns the decision's verdict (Decided's error). A nil Pending, or one
// taken already, queues nothing and settles to nil. The caller must call settle before it
// uses any answer of the pipeline.
func (p *Pending) Ride(ctx context.Context, pipe redis.Pipeliner) (settle func() error) {
	if p == nil || !p.take() {
		return func() error { return nil }
	}
	if err := checkLimit(p.key, p.perMinute); err != nil {
		return func() error { return p.decided(Result{}, err) }
	}
	cmd := gcra.EvalSha(ctx, pipe, []string{p.l.key(p.key)}, args(p.perMinute)...)
	return func() error {
		res, err := decode(p.key, p.perMinute, cmd)
		if err != nil && redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			// Redis does not hold the script yet (a first request, or a restarted Redis):
			// decide alone, which loads it.
			res, err = p.l.Allow(ctx, p.key, p.perMinute)
		}
		return p.decided(res, err)
	}
}

// Take takes the decision now, alone, unless it was taken, and returns its verdict (nil when
// it was taken before). The middleware calls it after the handler, for a request whose handler
// read nothing (bad input): such a request is counted all the same, though its answer is
// already written.
func (p *Pending) Take(ctx context.Context) error {
	if !p.take() {
		return nil
	}
	return p.decided(p.l.Allow(ctx, p.key, p.perMinute))
}

// take marks the decision taken; false when it was already.
func (p *Pending) take() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.taken {
		return false
	}
	p.taken = true
	return true
}
