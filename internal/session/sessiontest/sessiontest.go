// Package sessiontest is an in-memory fake of the session core's ports (session.Cluster,
// session.Store, session.Recorder) for unit tests, with a settable clock, per-method error
// injection and hooks to move the cluster along (a pod becomes ready, a backup Job ends).
//
// It follows the semantics the real adapters document (internal/kube, internal/store), kept
// small: every behaviour faked here is also proven against the real parts by the integration
// tests.
package sessiontest

import (
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

// faults holds the errors injected per method name ("Apply", "Put", ...).
type faults struct {
	mu   sync.Mutex
	errs map[string]error
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
