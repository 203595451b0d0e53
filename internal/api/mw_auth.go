package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
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
		p := s.principal(r)
		exchangeOf(r.Context()).caller = p
		switch {
		case p == nil && rt.checksItself:
			next.ServeHTTP(w, r)
		case p == nil:
			wire.WriteError(w, r, s.log, s.authFailed(w, r))
		case !slices.Contains(rt.roles, p.Role):
			s.forbidden(w, r, p.Role)
		default:
			next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
		}
	})
}

// principal is the caller r's credential names, or nil: an activity credential (its prefix
// says so) is checked against Options.ActivityKey (an HMAC of its session id, no read), any
// other value against the keyring. An activity credential that does not verify (another
// key's, forged, or sent to a control plane without a key) is nil, so it takes the path of
// every invalid key: 401, counted by the failed-key budget.
func (s *Server) principal(r *http.Request) *Principal {
	k := apiKey(r)
	if activity.IsToken(k) {
		id, ok := activity.Parse(s.opts.ActivityKey, k)
		if !ok || session.CheckID(id) != nil {
			return nil
		}
		return activityPrincipal(id)
	}
	return s.keys.match(k)
}

// authFailed counts a request without a valid key against its client IP's budget
// (Options.AuthFailLimit a minute, in the limiter's own bucket) and answers what it gets: 401,
// or 429 with Retry-After once the address is over the budget.
//
// The rule: the key is compared first (in constant time, keyring.match) and only failures are
// counted, so a valid key is accepted whatever its address did; over the budget, requests
// without a valid key are refused before anything else is done for them. Refusing valid keys
// as well would let anyone who shares an address with a client (a NAT, or every caller when
// HYPERBOLA_TRUSTED_PROXIES is wrong) lock it out with 30 bad requests a minute. The price is
// that a right guess still succeeds over the budget: what keeps keys from being guessed is
// their length (random secrets); the budget bounds the cost, and the noise in the log, of
// floods of bad keys.
//
// A limiter that cannot answer (Redis down) fails open to the 401: the request is refused
// either way, and the route's own limit fails closed for requests that pass.
func (s *Server) authFailed(w http.ResponseWriter, r *http.Request) error {
	if s.limiter == nil {
		return errUnauthenticated
	}
	err := s.allow(w, r, "auth_failed:ip:"+ClientIP(r.Context()).String(), s.opts.AuthFailLimit, "auth_failed_ip")
	var refused *wire.Error
	if errors.As(err, &refused) {
		return err
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "rate limiter unavailable: failed key not counted", "err", err,
			"request_id", wire.RequestID(r.Context()))
	}
	return errUnauthenticated
}

var errUnauthenticated = &wire.Error{Code: wire.CodeUnauthenticated,
	Message: "a valid API key is required in the X-API-Key header"}

// forbidden answers 403 (code forbidden) to a key whose role the route does not admit.
func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, role Role) {
	msg := "this API key's role (" + string(role) + ") may not call " + r.Method + " " + r.URL.Path
	if role == RoleActivity {
		msg = "an activity credential may only call POST and GET /session/{uuid}/activity for its own session, not " + r.Method + " " + r.URL.Path
	}
	wire.WriteError(w, r, s.log, &wire.Error{Code: wire.CodeForbidden, Message: msg})
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
