package sessiontest

import (
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Fakes are the session core's ports on one clock.
type Fakes struct {
	Clock    *Clock
	Cluster  *Cluster
	Store    *Store
	Recorder *Recorder
}

// New returns empty fakes on a clock standing at Epoch.
func New() *Fakes {
	clk := NewClock()
	return &Fakes{Clock: clk, Cluster: NewCluster(clk.Now), Store: NewStore(clk.Now), Recorder: &Recorder{}}
}

// Service returns the real session.Service on the fakes. Unset options take the fakes' clock
// and recorder, a silent logger and a short lock wait (a busy lock answers in milliseconds).
func (f *Fakes) Service(opts session.Options) *session.Service {
	if opts.Now == nil {
		opts.Now = f.Clock.Now
	}
	if opts.Recorder == nil {
		opts.Recorder = f.Recorder
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.LockWait == 0 {
		opts.LockWait = 20 * time.Millisecond
	}
	return session.NewService(f.Cluster, f.Store, opts)
}

// Seed puts sessions as they would be after their last transition: the record in the store
// and, unless deleted, the six objects in the cluster, scaled up (and ready when running)
// while awake.
func (f *Fakes) Seed(ss ...*session.Session) {
	for _, sess := range ss {
		if err := f.Store.Seed(sess); err != nil {
			panic(err)
		}
		if sess.State == session.StateDeleted {
			continue
		}
		o := &session.Observed{ID: sess.ID, UserID: sess.UserID, Labels: sess.Labels, Created: sess.CreatedAt,
			IdleTimeout: sess.IdleTimeout.D(), Kinds: slices.Clone(session.WorkspaceKinds), Complete: true,
			Ready: sess.State == session.StateRunning, Image: sess.Image, Storage: sess.Storage, CPU: sess.CPU, Memory: sess.Memory}
		if sess.State.Awake() {
			o.DesiredReplicas = 1
		}
		f.Cluster.Add(o)
	}
}
