package sweep

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/api/idtoken"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
)

// OptionsFromConfig takes the sweep's settings from the configuration: the namespace, port
// and domain the probe URL template is filled with. The template itself stays the default
// (in-cluster Service) unless the caller sets ProbeURL (PublicProbeURL from outside the
// cluster).
func OptionsFromConfig(cfg *config.Config) Options {
	return Options{Namespace: cfg.Namespace, Port: cfg.UserPodPort, Domain: cfg.Domain}
}

// FromStack returns a Sweeper on the stack's Service and Store, with the Service's clock and
// the stack's logger. Check Err before serving.
func FromStack(st *stack.Stack, opts Options) *Sweeper {
	return New(Deps{
		Sessions: st.Service,
		Store:    st.Store,
		Now:      st.Service.Options().Now,
		Logger:   st.Logger,
	}, opts)
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
