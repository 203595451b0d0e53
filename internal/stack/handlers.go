package stack

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activator"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// Handlers are the control plane's HTTP front doors.
type Handlers struct {
	// API is the HTTP API at the root (/session/create, ..., /reconcile, /sweep); with wake on
	// access on, requests for a workspace's host go to the activator instead.
	API http.Handler
	// Sweep runs one sweep per POST (IdleSweep; the API serves the same one at POST /sweep).
	Sweep http.Handler
}

// Handlers builds the front doors on the stack's parts. Nothing is contacted; the context
// outlives no request and may be the process's (Google's token validator keeps it).
func (s *Stack) Handlers(ctx context.Context) (*Handlers, error) {
	sw, err := s.sweepHandler(ctx)
	if err != nil {
		return nil, err
	}
	opts, err := APIOptions(s.Config)
	if err != nil {
		return nil, fmt.Errorf("API options: %w", err)
	}
	opts.RequestTTL = s.Service.Options().RequestTTL // a create's key is bound to its body as long as the core keeps it
	act, err := s.activator()
	if err != nil {
		return nil, fmt.Errorf("activator: %w", err)
	}
	deps := api.Deps{
		Manager:    s.Service, // an api.Toucher too: POST /session/{uuid}/activity
		Health:     s,
		Limiter:    s.Limiter,
		Stuck:      s.Store, // hyperbola_sessions_stuck, hyperbola_session_stuck_seconds
		Logger:     s.Logger,
		Usage:      s.durable().usage, // nil: GET /usage answers 501 without Firestore
		Reconciler: s.Reconciler,
		Sweep:      sw, // POST /sweep: the same sweep as IdleSweep
		// the Service's clock: the activity routes' "now" is the one their deadlines and the
		// sweep are on (the IDE times its notice by sleep_at - now)
		Now: s.Service.Options().Now,
	}
	if s.Store != nil {
		deps.Claims = s.Store // binds a create's idempotency key to its body
		// The Service reads through the Store, on the Limiter's Redis: status and list take
		// their rate-limit decision in the round trip of their read.
		deps.LimitRidesReads = true
	}
	if act != nil {
		deps.WakeLink = activator.WakeLinkRoute(s.Service, []byte(s.Config.WakeSecret), nil)
	}
	return &Handlers{API: activator.Dispatch(api.New(deps, opts), act), Sweep: sw}, nil
}

// Sweeper is the sweep on the stack's Service and Store, with the Service's clock: it flushes
// the queued durable events (with Firestore) and runs the stack's Reconciler once every
// HYPERBOLA_RECONCILE_EVERY (never when that is 0). Check its Err before serving.
func (s *Stack) Sweeper() *sweep.Sweeper {
	deps := sweep.Deps{
		Sessions: s.Service,
		Store:    s.Store,
		Now:      s.Service.Options().Now,
		Logger:   s.Logger,
		Flusher:  s.durable().flusher,
		PodAddrs: s.Cluster, // listed only when the probe URL names the pod's address ({pod_ip})
		Warmer:   s.Cluster, // every sweep: sized zero (the default) it removes the warm path
		Gateway:  s.Cluster, // every sweep: a no-op in ingress routing
	}
	if s.Config.WarmVolumes > 0 {
		deps.VolumePool = s.Cluster
	}
	if s.Config.ReconcileEvery > 0 {
		deps.Reconciler = s.Reconciler
	}
	return sweep.New(deps, SweepOptions(s.Config))
}

// sweepHandler is the sweep over HTTP behind its own authentication.
func (s *Stack) sweepHandler(ctx context.Context) (http.Handler, error) {
	ao, err := sweepAuthOptions(ctx, s.Config)
	if err != nil {
		return nil, err
	}
	ao.Logger = s.Logger
	auth, err := sweep.NewAuth(ao)
	if err != nil {
		return nil, err
	}
	sw := s.Sweeper()
	if err := sw.Err(); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	return sweep.Handler(sw, auth), nil
}

// activator is wake on access's handler for workspace hosts; nil when it is off
// (config.Config.WakeOnAccess).
func (s *Stack) activator() (*activator.Handler, error) {
	if !s.Config.WakeOnAccess() {
		return nil, nil
	}
	opts, err := ActivatorOptions(s.Config)
	if err != nil {
		return nil, err
	}
	h, err := activator.New(activator.Deps{Sessions: s.Service, Passwords: s.Cluster, Limiter: s.Limiter, Logger: s.Logger}, opts)
	if err != nil {
		return nil, fmt.Errorf("wake on access (HYPERBOLA_WAKE_SECRET must be at least %d bytes, e.g. openssl rand -base64 48): %w", activator.MinSecret, err)
	}
	return h, nil
}
