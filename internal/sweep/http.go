package sweep

import (
	"encoding/json"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"net/http"
)

// errorBody is the API's one error shape (internal/api), plus the sweep's report when a
// sweep ran and failed part-way.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string  `json:"request_id"`
	Report    *Report `json:"report,omitempty"`
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
		id := api.EnsureRequestID(w, r)
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "the sweep answers POST only", id, nil)
			return
		}
		if auth == nil {
			writeError(w, http.StatusUnauthorized, "unauthenticated", "the sweep has no authenticator", id, nil)
			return
		}
		caller, err := auth.Authenticate(r)
		if err != nil {
			s.log.WarnContext(r.Context(), "sweep request refused", "request_id", id, "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="hyperbola-sweep"`)
			writeError(w, http.StatusUnauthorized, "unauthenticated",
				"an OIDC token from the sweep's service account (Authorization: Bearer) or an API key (X-API-Key) is required", id, nil)
			return
		}
		s.log.InfoContext(r.Context(), "sweep requested", "request_id", id, "caller", caller)
		rep, err := s.Run(r.Context())
		if err != nil {
			msg := "the sweep failed part-way; the next one carries on"
			if s.Err() != nil {
				msg = "the sweep is misconfigured: " + err.Error()
			}
			writeError(w, http.StatusServiceUnavailable, "unavailable", msg, id, rep)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(rep)
	})
}

func writeError(w http.ResponseWriter, status int, code, msg, requestID string, rep *Report) {
	var b errorBody
	b.Error.Code, b.Error.Message, b.RequestID, b.Report = code, msg, requestID, rep
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}
