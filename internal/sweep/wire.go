package sweep

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/api/idtoken"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
)

// OptionsFromConfig takes the sweep's settings from the configuration: the probe URL
// template (HYPERBOLA_SWEEP_PROBE_URL; "" keeps DefaultProbeURL, the in-cluster Service; a
// control plane outside the cluster, on Cloud Run, sets PublicProbeURL) and the namespace,
// port and domain it is filled with, and how often a sweep reconciles
// (HYPERBOLA_RECONCILE_EVERY; 0 never).
func OptionsFromConfig(cfg *config.Config) Options {
	o := Options{ProbeURL: cfg.SweepProbeURL, Namespace: cfg.Namespace, Port: cfg.UserPodPort, Domain: cfg.Domain,
		ReconcileEvery: cfg.ReconcileEvery}
	if o.ReconcileEvery == 0 {
		o.ReconcileEvery = -1 // off (Options reads 0 as its default)
	}
	return o
}

// FromStack returns a Sweeper on the stack's Service and Store, with the Service's clock and
// the stack's logger; it flushes the stack's queued durable events (when Firestore is
// configured) and reconciles with ReconcilerFromStack. Check Err before serving.
func FromStack(st *stack.Stack, opts Options) *Sweeper {
	deps := Deps{
		Sessions:   st.Service,
		Store:      st.Store,
		Now:        st.Service.Options().Now,
		Logger:     st.Logger,
		Reconciler: ReconcilerFromStack(st),
	}
	if st.Events != nil { // never a nil *events.Recorder in the interface
		deps.Flusher = st.Events
	}
	return New(deps, opts)
}

// AuthFromConfig returns the sweep's Auth: the API's keys (API_KEYS, API_KEY) and, when
// SWEEP_OIDC_AUDIENCE and SWEEP_OIDC_SERVICE_ACCOUNT are set, Cloud Scheduler's OIDC tokens
// checked against Google's public keys.
func AuthFromConfig(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Auth, error) {
	o := AuthOptions{
		APIKeys: cfg.APIKeys, Audience: cfg.SweepOIDCAudience, ServiceAccount: cfg.SweepOIDCServiceAccount,
		Logger: log,
	}
	if o.Audience != "" {
		v, err := idtoken.NewValidator(ctx)
		if err != nil {
			return nil, fmt.Errorf("sweep auth: ID token validator: %w", err)
		}
		o.Validator = v
	}
	return NewAuth(o)
}
