package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/ratelimit"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// RateResult is a rate limiter's decision.
type RateResult = ratelimit.Result

// RateLimiter admits requests against a per-minute limit shared by every instance.
// *ratelimit.Limiter implements it.
type RateLimiter interface {
	Allow(ctx context.Context, key string, perMinute int) (RateResult, error)
}

// RateLimiterFunc adapts a function to RateLimiter.
type RateLimiterFunc func(ctx context.Context, key string, perMinute int) (RateResult, error)

// Allow calls f.
func (f RateLimiterFunc) Allow(ctx context.Context, key string, perMinute int) (RateResult, error) {
	return f(ctx, key, perMinute)
}

var _ RateLimiter = (*ratelimit.Limiter)(nil)

// rateLimit takes one request from the route's limit: creates per client IP, the probes
// (/health, /ready) per client IP and route, an activity credential per session
// (Options.ActivityLimit), the rest per API key (after authenticate, so the key is a valid one).
func (s *Server) rateLimit(rt route) middleware {
	if rt.limit == limitNone || s.limiter == nil {
		return pass
	}
	_, path, _ := strings.Cut(rt.pattern, " ")
	return mw(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		ip := ClientIP(r.Context()).String()
		key, perMinute, scope := "key:"+keyID(apiKey(r)), s.opts.KeyLimit, "api_key"
		if p := PrincipalOf(r.Context()); p != nil && p.Role == RoleActivity {
			// one session's credential, whatever key derived it
			key, perMinute, scope = "activity:"+p.Session, s.opts.ActivityLimit, "activity_session"
		}
		switch rt.limit {
		case limitIP:
			key, perMinute, scope = "create:ip:"+ip, s.opts.CreateLimit, "create_ip"
		case limitProbe:
			if s.fromProxy(r) {
				// The platform's own probes (Cloud Run's come from its link-local front end,
				// without X-Forwarded-For) share one address across every instance: counted,
				// enough instances would see their liveness refused and be restarted. A caller
				// resolves to a trusted proxy's address only if it is one.
				next.ServeHTTP(w, r)
				return
			}
			key, perMinute, scope = "probe:"+strings.TrimPrefix(path, "/")+":ip:"+ip, s.opts.ProbeLimit, "probe_ip"
		}
		if rt.limit == limitKeyRead && s.limitRidesReads {
			if rl, ok := s.limiter.(riderLimiter); ok {
				s.rideLimit(w, r, next, rl, key, perMinute, scope)
				return
			}
		}
		err := s.allow(w, r, key, perMinute, scope)
		var refused *wire.Error
		if err != nil && rt.limit == limitProbe && !errors.As(err, &refused) {
			// The probes fail open: a limiter that cannot answer (Redis down) must not make
			// liveness depend on Redis, and /ready reports Redis itself.
			s.log.WarnContext(r.Context(), "rate limiter unavailable: probe admitted", "err", err,
				"request_id", wire.RequestID(r.Context()))
			err = nil
		}
		if err != nil {
			wire.WriteError(w, r, s.log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// riderLimiter is a RateLimiter whose decision can ride on the request's first read
// (*ratelimit.Limiter).
type riderLimiter interface {
	Pending(key string, perMinute int, decided func(RateResult, error) error) *ratelimit.Pending
}

var _ riderLimiter = (*ratelimit.Limiter)(nil)

// rideLimit serves a limitKeyRead route: the decision under key is taken by the store's first
// read of the request, in the same round trip, and a refusal is what that read returns (so
// the handler answers the 429, having done nothing). A request whose handler read nothing
// (bad input) is counted after its answer.
func (s *Server) rideLimit(w http.ResponseWriter, r *http.Request, next http.Handler, rl riderLimiter,
	key string, perMinute int, scope string) {
	p := rl.Pending(key, perMinute, func(res RateResult, err error) error {
		return s.decide(w, r, res, err, scope)
	})
	ctx := ratelimit.WithPending(r.Context(), p)
	next.ServeHTTP(w, r.WithContext(ctx))
	if err := p.Take(ctx); err != nil {
		s.log.DebugContext(ctx, "request counted after its answer", "err", err, "request_id", wire.RequestID(ctx))
	}
}

// allow takes one request from the limit under key; the answer carries the RateLimit headers.
// Over the limit it is a *wire.Error (429). A limiter that cannot answer (Redis down) is a
// session error (503): the limit is what keeps a flood of creates off the cluster, so callers
// fail closed unless they say why not.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, key string, perMinute int, scope string) error {
	res, err := s.limiter.Allow(r.Context(), key, perMinute)
	return s.decide(w, r, res, err, scope)
}

// decide is what a decision means for the request: the RateLimit headers, then nil, a 429
// (*wire.Error) or, for a limiter that could not answer, a 503.
func (s *Server) decide(w http.ResponseWriter, r *http.Request, res RateResult, err error, scope string) error {
	if err != nil {
		return session.Unavailable("rate limiter", err)
	}
	setRateHeaders(w.Header(), res)
	if res.Allowed {
		return nil
	}
	s.metrics.rateLimited(scope)
	retry := res.RetryAfter
	if retry <= 0 {
		retry = time.Second
	}
	what := "requests with this API key"
	switch scope {
	case "create_ip":
		what = "session creations from this address"
	case "probe_ip":
		what = "probes of " + r.URL.Path + " from this address"
	case "auth_failed_ip":
		what = "requests without a valid API key from this address"
	case "activity_session":
		what = "requests with this session's activity credential"
	}
	return &wire.Error{Code: string(session.KindRateLimited), RetryAfter: retry,
		Message: "too many " + what + ": the limit is " + strconv.Itoa(res.Limit) + " per minute"}
}

func setRateHeaders(h http.Header, res RateResult) {
	h.Set("RateLimit-Limit", strconv.Itoa(res.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(res.Remaining, 0)))
	h.Set("RateLimit-Reset", strconv.Itoa(wire.CeilSeconds(res.ResetAfter)))
}

// fromProxy reports whether the request's client address is a trusted proxy's own.
func (s *Server) fromProxy(r *http.Request) bool {
	ip := ClientIP(r.Context())
	for _, p := range s.opts.TrustedProxies {
		if ip.IsValid() && p.Contains(ip) {
			return true
		}
	}
	return false
}
