package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"time"

	apiclient "github.com/hyperbola-in/terraform-provider-hyperbola/internal/client"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
)

// openDirect builds the session core in process (direct mode) and checks that Redis and the
// cluster answer, so a wrong address fails at configure with a clear message. The Manager it
// returns also reads the usage report from the stack's Firestore records, when it has some.
func openDirect(ctx context.Context, cfg *config.Config) (session.Manager, io.Closer, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := stack.New(ctx, cfg, stack.Parts{Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("building the session core: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	checks := st.Check(cctx)
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		if checks[n] != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, checks[n]))
		}
	}
	if len(errs) > 0 {
		_ = st.Close()
		return nil, nil, fmt.Errorf("direct mode cannot reach its dependencies (redis %s, namespace %q): %w",
			cfg.RedisAddr(), cfg.Namespace, errors.Join(errs...))
	}
	return directManager{Service: st.Service, events: st.Events}, st, nil
}

// openEndpoint builds the HTTP client of endpoint mode.
func openEndpoint(_ context.Context, endpoint, apiKey, userAgent string) (session.Manager, error) {
	c, err := apiclient.New(endpoint, apiKey, apiclient.WithUserAgent(userAgent))
	if err != nil {
		return nil, fmt.Errorf("endpoint mode: %w", err)
	}
	return c, nil
}
