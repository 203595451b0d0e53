// Package sessiontest is an in-memory fake of the session core's ports (session.Cluster,
// session.Store, session.Recorder) for unit tests, with a settable clock, per-method error
// injection and hooks to move the cluster along (a pod becomes ready, a backup Job ends).
//
// It follows the semantics the real adapters document (internal/kube, internal/store), kept
// small: every behaviour faked here is also proven against the real parts by the integration
// tests.
package sessiontest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// Clock is a settable clock: time moves only when the test moves it.
type Clock = testenv.Clock

// Epoch is where NewClock starts.
var Epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// NewClock returns a clock standing at Epoch.
func NewClock() *Clock { return testenv.NewClock(Epoch) }

// faults holds the errors injected and the stalls set per method name ("Apply", "Put", ...).
type faults struct {
	mu     sync.Mutex
	errs   map[string]error
	stalls map[string]*stall
}

// stall holds the calls of one method until released.
type stall struct {
	entered  chan struct{}
	released chan struct{}
}

// Stall makes the calls of method wait (as a request stuck on the network does) until release
// is called, or until their context ends: then they return its error and change nothing, as
// a client that gave up does. Released calls go on as usual. entered receives once for each
// call that starts waiting. Calling release again does nothing.
func (f *faults) Stall(method string) (entered <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stalls == nil {
		f.stalls = map[string]*stall{}
	}
	st := &stall{entered: make(chan struct{}, 64), released: make(chan struct{})}
	f.stalls[method] = st
	var once sync.Once
	return st.entered, func() {
		once.Do(func() {
			f.mu.Lock()
			if f.stalls[method] == st {
				delete(f.stalls, method)
			}
			f.mu.Unlock()
			close(st.released)
		})
	}
}

// call starts a call of method: it waits out a stall, then answers the fault injected.
func (f *faults) call(ctx context.Context, method string) error {
	f.mu.Lock()
	st := f.stalls[method]
	f.mu.Unlock()
	if st != nil {
		select {
		case st.entered <- struct{}{}:
		default:
		}
		select {
		case <-st.released:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", method, ctx.Err())
		}
	}
	return f.err(method)
}

// Fail makes every later call of method return err; a nil err clears it.
func (f *faults) Fail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.errs == nil {
		f.errs = map[string]error{}
	}
	if err == nil {
		delete(f.errs, method)
		return
	}
	f.errs[method] = err
}

func (f *faults) err(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.errs[method]
}

// filter returns the xs keep accepts, in order.
func filter[T any](xs []T, keep func(T) bool) []T {
	var out []T
	for _, x := range xs {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}
