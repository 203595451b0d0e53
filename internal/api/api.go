// Package api serves the session Manager over HTTP: the seed's routes on Go's ServeMux
// patterns, one JSON error shape written by one function, and the middleware every route
// shares (request id, panic recovery, access log, API keys, rate limits, metrics).
//
// A request goes through, in order: request id (X-Request-Id in and out) and client address
// → panic recovery, access log and latency metrics → path canonical check and route lookup
// (404/405 answered here, before any key is asked for) → API key (every route but /health,
// and /sweep, which checks its callers itself) → rate limit (create per client IP, the rest
// per key; /health and /sweep none) → the handler, which validates the whole input before it
// calls the Manager.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/clientip"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// HealthChecker reports each dependency's health by name ("redis", "kubernetes"); a nil error
// is healthy. *stack.Stack implements it.
type HealthChecker interface {
	Check(ctx context.Context) map[string]error
}

// HealthFunc adapts a function to HealthChecker.
type HealthFunc func(ctx context.Context) map[string]error

// Check calls f.
func (f HealthFunc) Check(ctx context.Context) map[string]error { return f(ctx) }

// StateCounter counts sessions by state, for GET /metrics and the sessions gauge.
type StateCounter interface {
	CountByState(ctx context.Context) (map[session.State]int, error)
}

// StateCounterFunc adapts a function to StateCounter.
type StateCounterFunc func(ctx context.Context) (map[session.State]int, error)

// CountByState calls f.
func (f StateCounterFunc) CountByState(ctx context.Context) (map[session.State]int, error) {
	return f(ctx)
}

// Deps are what the Server serves and checks. Manager is required; a nil Health reports no
// checks, a nil Limiter limits nothing, a nil Counter makes GET /metrics count sessions by
// paging the Manager's List. The operations routes are always served, so the routes never
// depend on the configuration: a part that is nil (or a Manager that is not a Toucher)
// makes its route answer 501 unimplemented.
type Deps struct {
	Manager session.Manager
	Health  HealthChecker
	Limiter RateLimiter
	Counter StateCounter
	Logger  *slog.Logger
	Now     func() time.Time
	// Usage answers GET /usage (*events.Recorder); nil when Firestore is not configured.
	Usage UsageReporter
	// Reconciler runs POST /reconcile (*sweep.ReconcileRunner).
	Reconciler Reconciler
	// Sweep serves POST /sweep (sweep.Handler). It authenticates its callers itself.
	Sweep http.Handler
	// WakeLink serves POST /session/{uuid}/wake-link (activator.WakeLinkRoute); nil when wake
	// on access is off.
	WakeLink func(http.ResponseWriter, *http.Request) error
}

// Options tune the Server. Zero values take the defaults noted.
type Options struct {
	// APIKeys are the accepted keys. With none, every authenticated route answers 401.
	APIKeys []string
	// CreateLimit is POST /session/create's limit per client IP per minute (100).
	CreateLimit int
	// KeyLimit is every other authenticated route's limit per API key per minute (1200).
	KeyLimit int
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes caps request bodies (1 MiB).
	MaxBodyBytes int64
	// HealthTimeout bounds GET /health's checks (3s).
	HealthTimeout time.Duration
}

// DefaultMaxBodyBytes is the default body cap.
const DefaultMaxBodyBytes = 1 << 20

func (o *Options) defaults() {
	if o.CreateLimit <= 0 {
		o.CreateLimit = 100
	}
	if o.KeyLimit <= 0 {
		o.KeyLimit = 1200
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = 3 * time.Second
	}
}

// limitScope says what a route's requests are counted against.
type limitScope int

const (
	limitNone limitScope = iota
	limitIP              // per client IP, Options.CreateLimit
	limitKey             // per API key, Options.KeyLimit
)

// route is one entry of the routing table.
type route struct {
	pattern string // "METHOD /path", a ServeMux pattern
	public  bool   // no API key
	limit   limitScope
	handle  func(w http.ResponseWriter, r *http.Request) error
}

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	m          session.Manager
	health     HealthChecker
	limiter    RateLimiter
	counter    StateCounter
	usage      UsageReporter
	reconciler Reconciler
	wakeLink   func(http.ResponseWriter, *http.Request) error
	sweep      http.Handler
	log        *slog.Logger
	now        func() time.Time
	opts       Options
	keys       keys
	mux        *http.ServeMux
	routes     []route
	metrics    *metrics
}

// New returns the API serving deps.Manager.
func New(deps Deps, opts Options) *Server {
	opts.defaults()
	s := &Server{
		m: deps.Manager, health: deps.Health, limiter: deps.Limiter, counter: deps.Counter,
		usage: deps.Usage, reconciler: deps.Reconciler, sweep: deps.Sweep, wakeLink: deps.WakeLink, log: deps.Logger, now: deps.Now, opts: opts, keys: newKeys(opts.APIKeys), mux: http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if rec, ok := s.usage.(*events.Recorder); ok && rec == nil {
		s.usage = nil // a nil *events.Recorder: Firestore is not configured
	}
	s.log = s.log.With("component", "api")
	if s.now == nil {
		s.now = time.Now
	}
	if len(s.keys.digests) == 0 {
		s.log.Warn("no API keys configured: every route but /health answers 401 (set API_KEYS or API_KEY)")
	}
	s.metrics = newMetrics(s)
	s.routes = []route{
		{pattern: "POST /session/create", limit: limitIP, handle: s.create},
		{pattern: "GET /session/{uuid}/status", limit: limitKey, handle: s.status},
		{pattern: "POST /session/{uuid}/sleep", limit: limitKey, handle: s.sleep},
		{pattern: "POST /session/{uuid}/wake", limit: limitKey, handle: s.wake},
		{pattern: "PATCH /session/{uuid}", limit: limitKey, handle: s.update},
		{pattern: "DELETE /session/{uuid}", limit: limitKey, handle: s.delete},
		{pattern: "GET /sessions", limit: limitKey, handle: s.list},
		{pattern: "GET /health", public: true, handle: s.healthz},
		{pattern: "GET /metrics", limit: limitKey, handle: s.metricsJSONOrText},
		{pattern: "GET /metrics/prometheus", limit: limitKey, handle: s.metricsText},
		{pattern: "POST /session/{uuid}/activity", limit: limitKey, handle: s.activity},
		{pattern: "POST /session/{uuid}/wake-link", limit: limitKey, handle: s.wakeLinkNow},
		{pattern: "GET /usage", limit: limitKey, handle: s.usageReport},
		{pattern: "POST /reconcile", limit: limitKey, handle: s.reconcileNow},
		// Public: the sweep checks Cloud Scheduler's OIDC token or an API key itself.
		{pattern: "POST /sweep", public: true, handle: s.sweepNow},
	}
	for _, rt := range s.routes {
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
	return s
}

// Routes lists the registered patterns ("METHOD /path"), in registration order.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.pattern
	}
	return out
}

// Handle registers an extra route on the Server (later features, such as the activator)
// with the same middleware as the built-in ones. public
// routes need no API key; the others are limited per key. It must be called before the
// Server serves.
func (s *Server) Handle(pattern string, public bool, h func(w http.ResponseWriter, r *http.Request) error) {
	rt := route{pattern: pattern, public: public, handle: h}
	if !public {
		rt.limit = limitKey
	}
	s.routes = append(s.routes, rt)
	s.mux.Handle(rt.pattern, s.wrap(rt))
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	rid := r.Header.Get(HeaderRequestID)
	if !validRequestID(rid) {
		rid = newRequestID()
	}
	w.Header().Set(HeaderRequestID, rid)
	ip := clientip.Of(r, s.opts.TrustedProxies)
	ctx := context.WithValue(r.Context(), ctxRequestID, rid)
	ctx = context.WithValue(ctx, ctxClientIP, ip)
	r = r.WithContext(ctx)
	rec := &recorder{ResponseWriter: w}
	pattern := "unmatched"

	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(ctx, "panic serving request", "request_id", rid, "panic", p, "stack", string(debug.Stack()))
			if rec.status == 0 {
				writeError(rec, r, s.log, &HTTPError{Status: http.StatusInternalServerError, Code: string(session.KindInternal), Message: "internal error"})
			}
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		d := s.now().Sub(start)
		s.metrics.observeRequest(pattern, status, d)
		attrs := []slog.Attr{
			slog.String("method", r.Method), slog.String("route", pattern), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Float64("duration_ms", float64(d.Microseconds())/1000),
			slog.Int64("bytes", rec.bytes), slog.String("request_id", rid), slog.String("client_ip", ip.String()),
		}
		if rec.errCode != "" {
			attrs = append(attrs, slog.String("error_code", rec.errCode))
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
	}()

	if err := checkPath(r); err != nil {
		writeError(rec, r, s.log, err)
		return
	}
	h, p := s.mux.Handler(r)
	if p == "" {
		writeError(rec, r, s.log, unmatched(h, r))
		return
	}
	pattern = p
	s.mux.ServeHTTP(rec, r)
}

// checkPath refuses a path that is not canonical ("..", ".", "//"), which ServeMux would
// answer with a redirect: under /session/ it is a malformed id, elsewhere no route.
func checkPath(r *http.Request) error {
	p := r.URL.EscapedPath()
	if p != "" && p == cleanPath(p) && r.Method != http.MethodConnect {
		return nil
	}
	if strings.HasPrefix(r.URL.Path, "/session/") {
		return session.Invalid("uuid", "session id must be %d characters of [a-z0-9] starting with a letter", session.IDLength)
	}
	return &HTTPError{Status: http.StatusNotFound, Code: CodeRouteNotFound, Message: "no such route"}
}

// cleanPath is net/http's: path.Clean, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// unmatched turns ServeMux's plain-text 404/405 into the API's errors (keeping Allow).
func unmatched(h http.Handler, r *http.Request) error {
	c := &capture{header: http.Header{}}
	h.ServeHTTP(c, r)
	if c.status == http.StatusMethodNotAllowed {
		allow := c.header.Get("Allow")
		return &HTTPError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
			Message: "method " + r.Method + " is not allowed here; allowed: " + allow, Allow: allow}
	}
	return &HTTPError{Status: http.StatusNotFound, Code: CodeRouteNotFound, Message: "no such route: " + r.Method + " " + r.URL.Path}
}

// capture records what a ServeMux fallback handler would answer.
type capture struct {
	header http.Header
	status int
}

func (c *capture) Header() http.Header { return c.header }
func (c *capture) WriteHeader(s int) {
	if c.status == 0 {
		c.status = s
	}
}
func (c *capture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}

// wrap applies a route's key check and rate limit, then runs its handler.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.admit(w, r, rt); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		if err := rt.handle(w, r.WithContext(actorFrom(r))); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// HeaderActor names the tool behind an authenticated caller, so durable events tell
// Terraform's changes from other API calls. Only "terraform" is believed; anything else (or
// nothing) records the change as "api".
const HeaderActor = "X-Hyperbola-Actor"

func actorFrom(r *http.Request) context.Context {
	if a := r.Header.Get(HeaderActor); a == "terraform" {
		return session.WithActor(r.Context(), a)
	}
	return r.Context()
}

// admit checks the API key and the rate limit of rt.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, rt route) error {
	var key string
	if !rt.public {
		key = apiKey(r)
		if !s.keys.match(key) {
			return errUnauthenticated
		}
	}
	switch rt.limit {
	case limitIP:
		return s.allow(w, r, "create:ip:"+ClientIP(r.Context()).String(), s.opts.CreateLimit, "create_ip")
	case limitKey:
		return s.allow(w, r, "key:"+keyID(key), s.opts.KeyLimit, "api_key")
	}
	return nil
}

// allow takes one request from the limit under key; the answer carries the RateLimit headers.
// A limiter that cannot answer (Redis down) refuses the request with 503: the limit is what
// keeps a flood of creates off the cluster, so it fails closed.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, key string, perMinute int, scope string) error {
	if s.limiter == nil {
		return nil
	}
	res, err := s.limiter.Allow(r.Context(), key, perMinute)
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
	if scope == "create_ip" {
		what = "session creations from this address"
	}
	return &HTTPError{Status: http.StatusTooManyRequests, Code: string(session.KindRateLimited),
		Message: "too many " + what + ": the limit is " + itoa(res.Limit) + " per minute", RetryAfter: retry}
}
