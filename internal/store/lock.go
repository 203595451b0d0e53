package store

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Polling bounds while waiting for a held lock.
const (
	lockPollMin = 5 * time.Millisecond
	lockPollMax = 100 * time.Millisecond
)

// Lock is a held per-session lock or global lease: a random token in a Redis key with an
// expiry. Only its holder can extend or release it.
type Lock struct {
	rdb   redis.UniversalClient
	key   string
	token string

	mu       sync.Mutex
	released bool
}

// Key returns the Redis key of the lock.
func (l *Lock) Key() string { return l.key }

// Release frees the lock if this holder still owns it (compare-and-delete). It is safe to call
// more than once. A lock that expired and was taken by someone else is left alone.
func (l *Lock) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	if err := releaseScript.Run(ctx, l.rdb, []string{l.key}, l.token).Err(); err != nil {
		return unavailable(fmt.Errorf("release %s: %w", l.key, err))
	}
	l.released = true
	return nil
}

// Extend resets the lock's expiry to ttl from now. It reports false when the lock is no
// longer this holder's (it expired, or was released).
func (l *Lock) Extend(ctx context.Context, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		return false, session.Invalid("ttl", "lock ttl must be at least 1ms")
	}
	n, err := extendScript.Run(ctx, l.rdb, []string{l.key}, l.token, ttl.Milliseconds()).Int()
	if err != nil {
		return false, unavailable(fmt.Errorf("extend %s: %w", l.key, err))
	}
	return n == 1, nil
}

func newToken() (string, error) {
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", fmt.Errorf("lock token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// tryLock makes one SET NX PX attempt on key.
func (s *Store) tryLock(ctx context.Context, key string, ttl time.Duration) (*Lock, bool, error) {
	if ttl < time.Millisecond {
		return nil, false, session.Invalid("ttl", "lock ttl must be at least 1ms")
	}
	token, err := newToken()
	if err != nil {
		return nil, false, err
	}
	err = s.rdb.SetArgs(ctx, key, token, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, false, nil
	case err != nil:
		return nil, false, unavailable(fmt.Errorf("lock %s: %w", key, err))
	}
	return &Lock{rdb: s.rdb, key: key, token: token}, true, nil
}

// Acquire takes the lock of session id for ttl, polling with a small backoff for up to wait.
// When it is still held after wait it returns a *session.Error of KindBusy.
func (s *Store) Acquire(ctx context.Context, id string, ttl, wait time.Duration) (*Lock, error) {
	key := s.key("lock:", id)
	deadline := time.Now().Add(wait)
	backoff := lockPollMin
	for {
		l, ok, err := s.tryLock(ctx, key, ttl)
		if err != nil {
			return nil, err
		}
		if ok {
			return l, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, &session.Error{Kind: session.KindBusy,
				Message: fmt.Sprintf("session %q is busy: another change to it is in progress", id)}
		}
		// Full jitter keeps waiters on one session from polling in step.
		sleep := min(backoff/2+rand.N(backoff/2+1), left)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, unavailable(fmt.Errorf("waiting for the lock of %s: %w", id, ctx.Err()))
		case <-t.C:
		}
		backoff = min(backoff*2, lockPollMax)
	}
}

// Lock takes the per-session lock (session.Store). See Acquire.
func (s *Store) Lock(ctx context.Context, id string, ttl, wait time.Duration) (session.Lock, error) {
	l, err := s.Acquire(ctx, id, ttl, wait)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// fence returns the key and token of l, which must be session id's lock taken from this store:
// a write checks them atomically (the write script), so a writer whose lock expired writes
// nothing.
func (s *Store) fence(l session.Lock, id string) (key, token string, err error) {
	lk, ok := l.(*Lock)
	if !ok || lk == nil {
		return "", "", &session.Error{Kind: session.KindInternal, Message: fmt.Sprintf("session %s: a write without a lock from this store", id)}
	}
	if lk.key != s.key("lock:", id) {
		return "", "", &session.Error{Kind: session.KindInternal, Message: fmt.Sprintf("session %s: a write holding another lock (%s)", id, lk.key)}
	}
	return lk.key, lk.token, nil
}

// Lease takes the global lease name for ttl without waiting: ok is false when another holder
// has it. Use it for work that must run once at a time across instances (the sweep).
func (s *Store) Lease(ctx context.Context, name string, ttl time.Duration) (release func(context.Context) error, ok bool, err error) {
	l, ok, err := s.tryLock(ctx, s.key("lease:", name), ttl)
	if err != nil || !ok {
		return nil, false, err
	}
	return l.Release, true, nil
}

// ClaimRequest maps an idempotency key to a session id for ttl: it returns id when the key was
// free (and is now claimed) and the id that claimed it before otherwise. One round trip.
func (s *Store) ClaimRequest(ctx context.Context, key, id string, ttl time.Duration) (string, error) {
	if key == "" {
		return "", session.Invalid("idempotency_key", "idempotency key is empty")
	}
	if ttl < time.Millisecond {
		return "", session.Invalid("ttl", "idempotency ttl must be at least 1ms")
	}
	got, err := claimScript.Run(ctx, s.rdb, []string{s.key("req:", key)}, id, ttl.Milliseconds()).Text()
	if err != nil {
		return "", unavailable(fmt.Errorf("claim request key: %w", err))
	}
	return got, nil
}
