package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// HeaderAPIKey carries the API key ("Authorization: Bearer <key>" is accepted too).
const HeaderAPIKey = wire.HeaderAPIKey

// authenticate admits a request to a route only with a key whose role the route names: 401
// without a valid key, 403 with a key of another role. The key's principal goes into the
// request's context. A public route takes no key; a route that checks its callers itself
// (POST /sweep: Cloud Scheduler's token) refuses a key of another role with 403 and passes
// everything else on.
func (s *Server) authenticate(rt route) middleware {
	if rt.public {
		return pass
	}
	return mw(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		p := s.keys.match(apiKey(r))
		exchangeOf(r.Context()).caller = p
		switch {
		case p == nil && rt.checksItself:
			next.ServeHTTP(w, r)
		case p == nil:
			wire.WriteError(w, r, s.log, errUnauthenticated)
		case !slices.Contains(rt.roles, p.Role):
			s.forbidden(w, r, p.Role)
		default:
			next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
		}
	})
}

var errUnauthenticated = &wire.Error{Code: wire.CodeUnauthenticated,
	Message: "a valid API key is required in the X-API-Key header"}

// forbidden answers 403 (code forbidden) to a key whose role the route does not admit.
func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, role Role) {
	wire.WriteError(w, r, s.log, &wire.Error{Code: wire.CodeForbidden,
		Message: "this API key's role (" + string(role) + ") may not call " + r.Method + " " + r.URL.Path})
}

// apiKey reads the key from X-API-Key, or from "Authorization: Bearer <key>" (what
// Prometheus' scrape config can send).
func apiKey(r *http.Request) string {
	if k := r.Header.Get(HeaderAPIKey); k != "" {
		return k
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// keyID is the key's name in rate-limit keys and logs: a digest prefix, never the key.
func keyID(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:12])
}
