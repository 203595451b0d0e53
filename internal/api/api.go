// Package api serves the session Manager over HTTP: the seed's routes on Go's ServeMux
// patterns, errors in the one shape of internal/wire, and the middleware every route shares,
// one concern per file (mw_*.go), composed in Server.requestChain and Server.routeChain.
//
// A request goes through, in order: request id (X-Request-Id in and out) → client address →
// access log and latency metrics → panic recovery → path canonical check → route lookup
// (404/405 answered here, before any key is asked for) → API key and role (every route names
// the roles it admits in the routing table below; /health and /ready take no key, and /sweep
// checks its callers itself; a session's activity credential, role activity, is admitted on
// that session's activity routes only: principal.go, mw_auth.go, activity.go; requests without
// a valid key are counted per client IP, 429 over Options.AuthFailLimit) → rate limit (create,
// /health and /ready per client IP, an activity credential per session, the rest per key;
// /sweep none) → actor → the handler, which decodes its input
// (decode.go) and calls the Manager, whose Service checks every value first thing (the
// session core's request checks), so a bad value is a 400 naming its field either way.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
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

// StuckReader reads the sessions stuck in one pending step (*store.Store): those whose step
// began before before, the oldest first, at most limit, and how many there are in all.
type StuckReader interface {
	Stuck(ctx context.Context, before time.Time, limit int) ([]*session.Session, int, error)
}

// Deps are what the Server serves and checks. Manager is required; a nil Health reports no
// checks, a nil Limiter limits nothing, a nil Counter makes GET /metrics count sessions by
// paging the Manager's List, a nil Stuck leaves the stuck-session series out of the
// Prometheus exposition. The operations routes are always served, so the routes never
// depend on the configuration: a part that is nil (or a Manager that is not a Toucher)
// makes its route answer 501 unimplemented.
type Deps struct {
	Manager session.Manager
	Health  HealthChecker
	Limiter RateLimiter
	// LimitRidesReads: the Manager's reads take the request's rate-limit decision
	// (ratelimit.Pending) in their own round trip, as session.Service on *store.Store does, so
	// the read routes (status, list) cost one Redis round trip, not two. Only with a Limiter
	// that makes such decisions (*ratelimit.Limiter); otherwise every route is decided first.
	LimitRidesReads bool
	Counter         StateCounter
	// Stuck feeds hyperbola_sessions_stuck and hyperbola_session_stuck_seconds.
	Stuck  StuckReader
	Logger *slog.Logger
	Now    func() time.Time
	// Usage answers GET /usage (*events.Recorder); nil when Firestore is not configured.
	Usage UsageReporter
	// Reconciler runs POST /reconcile (*sweep.ReconcileRunner).
	Reconciler Reconciler
	// Sweep serves POST /sweep (sweep.Handler). It authenticates its callers itself.
	Sweep http.Handler
	// WakeLink serves POST /session/{uuid}/wake-link (activator.WakeLinkRoute); nil when wake
	// on access is off.
	WakeLink func(http.ResponseWriter, *http.Request) error
	// Claims binds a create's idempotency key to its body (*store.Store): a key reused with
	// another body is a 409. Nil binds nothing (the key is still scoped to the caller).
	Claims RequestClaimer
}

// Options tune the Server. Zero values take the defaults noted.
type Options struct {
	// APIKeys are accepted keys of role admin (API_KEYS, API_KEY). With none here and in Keys,
	// every authenticated route answers 401.
	APIKeys []string
	// Keys are the named keys with their roles (API_KEYS_JSON, HYPERBOLA_API_KEYS_FILE),
	// checked by CheckKeys.
	Keys []Key
	// RequestTTL is how long a create's idempotency key stays bound to its body: the session
	// core's (session.Options.RequestTTL, 24h).
	RequestTTL time.Duration
	// CreateLimit is POST /session/create's limit per client IP per minute (100).
	CreateLimit int
	// KeyLimit is every other authenticated route's limit per API key per minute (1200).
	KeyLimit int
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes caps request bodies (1 MiB).
	MaxBodyBytes int64
	// HealthTimeout bounds GET /ready's checks (3s).
	HealthTimeout time.Duration
	// ReadyCacheTTL is how long GET /ready's answer is served again before its dependencies
	// are asked anew (5s).
	ReadyCacheTTL time.Duration
	// ProbeLimit is GET /health's and GET /ready's limit per client IP per minute, each its own
	// (120).
	ProbeLimit int
	// AuthFailLimit is how many requests without a valid API key one client IP may make per
	// minute before the next ones are refused with 429 (30).
	AuthFailLimit int
	// StuckAfter is how long a session may stay in one pending step before /metrics counts it
	// as stuck (30m, as the sweep's).
	StuckAfter time.Duration
	// ActivityKey checks the activity credentials (HYPERBOLA_ACTIVITY_KEY): a workspace's IDE
	// extension sends its session's, activity.Token(ActivityKey, id). Empty, every credential
	// is refused as an invalid key (401).
	ActivityKey []byte
	// ActivityLimit is the activity routes' limit per minute for one session's activity
	// credential (DefaultActivityLimit); API keys keep KeyLimit there.
	ActivityLimit int
}

// DefaultMaxBodyBytes is the default body cap.
const DefaultMaxBodyBytes = 1 << 20

// The probes' and the failed keys' defaults. A prober asks every few seconds, so 120 a minute
// per address leaves room for several behind one address; 30 wrong keys a minute is far more
// than a misconfigured client retrying needs, and far too few to guess a key.
const (
	DefaultReadyCacheTTL = 5 * time.Second
	DefaultProbeLimit    = 120
	DefaultAuthFailLimit = 30
)

// DefaultActivityLimit is Options.ActivityLimit's default. The IDE extension of each browser
// window reports at most twice a minute (use, a busy CPU) and reads its state every few
// minutes (more often only in the minute before a sleep): 30 a minute leaves room for several
// windows on one workspace and their retries, and bounds what a leaked credential can cost.
const DefaultActivityLimit = 30

// DefaultStuckAfter is Options.StuckAfter's default (the sweep's, sweep.DefaultStuckAfter).
const DefaultStuckAfter = 30 * time.Minute

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
	if o.ReadyCacheTTL <= 0 {
		o.ReadyCacheTTL = DefaultReadyCacheTTL
	}
	if o.ProbeLimit <= 0 {
		o.ProbeLimit = DefaultProbeLimit
	}
	if o.AuthFailLimit <= 0 {
		o.AuthFailLimit = DefaultAuthFailLimit
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = DefaultStuckAfter
	}
	if o.RequestTTL <= 0 {
		o.RequestTTL = 24 * time.Hour
	}
	if o.ActivityLimit <= 0 {
		o.ActivityLimit = DefaultActivityLimit
	}
}

// limitScope says what a route's requests are counted against.
type limitScope int

const (
	limitNone limitScope = iota
	limitIP              // per client IP, Options.CreateLimit
	limitKey             // per API key, Options.KeyLimit
	// limitKeyRead is limitKey decided in the round trip of the request's first read (a read
	// route whose handler does nothing before it reads the store): ratelimit.Pending.
	limitKeyRead
	limitProbe // per client IP and route, Options.ProbeLimit; fails open
)

// route is one entry of the routing table.
type route struct {
	pattern string // "METHOD /path", a ServeMux pattern
	public  bool   // no API key
	roles   []Role // the keys' roles it admits (a tenant's only for its users)
	// checksItself: a request without a key of ours goes on to the handler, which checks the
	// caller itself (POST /sweep and Cloud Scheduler's OIDC token).
	checksItself bool
	limit        limitScope
	handle       func(w http.ResponseWriter, r *http.Request) error
}

// The roles a route admits.
var (
	adminOnly      = []Role{RoleAdmin}
	adminOrTenant  = []Role{RoleAdmin, RoleTenant}
	adminOrMetrics = []Role{RoleAdmin, RoleMetrics}
	adminOrSweep   = []Role{RoleAdmin, RoleSweep}
	// a session's activity credential is admitted here only, for its own session (scope.go)
	adminTenantOrActivity = []Role{RoleAdmin, RoleTenant, RoleActivity}
)

// Server is the HTTP API. It is an http.Handler.
type Server struct {
	m               session.Manager
	health          HealthChecker
	limiter         RateLimiter
	limitRidesReads bool
	counter         StateCounter
	stuck           StuckReader
	usage           UsageReporter
	reconciler      Reconciler
	wakeLink        func(http.ResponseWriter, *http.Request) error
	sweep           http.Handler
	log             *slog.Logger
	now             func() time.Time
	opts            Options
	keys            keyring
	claims          RequestClaimer
	mux             *http.ServeMux
	routes          []route
	metrics         *metrics
	ready           *readiness
	handler         http.Handler // requestChain()
}

// New returns the API serving deps.Manager.
func New(deps Deps, opts Options) *Server {
	opts.defaults()
	s := &Server{
		m: deps.Manager, health: deps.Health, limiter: deps.Limiter, limitRidesReads: deps.LimitRidesReads, counter: deps.Counter, stuck: deps.Stuck,
		usage: deps.Usage, reconciler: deps.Reconciler, sweep: deps.Sweep, wakeLink: deps.WakeLink, claims: deps.Claims, log: deps.Logger, now: deps.Now, opts: opts,
		keys: newKeyring(opts.APIKeys, opts.Keys), mux: http.NewServeMux(),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "api")
	if s.now == nil {
		s.now = time.Now
	}
	if len(s.keys.digests) == 0 {
		s.log.Warn("no API keys configured: every route but /health and /ready answers 401 (set API_KEYS, API_KEYS_JSON or HYPERBOLA_API_KEYS_FILE)")
	}
	s.metrics = newMetrics(s)
	s.ready = &readiness{health: s.health, ttl: opts.ReadyCacheTTL, timeout: opts.HealthTimeout, now: s.now,
		logf: func(ctx context.Context, name string, err error) {
			s.log.WarnContext(ctx, "health check failed", "check", name, "err", err, "request_id", wire.RequestID(ctx))
		}}
	s.handler = s.requestChain()
	// The one routing table: every route, the roles it admits and what it is limited by. A
	// tenant's requests are further scoped to its users by the handlers (scope.go).
	s.routes = []route{
		{pattern: "POST /session/create", roles: adminOrTenant, limit: limitIP, handle: s.create},
		{pattern: "GET /session/{uuid}/status", roles: adminOrTenant, limit: limitKeyRead, handle: s.status},
		{pattern: "POST /session/{uuid}/sleep", roles: adminOrTenant, limit: limitKey, handle: s.sleep},
		{pattern: "POST /session/{uuid}/wake", roles: adminOrTenant, limit: limitKey, handle: s.wake},
		{pattern: "PATCH /session/{uuid}", roles: adminOrTenant, limit: limitKey, handle: s.update},
		{pattern: "DELETE /session/{uuid}", roles: adminOrTenant, limit: limitKey, handle: s.delete},
		{pattern: "GET /sessions", roles: adminOrTenant, limit: limitKeyRead, handle: s.list},
		{pattern: "GET /backups", roles: adminOrTenant, limit: limitKey, handle: s.listBackups},
		{pattern: "DELETE /backups/{backup_id}", roles: adminOrTenant, limit: limitKey, handle: s.deleteBackup},
		// Liveness (no dependency) and readiness (Redis and the cluster, cached): no key, so a
		// prober needs no secret, hence a limit per client IP.
		{pattern: "GET /health", public: true, limit: limitProbe, handle: s.livez},
		{pattern: "GET /ready", public: true, limit: limitProbe, handle: s.readyz},
		{pattern: "GET /metrics", roles: adminOrMetrics, limit: limitKey, handle: s.metricsJSONOrText},
		{pattern: "GET /metrics/prometheus", roles: adminOrMetrics, limit: limitKey, handle: s.metricsText},
		// Real use of a workspace, reported by its IDE extension with the session's activity
		// credential (or by a client with a key), and the state the extension times its notice by.
		{pattern: "POST /session/{uuid}/activity", roles: adminTenantOrActivity, limit: limitKey, handle: s.activity},
		{pattern: "GET /session/{uuid}/activity", roles: adminTenantOrActivity, limit: limitKey, handle: s.activityState},
		{pattern: "POST /session/{uuid}/wake-link", roles: adminOrTenant, limit: limitKey, handle: s.wakeLinkNow},
		// Every user's costs: an admin's report.
		{pattern: "GET /usage", roles: adminOnly, limit: limitKey, handle: s.usageReport},
		{pattern: "POST /reconcile", roles: adminOnly, limit: limitKey, handle: s.reconcileNow},
		// The sweep checks Cloud Scheduler's OIDC token itself; no limit may starve it.
		{pattern: "POST /sweep", roles: adminOrSweep, checksItself: true, handle: s.sweepNow},
	}
	for _, rt := range s.routes {
		s.mux.Handle(rt.pattern, s.routeChain(rt))
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

// Handle registers an extra route on the Server (later features) with the same middleware as
// the built-in ones, admitting keys of roles: with none it is public (no key), otherwise it is
// limited per key. A tenant route must scope its work to the caller's users itself
// (PrincipalOf(ctx).Allows). It must be called before the Server serves.
func (s *Server) Handle(pattern string, roles []Role, h func(w http.ResponseWriter, r *http.Request) error) {
	rt := route{pattern: pattern, public: len(roles) == 0, roles: roles, handle: h}
	if !rt.public {
		rt.limit = limitKey
	}
	s.routes = append(s.routes, rt)
	s.mux.Handle(rt.pattern, s.routeChain(rt))
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// requestChain is what every request passes, outermost first.
func (s *Server) requestChain() http.Handler {
	return chain(http.HandlerFunc(s.dispatch), // route lookup: 404, 405, then routeChain
		mw(requestID),      // X-Request-Id in and out
		mw(s.clientIP),     // the caller's address, through trusted proxies only
		mw(s.record),       // the answer's status, size, route and error code, for the next two
		mw(s.accessLog),    // one line per request
		mw(s.measure),      // latency by route and status
		mw(s.recoverPanic), // a panic is a 500 that the log and the metrics still see
		mw(s.checkPath),    // a path that is not canonical: 400 uuid or 404
	)
}

// routeChain is what a matched route passes, outermost first.
func (s *Server) routeChain(rt route) http.Handler {
	return chain(s.run(rt.handle),
		s.authenticate(rt), // 401 without a key, unless public
		s.rateLimit(rt),    // 429 over the route's limit
		mw(actor),          // who the session core's events name
	)
}

// run serves a handler that returns its error: the error is answered in the one shape.
func (s *Server) run(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			wire.WriteError(w, r, s.log, err)
		}
	})
}
