package sweep

import (
	"encoding/json"
	"net/http"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// errorBody is the API's one error shape (internal/wire), plus the sweep's report when a
// sweep ran and failed part-way.
type errorBody struct {
	wire.ErrorBody
	Report *Report `json:"report,omitempty"`
}

// Handler serves the sweep over HTTP: POST runs one sweep and answers 200 with its Report
// as JSON (a sweep skipped because another holds the lease is a 200 with "skipped":true).
// A request that auth refuses is a 401; another method a 405; a sweep that failed part-way
// (Redis unreachable, say) a 503 with the report under "report". Errors use the API's shape:
// {"error":{"code","message"},"request_id"}.
//
// The sweep runs within the request (no work after the response): its context is the
// request's, so a caller that gives up stops it between transitions, never within one.
func Handler(s *Sweeper, auth Authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := wire.EnsureRequestID(w, r)
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			wire.WriteError(w, r, s.log, &wire.Error{Code: wire.CodeMethodNotAllowed, Allow: http.MethodPost, Message: "the sweep answers POST only"})
			return
		}
		if auth == nil {
			wire.WriteError(w, r, s.log, &wire.Error{Code: wire.CodeUnauthenticated, Message: "the sweep has no authenticator"})
			return
		}
		caller, err := auth.Authenticate(r)
		if err != nil {
			s.log.WarnContext(r.Context(), "sweep request refused", "request_id", id, "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="hyperbola-sweep"`)
			wire.WriteError(w, r, s.log, &wire.Error{Code: wire.CodeUnauthenticated,
				Message: "an OIDC token from the sweep's service account (Authorization: Bearer) or an API key (X-API-Key) is required"})
			return
		}
		s.log.InfoContext(r.Context(), "sweep requested", "request_id", id, "caller", caller)
		rep, err := s.Run(r.Context())
		if err != nil {
			msg := "the sweep failed part-way; the next one carries on"
			if s.Err() != nil {
				msg = "the sweep is misconfigured: " + err.Error()
			}
			status, body := wire.Answer(w, r, s.log, &wire.Error{Code: string(session.KindUnavailable), Message: msg})
			wire.WriteJSON(w, status, errorBody{ErrorBody: body, Report: rep})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(rep)
	})
}
