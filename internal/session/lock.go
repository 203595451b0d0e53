package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Why the work under a session's lock was cut short (context.Cause of its context). Each is an
// *Error, so a request cut short answers with its kind (a retry is safe: nothing was written
// after the cut).
var (
	// errLockLost: an extension found the lock gone (it expired and may be another's).
	errLockLost = &Error{Kind: KindBusy, Message: "the session's lock was lost while this change ran " +
		"(another change may hold it now); nothing more was written"}
	// errLockUnconfirmed: Redis did not confirm the lock for most of its TTL.
	errLockUnconfirmed = &Error{Kind: KindUnavailable, Message: "redis unavailable: the session's lock could not be " +
		"extended, so this change stopped before the lock could expire"}
	// errTransitionTimeout: the work ran past Options.TransitionTimeout.
	errTransitionTimeout = &Error{Kind: KindUnavailable, Message: "the change ran past its deadline " +
		"(a dependency is slow); it stopped, and the next touch resumes it"}
)

type lockKey struct{}

// lockOf returns the lock the work with ctx holds, nil outside a transition.
func lockOf(ctx context.Context) Lock {
	l, _ := ctx.Value(lockKey{}).(Lock)
	return l
}

// lock takes session id's lock, waiting up to wait, and returns the context for the work
// under it (see hold) and the func that ends the work and releases the lock.
func (s *Service) lock(ctx context.Context, id string, wait time.Duration) (context.Context, func(), error) {
	l, err := s.store.Lock(ctx, id, s.opts.LockTTL, wait)
	if err != nil {
		return nil, nil, err
	}
	ctx, end := s.hold(ctx, l)
	return ctx, end, nil
}

// hold returns the context for work done under l, and end, which stops it and releases l.
//
// Three things keep such work from outliving the lock, so that a transition that stalls (a
// Kubernetes call that hangs, a paused process) can never act on a session another
// transition has taken over since:
//   - the context ends at Options.TransitionTimeout (by default shorter than the lock's TTL);
//   - the lock is extended every third of its TTL while the work runs, and the context ends
//     when an extension finds the lock gone, or when none has confirmed it for three quarters
//     of its TTL (Redis unreachable: the lock may be about to expire), so the work's
//     deadline is always shorter than the lock's life;
//   - every record write checks the lock's token atomically (Store.Put with the lock that
//     the context carries), so a holder that lost its lock writes nothing, even one whose
//     write was already on its way.
func (s *Service) hold(parent context.Context, l Lock) (context.Context, func()) {
	ttl := s.opts.LockTTL
	confirmFor := ttl * 3 / 4
	ctx, cancelDeadline := context.WithTimeoutCause(parent, s.opts.TransitionTimeout, errTransitionTimeout)
	ctx, cancel := context.WithCancelCause(ctx)
	ctx = context.WithValue(ctx, lockKey{}, l)
	unconfirmed := time.AfterFunc(confirmFor, func() { cancel(errLockUnconfirmed) })
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			sent := time.Now()
			ectx, done := context.WithTimeout(context.WithoutCancel(ctx), ttl/4)
			ok, err := l.Extend(ectx, ttl)
			done()
			switch {
			case err != nil: // the unconfirmed timer ends the work if this goes on
				s.log.Warn("extending a session lock", "err", err)
			case !ok:
				cancel(errLockLost)
				return
			default:
				unconfirmed.Reset(confirmFor - time.Since(sent))
			}
		}
	})
	return ctx, func() {
		close(quit)
		wg.Wait()
		unconfirmed.Stop()
		cancel(nil)
		cancelDeadline()
		s.unlock(l)
	}
}

// cut explains err when the work under a lock was cut short: the cut is what the caller
// needs to know (its kind decides the answer), the call that failed is the detail.
func cut(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	var why *Error
	if cause := context.Cause(ctx); errors.As(cause, &why) && !errors.Is(err, why) {
		return fmt.Errorf("%w (%w)", why, err)
	}
	return err
}

// unlock releases a lock even when the request's context is done.
func (s *Service) unlock(l Lock) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Release(ctx); err != nil {
		s.log.Warn("releasing session lock", "err", err)
	}
}
