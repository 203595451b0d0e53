package api

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// healthRetryAfter is what a failed health check asks a prober to wait.
const healthRetryAfter = 5 * time.Second

// HealthResponse is GET /health's answer when every dependency is reachable.
type HealthResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// healthz serves GET /health (no API key): 200 {"status":"ok","checks":{...}} or 503 naming
// the dependencies that failed. The failures' details go to the log, not to the caller.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	if _, err := query(r); err != nil {
		return err
	}
	checks := map[string]string{}
	var failed []string
	if s.health != nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.HealthTimeout)
		defer cancel()
		for name, err := range s.health.Check(ctx) {
			if err == nil {
				checks[name] = "ok"
				continue
			}
			checks[name] = "unavailable"
			failed = append(failed, name)
			s.log.WarnContext(ctx, "health check failed", "check", name, "err", err, "request_id", wire.RequestID(ctx))
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return &wire.Error{Code: string(session.KindUnavailable), Message: strings.Join(failed, ", ") + " unavailable",
			Checks: checks, RetryAfter: healthRetryAfter}
	}
	wire.WriteJSON(w, http.StatusOK, HealthResponse{Status: "ok", Checks: checks})
	return nil
}
