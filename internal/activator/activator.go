// Package activator serves the host of a workspace that is not running: wake on access.
//
// While a workspace sleeps (or is still starting) its Ingress sends vs-code-<id>.<domain> to
// the activator (internal/kube, session.Workspace.Activator), which the control plane serves
// beside the API (Dispatch). The activator finds the session from the host and:
//
//   - running: redirects (303) to the workspace URL (the Ingress switch may lag a moment);
//   - asleep, and the request proves it comes from the owner: wakes it (actor "activator") and
//     answers a small waking page that polls GET /.hyperbola/status and opens the IDE when
//     it is ready (and works without JavaScript, by refreshing itself);
//   - asleep, without proof: a page that says so and asks for the IDE password.
//
// Proof is one of: a signed wake link (?hyperbola_wake=<token>, SignLink, at most 24 h), the
// wake cookie the activator sets after any proof (__Host-hyperbola_wake: HttpOnly,
// SameSite=Lax, Secure, Path=/, no Domain; hyperbola_wake over plain http), the IDE password posted from the page (compared in constant time with the
// session's Secret), or code-server's own login cookie (an argon2 hash of that password).
// Wakes are limited per session and requests per client IP (internal/ratelimit); password
// attempts and cookie checks have separate budgets per client IP and per session, so a
// stranger can neither keep a workspace awake, guess its password, nor spend the owner's
// tries.
//
// No goroutine outlives a request: the waking page's polls drive the session's pending step
// forward (session.Service.Get), and the sweep does it for pages that were closed.
package activator

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/clientip"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/ratelimit"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// Actor names the activator in session events.
const Actor = "activator"

// Paths the activator keeps for itself on a workspace host (code-server uses none under
// /.hyperbola/).
const (
	StatusPath = "/.hyperbola/status"
	WakePath   = "/.hyperbola/wake"
	ownPrefix  = "/.hyperbola/"
)

// Cookie names, before CookieName's prefix.
const (
	// WakeCookie proves that its holder once had a wake link, the password or code-server's
	// cookie for this host; it lets reloads and the status endpoint work without them.
	WakeCookie = "hyperbola_wake"
	// hopCookie counts redirects to a running workspace that came back to the activator
	// (the Ingress switch not applied yet), so the browser never sees a redirect loop.
	hopCookie = "hyperbola_hop"
	maxHops   = 3
)

// HostCookiePrefix is the prefix of the activator's cookies over https. A browser takes a
// __Host- cookie only when it is Secure, has Path=/ and no Domain, and set by this very host,
// so no other host under the workspace domain (another workspace, whose owner controls its
// pages) can set or shadow it. code-server's own cookie (CodeServerCookie) keeps its name:
// the activator only reads it.
const HostCookiePrefix = "__Host-"

// CookieName is the name of the activator's cookie name over scheme: __Host-<name> over
// https, <name> over plain http (a local cluster), where a browser refuses a Secure cookie
// and so any __Host- one.
func CookieName(scheme, name string) string {
	if scheme == "https" {
		return HostCookiePrefix + name
	}
	return name
}

// Sessions is what the activator needs from the session core (*session.Service).
type Sessions interface {
	Get(ctx context.Context, id string) (*session.Session, error)
	Await(ctx context.Context, id string, wait time.Duration) (*session.Session, error)
	Wake(ctx context.Context, id string) (*session.Session, error)
}

// Passwords reads a session's IDE password (*kube.Cluster, from the session's Secret).
type Passwords interface {
	Password(ctx context.Context, id string) (string, error)
}

// Limiter decides rate limits (*ratelimit.Limiter).
type Limiter interface {
	Allow(ctx context.Context, key string, perMinute int) (ratelimit.Result, error)
}

// Deps are the activator's collaborators. Sessions, Passwords and Limiter are required.
type Deps struct {
	Sessions  Sessions
	Passwords Passwords
	Limiter   Limiter
	Now       func() time.Time
	Logger    *slog.Logger
}

// MinSecret is the shortest wake secret accepted, in bytes: it signs wake links and cookies.
const MinSecret = 32

// Options tune the activator. Zero values take the defaults noted.
type Options struct {
	// Domain is the workspaces' parent domain: hosts are vs-code-<id>.<Domain>. Required.
	Domain string
	// Scheme of workspace URLs ("https"). The wake cookie is Secure over https.
	Scheme string
	// Secret signs wake links and wake cookies (HYPERBOLA_WAKE_SECRET); at least 32 bytes.
	Secret []byte
	// TrustedProxies are the peers whose X-Forwarded-Host and X-Forwarded-For are believed
	// (HYPERBOLA_TRUSTED_PROXIES).
	TrustedProxies []netip.Prefix
	// CookieTTL is how long the wake cookie lasts (7 days).
	CookieTTL time.Duration
	// WakesPerSession limits wakes of one session per minute (10).
	WakesPerSession int
	// Password attempts (the page's form) and checks of code-server's cookie have budgets of
	// their own, each per client IP and per session (docs/operations/wake-on-access.md,
	// "Limits"). The per-IP budget is spent first, so a stranger over it spends nothing of
	// the session's: the owner, from another address, still gets tries. The session's budget
	// bounds guessing from many addresses (an IDE password has 144 random bits: at this rate
	// guessing it takes longer than the universe has existed), and when strangers spend it
	// all the owner still has the wake link and the wake cookie, which spend neither.
	//
	// PasswordsPerIP limits password attempts on one session from one client IP per minute
	// (5): per session too, so a class behind one NAT address does not share one budget.
	PasswordsPerIP int
	// PasswordsPerSession limits password attempts on one session per minute (20).
	PasswordsPerSession int
	// CookieChecksPerIP limits argon2 checks of code-server's cookie from one client IP per
	// minute (10), whatever the session: each check costs 64 MiB and about a tenth of a
	// second of CPU.
	CookieChecksPerIP int
	// CookieChecksPerSession limits checks of code-server's cookie for one session per
	// minute (10). Over it the cookie is not checked and the page asks for the password.
	CookieChecksPerSession int
	// RequestsPerIP limits page requests and posts per client IP per minute (60).
	RequestsPerIP int
	// StatusPerIP limits status polls per client IP per minute (120).
	StatusPerIP int
	// PollInterval is how often the waking page polls (1s) after an answer that its
	// workspace is not ready yet.
	PollInterval time.Duration
	// StatusWait is how long a status poll of a starting workspace is held until it runs
	// (15s, under Timeout): the page opens the IDE the moment its pod is ready, not at its
	// next poll.
	StatusWait time.Duration
	// HashChecks bounds concurrent argon2 checks of code-server's cookie (2); each costs up
	// to 64 MiB.
	HashChecks int
	// Timeout bounds one request's calls (20s): a wake can wait for the session's lock.
	Timeout time.Duration
}

func (o *Options) defaults() {
	if o.Scheme == "" {
		o.Scheme = "https"
	}
	if o.CookieTTL <= 0 {
		o.CookieTTL = 7 * 24 * time.Hour
	}
	for _, d := range []struct {
		v   *int
		def int
	}{
		{&o.WakesPerSession, 10}, {&o.PasswordsPerIP, 5}, {&o.PasswordsPerSession, 20}, {&o.CookieChecksPerIP, 10},
		{&o.CookieChecksPerSession, 10}, {&o.RequestsPerIP, 60}, {&o.StatusPerIP, 120}, {&o.HashChecks, 2},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Second
	}
	if o.StatusWait <= 0 {
		o.StatusWait = min(15*time.Second, o.Timeout*3/4)
	}
}

// Handler is the activator, an http.Handler for workspace hosts.
type Handler struct {
	deps   Deps
	opts   Options
	log    *slog.Logger
	hashes chan struct{} // argon2 checks in flight
}

// New returns the activator.
func New(deps Deps, opts Options) (*Handler, error) {
	opts.defaults()
	switch {
	case deps.Sessions == nil || deps.Passwords == nil || deps.Limiter == nil:
		return nil, errors.New("activator: Sessions, Passwords and Limiter are required")
	case opts.Domain == "":
		return nil, errors.New("activator: the workspace domain is required")
	case len(opts.Secret) < MinSecret:
		return nil, fmt.Errorf("activator: the wake secret must be at least %d bytes", MinSecret)
	case opts.Scheme != "https" && opts.Scheme != "http":
		return nil, fmt.Errorf("activator: scheme %q is not http or https", opts.Scheme)
	}
	opts.Domain = strings.ToLower(strings.TrimSuffix(opts.Domain, "."))
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	return &Handler{
		deps: deps, opts: opts,
		log:    deps.Logger.With("component", "activator"),
		hashes: make(chan struct{}, opts.HashChecks),
	}, nil
}

// Serves reports whether r is for a host under the workspace domain (Dispatch's test).
func (h *Handler) Serves(r *http.Request) bool {
	host := strings.ToLower(workspaceHost(r, h.opts.TrustedProxies))
	if hst, _, err := net.SplitHostPort(host); err == nil {
		host = hst
	}
	return strings.HasSuffix(strings.TrimSuffix(host, "."), "."+h.opts.Domain)
}

// request is one request's facts.
type request struct {
	id   string
	host string // vs-code-<id>.<domain>, lower-case, without a port
	ip   netip.Addr
	now  time.Time
}

// ServeHTTP answers a request for a workspace host.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Robots-Tag", "noindex")
	ctx, cancel := context.WithTimeout(session.WithActor(r.Context(), Actor), h.opts.Timeout)
	defer cancel()
	r = r.WithContext(ctx)

	host := workspaceHost(r, h.opts.TrustedProxies)
	id, ok := sessionID(host, h.opts.Domain)
	if !ok {
		h.write(w, r, notFoundPage())
		return
	}
	rq := &request{id: id, host: canonicalHost(id, h.opts.Domain), ip: clientip.Of(r, h.opts.TrustedProxies), now: h.deps.Now()}
	switch {
	case r.URL.Path == StatusPath:
		h.status(w, r, rq)
	case r.URL.Path == WakePath:
		if r.Method != http.MethodPost {
			hdr.Set("Allow", http.MethodPost)
			h.write(w, r, &page{Status: http.StatusMethodNotAllowed, Title: "Not allowed", Heading: "This address only takes the password form",
				Lead: "Open the workspace's address to see where it is."})
			return
		}
		h.password(w, r, rq)
	case strings.HasPrefix(r.URL.Path, ownPrefix):
		h.write(w, r, notFoundPage())
	case !navigation(r):
		// the IDE's own requests (its WebSocket, its XHRs) from a tab left open: they cannot
		// show a page, and they do not wake anything
		h.fail(w, r, &wire.Error{Code: string(session.KindUnavailable), RetryAfter: idleRetryAfter,
			Message: "the workspace is not running; open its address to wake it"})
	default:
		h.visit(w, r, rq)
	}
}

// idleRetryAfter is what the IDE's own requests to a workspace that is not running are asked
// to wait.
const idleRetryAfter = 5 * time.Second

// navigation reports whether r is a browser opening a page (or a client that does not say):
// GET or HEAD, no WebSocket upgrade, and Sec-Fetch-Mode navigate when the browser sends it.
func navigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	mode := r.Header.Get("Sec-Fetch-Mode")
	return mode == "" || mode == "navigate"
}

func canonicalHost(id, domain string) string { return hostPrefix + id + "." + domain }

// target is the workspace URL for path and query, without a wake link's token (the rest of
// the query as it was sent).
func (h *Handler) target(rq *request, u *url.URL) string {
	var keep []string
	for _, part := range strings.Split(u.RawQuery, "&") {
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); part == "" || (err == nil && k == LinkParam) {
			continue
		}
		keep = append(keep, part)
	}
	t := url.URL{Scheme: h.opts.Scheme, Host: rq.host, Path: u.Path, RawPath: u.RawPath, RawQuery: strings.Join(keep, "&")}
	if t.Path == "" {
		t.Path = "/"
	}
	return t.String()
}

// limit applies a rate limit; it answers (a 429 page, or a 503 when the limiter is down) and
// returns false when the request may not go on.
func (h *Handler) limit(w http.ResponseWriter, r *http.Request, key string, perMinute int, what string) bool {
	res, err := h.deps.Limiter.Allow(r.Context(), key, perMinute)
	if err != nil {
		h.log.Warn("rate limiter unavailable", "err", err)
		h.write(w, r, unavailablePage())
		return false
	}
	if res.Allowed {
		return true
	}
	retry := max(1, wire.CeilSeconds(res.RetryAfter))
	h.log.Info("rate limited", "limit", what, "retry_after_s", retry)
	h.write(w, r, &page{Status: http.StatusTooManyRequests, RetryAfter: retry, Title: "Too many requests",
		Heading: "Too many requests", Lead: "Please wait " + strconv.Itoa(retry) + " seconds, then reload this page.",
		StatusText: "Too many requests. Wait " + strconv.Itoa(retry) + " seconds before trying again."})
	return false
}

// visit answers a browser opening any page of the workspace's host.
func (h *Handler) visit(w http.ResponseWriter, r *http.Request, rq *request) {
	if !h.limit(w, r, "activator:ip:"+rq.ip.String(), h.opts.RequestsPerIP, "requests per IP") {
		return
	}
	sess, ok := h.get(w, r, rq)
	if !ok {
		return
	}
	target := h.target(rq, r.URL)
	if sess.State == session.StateRunning {
		h.redirect(w, r, target)
		return
	}
	if !wakeable(sess.State) {
		h.write(w, r, stateGonePage(sess.State))
		return
	}

	// proof, best first: a wake link, the wake cookie, code-server's cookie
	hasLink := r.URL.Query().Has(LinkParam)
	via := ""
	if hasLink && VerifyLink(h.opts.Secret, rq.id, r.URL.Query().Get(LinkParam), rq.now) {
		via = "link"
	} else if hasLink {
		h.log.Info("wake link refused", "id", rq.id, "ip", rq.ip)
	}
	if c, err := r.Cookie(h.cookieName(WakeCookie)); via == "" && err == nil && verifyCookie(h.opts.Secret, rq.id, c.Value, rq.now) {
		via = "cookie"
	}
	if c, err := r.Cookie(CodeServerCookie); via == "" && err == nil && c.Value != "" && h.codeServerCookie(r, rq, c.Value) {
		via = "code-server cookie"
	}
	switch {
	case via == "" && hasLink:
		p := askPage(sess.State, pathOf(target))
		p.Status, p.Title = http.StatusForbidden, "Wake link not valid"
		p.Heading = "This wake link cannot be used"
		p.Lead = "It has expired, or it is not a link for this workspace. Ask for a new link, or enter the workspace's password to wake it."
		h.write(w, r, p)
		return
	case via == "" && sess.State != session.StateSleeping:
		// starting already: nothing to wake, so no proof is needed to wait for it (the IDE
		// asks for the password itself); the page refreshes until it redirects there
		h.write(w, r, startingPage(sess.State, target))
		return
	case via == "":
		h.write(w, r, askPage(sess.State, pathOf(target)))
		return
	}
	if via != "cookie" {
		// reloads and polls need no link, and no argon2 check; set before the wake, so a
		// reload after a refused wake (a quota, a busy minute) needs no proof again
		h.setCookie(w, rq)
	}
	if !h.wake(w, r, rq, sess, via) {
		return
	}
	if hasLink {
		http.Redirect(w, r, target, http.StatusSeeOther) // the token leaves the address bar
		return
	}
	h.write(w, r, h.wakingPage(sess, target))
}

// wakeable reports whether a session in state s can be (or is being) brought up from its URL.
func wakeable(s session.State) bool { return s.Awake() || s == session.StateSleeping }

// get reads the session (driving its pending step forward); it answers and returns false
// when there is nothing to show.
func (h *Handler) get(w http.ResponseWriter, r *http.Request, rq *request) (*session.Session, bool) {
	sess, err := h.deps.Sessions.Get(r.Context(), rq.id)
	switch {
	case err == nil:
		return sess, true
	case errors.Is(err, session.ErrNotFound):
		h.write(w, r, notFoundPage())
	default:
		h.log.Warn("reading the session", "id", rq.id, "err", err)
		h.write(w, r, unavailablePage())
	}
	return nil, false
}

// wake wakes an asleep session (a waking or creating one needs nothing: reading it moves it
// on), within the per-session limit. It updates *sess, or answers and returns false.
func (h *Handler) wake(w http.ResponseWriter, r *http.Request, rq *request, sess *session.Session, via string) bool {
	if sess.State != session.StateSleeping || r.Method == http.MethodHead {
		return true
	}
	if !h.limit(w, r, "activator:wake:"+rq.id, h.opts.WakesPerSession, "wakes per session") {
		return false
	}
	woke, err := h.deps.Sessions.Wake(r.Context(), rq.id)
	switch {
	case err == nil:
		*sess = *woke
	case errors.Is(err, session.ErrBusy):
		// another transition holds the session: the page follows whatever it becomes
		sess.State = session.StateWaking
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrConflict):
		h.write(w, r, notFoundPage())
		return false
	case errors.Is(err, session.ErrQuota):
		h.log.Info("wake refused by a quota", "id", rq.id, "limit", session.LimitOf(err), "ip", rq.ip)
		h.write(w, r, quotaPage(session.LimitOf(err)))
		return false
	default:
		h.log.Error("waking the session", "id", rq.id, "err", err)
		h.write(w, r, unavailablePage())
		return false
	}
	h.log.Info("woken from its address", "id", rq.id, "via", via, "ip", rq.ip, "state", sess.State)
	return true
}

// redirect sends the browser to the running workspace, unless it keeps coming back here (the
// ingress controller has not applied the switch yet): then it shows the ready page, which
// retries in a moment, instead of a redirect loop.
func (h *Handler) redirect(w http.ResponseWriter, r *http.Request, target string) {
	hops := 0
	if c, err := r.Cookie(h.cookieName(hopCookie)); err == nil {
		hops, _ = strconv.Atoi(c.Value)
	}
	if hops < maxHops {
		http.SetCookie(w, h.cookie(hopCookie, strconv.Itoa(hops+1), 30*time.Second))
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	http.SetCookie(w, h.cookie(hopCookie, "", -1))
	h.write(w, r, &page{Status: http.StatusOK, Title: "Workspace ready", Heading: "Your workspace is ready",
		Lead: "It is opening in a moment.", Step: "ready", StatusText: textReady, Refresh: 2,
		Link: target, LinkText: "Open your workspace"})
}

// wakingPage is the page of a workspace that is starting.
func (h *Handler) wakingPage(sess *session.Session, target string) *page {
	p := &page{Status: http.StatusOK, Title: "Waking your workspace", Heading: "Waking your workspace",
		Lead: "It went to sleep while nobody was using it; your files are as you left them. " +
			"Starting it usually takes under a minute, and this page opens the editor as soon as it is ready.",
		Step: "starting", StatusText: textStarting,
		NoscriptNote: "This page reloads itself every few seconds until the editor is ready.",
		Poll:         true, Target: target, PollMS: int(h.opts.PollInterval / time.Millisecond), Refresh: 3}
	if sess.State == session.StateCreating {
		p.Lead = "It is being created. Starting it usually takes under a minute, and this page opens the editor as soon as it is ready."
	}
	return p
}

// askPage asks for the IDE password: the workspace will not wake for a stranger.
func askPage(state session.State, returnPath string) *page {
	p := &page{Status: http.StatusOK, Title: "Workspace asleep", Heading: "This workspace is asleep",
		Lead: "It went to sleep while nobody was using it; its files are kept. Enter the workspace's password " +
			"to wake it. Starting it usually takes under a minute.",
		Step: "asleep", StatusText: textAsleep, Form: true, Return: returnPath,
		Note: "No password? Ask whoever manages this workspace for a wake link."}
	if state == session.StateWaking || state == session.StateCreating {
		p.Title, p.Heading = "Workspace starting", "This workspace is starting"
		p.Lead = "Enter the workspace's password to open it when it is ready."
		p.Step, p.StatusText = "starting", textStarting
	}
	return p
}

// startingPage is a workspace starting, for a visitor without proof: no status polls (they
// need the wake cookie), a refresh every 3 seconds until the redirect.
func startingPage(state session.State, target string) *page {
	p := &page{Status: http.StatusOK, Title: "Workspace starting", Heading: "This workspace is starting",
		Lead: "Starting it usually takes under a minute. This page reloads itself every few seconds and opens the editor when it is ready.",
		Step: "starting", StatusText: textStarting, Refresh: 3, Link: target, LinkText: "Open the workspace"}
	if state == session.StateCreating {
		p.Heading = "This workspace is being created"
	}
	return p
}

func notFoundPage() *page {
	return &page{Status: http.StatusNotFound, Title: "No workspace here", Heading: "No workspace here",
		Lead: "There is no workspace at this address. It may have been deleted, or the address may be mistyped."}
}

func unavailablePage() *page {
	return &page{Status: http.StatusServiceUnavailable, RetryAfter: 5, Refresh: 5, Title: "Try again shortly",
		Heading: "Something went wrong", Lead: "The workspace service could not answer just now. This page tries again in a few seconds.",
		StatusText: "Retrying in a few seconds."}
}

// quotaPage says that the workspace cannot start now, and which of the deployment's limits
// stops it (session.Limit*): nothing is wrong with it, and waiting or sleeping another
// workspace helps, so it is not "unavailable". It does not refresh itself: each reload is a
// wake attempt.
func quotaPage(limit string) *page {
	why := "This deployment's limit on running workspaces (" + limit + ") is reached."
	what := "Try again later, or ask whoever manages this deployment."
	switch limit {
	case session.LimitRunningPerUser:
		why = "Its owner already has as many workspaces running as this deployment allows (" + limit + ")."
		what = "Close the tabs of another of your workspaces and let it sleep (or have it put to sleep), then reload this page."
	case session.LimitRunning:
		why = "This deployment already runs as many workspaces as it allows (" + limit + ")."
		what = "Reload this page in a few minutes: a workspace goes to sleep when nobody uses it."
	case "":
		why = "A limit of this deployment is reached."
	}
	return &page{Status: http.StatusForbidden, Title: "Workspace cannot start now", Heading: "This workspace cannot start now",
		Lead: why + " Its files are kept as they were.", StatusText: "Not started: a limit is reached.", Note: what,
		Limit: limit}
}

func stateGonePage(s session.State) *page {
	if s == session.StateFailed {
		return &page{Status: http.StatusConflict, Title: "Workspace unavailable", Heading: "This workspace is unavailable",
			Lead: "It cannot be woken from its address. Contact whoever manages it."}
	}
	return notFoundPage()
}

// password answers the page's form: the IDE password wakes the workspace and sets the wake
// cookie, then the browser goes back to where it was (303).
func (h *Handler) password(w http.ResponseWriter, r *http.Request, rq *request) {
	if !h.limit(w, r, "activator:ip:"+rq.ip.String(), h.opts.RequestsPerIP, "requests per IP") {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		h.write(w, r, &page{Status: http.StatusBadRequest, Title: "Bad request", Heading: "That form could not be read",
			Lead: "Go back and try again."})
		return
	}
	ret := safeReturn(r.PostForm.Get("return"))
	back := h.opts.Scheme + "://" + rq.host + ret
	sess, ok := h.get(w, r, rq)
	if !ok {
		return
	}
	if sess.State == session.StateRunning {
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	if !wakeable(sess.State) {
		h.write(w, r, stateGonePage(sess.State))
		return
	}
	if !h.limit(w, r, passwordIPKey(rq), h.opts.PasswordsPerIP, "password attempts per IP") ||
		!h.limit(w, r, "activator:password:"+rq.id, h.opts.PasswordsPerSession, "password attempts per session") {
		return
	}
	want, err := h.deps.Passwords.Password(r.Context(), rq.id)
	if err != nil {
		if errors.Is(err, session.ErrNotFound) {
			h.write(w, r, notFoundPage())
			return
		}
		h.log.Warn("reading the IDE password", "id", rq.id, "err", err)
		h.write(w, r, unavailablePage())
		return
	}
	if !samePassword(r.PostForm.Get("password"), want) {
		h.log.Info("wrong password", "id", rq.id, "ip", rq.ip)
		p := askPage(sess.State, ret)
		p.Status = http.StatusUnauthorized
		p.Error = "That password is not correct. Use the password of this workspace (the one its editor asks for)."
		p.StatusText = "The password was not correct."
		h.write(w, r, p)
		return
	}
	h.setCookie(w, rq)
	if !h.wake(w, r, rq, sess, "password") {
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// passwordIPKey is the budget of password attempts on one session from one client IP.
func passwordIPKey(rq *request) string {
	return "activator:password:" + rq.id + ":ip:" + rq.ip.String()
}

// samePassword compares in constant time (over digests, so the length is not told either).
func samePassword(got, want string) bool {
	g, wd := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return want != "" && subtle.ConstantTimeCompare(g[:], wd[:]) == 1
}

// safeReturn keeps a return path on this host: an absolute path, never "//host" or "/\host".
func safeReturn(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || len(p) > 2048 ||
		strings.ContainsAny(p, "\r\n\t\\") || strings.HasPrefix(p, ownPrefix) {
		return "/"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return p
}

// pathOf is the path and query of a URL (the form's return).
func pathOf(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "/"
	}
	return u.RequestURI()
}

// codeServerCookie checks code-server's login cookie against the session's password. A
// cookie with other argon2 parameters than code-server's is refused before anything is
// spent; over a cookie-check budget, or with every check slot busy, it does not check (the
// page asks for the password instead).
func (h *Handler) codeServerCookie(r *http.Request, rq *request, value string) bool {
	if _, err := parseArgon2(decodeCookie(value)); err != nil {
		return false
	}
	// per IP first: a stranger over its own budget spends nothing of the session's
	for _, l := range []struct {
		key       string
		perMinute int
	}{{"activator:cookie:ip:" + rq.ip.String(), h.opts.CookieChecksPerIP}, {"activator:cookie:" + rq.id, h.opts.CookieChecksPerSession}} {
		if res, err := h.deps.Limiter.Allow(r.Context(), l.key, l.perMinute); err != nil || !res.Allowed {
			return false
		}
	}
	select {
	case h.hashes <- struct{}{}:
		defer func() { <-h.hashes }()
	default:
		return false
	}
	want, err := h.deps.Passwords.Password(r.Context(), rq.id)
	if err != nil {
		h.log.Warn("reading the IDE password", "id", rq.id, "err", err)
		return false
	}
	return codeServerCookieMatches(value, want)
}

// cookieName is the name of the activator's cookie name on this scheme (CookieName).
func (h *Handler) cookieName(name string) string { return CookieName(h.opts.Scheme, name) }

// cookie is a host-only cookie of the activator (Path=/, no Domain; Secure and __Host- over
// https); a negative maxAge deletes it.
func (h *Handler) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: h.cookieName(name), Value: value, Path: "/", HttpOnly: true, Secure: h.opts.Scheme == "https",
		SameSite: http.SameSiteLaxMode}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

func (h *Handler) setCookie(w http.ResponseWriter, rq *request) {
	value := signCookie(h.opts.Secret, rq.id, rq.now.Add(h.opts.CookieTTL))
	http.SetCookie(w, h.cookie(WakeCookie, value, h.opts.CookieTTL))
}

// Status is GET /.hyperbola/status's answer.
type Status struct {
	State session.State `json:"state"`
	Ready bool          `json:"ready"`
}

// status answers the waking page's polls, for holders of the wake cookie only. A poll of a
// starting workspace is held until it runs (StatusWait at most), and reading the session
// drives its pending step forward, so polling is what finishes a wake.
func (h *Handler) status(w http.ResponseWriter, r *http.Request, rq *request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.fail(w, r, &wire.Error{Code: wire.CodeMethodNotAllowed, Allow: "GET, HEAD", Message: "GET only"})
		return
	}
	res, err := h.deps.Limiter.Allow(r.Context(), "activator:status:"+rq.ip.String(), h.opts.StatusPerIP)
	if err != nil {
		h.fail(w, r, &wire.Error{Code: string(session.KindUnavailable), Message: "unavailable"})
		return
	}
	if !res.Allowed {
		h.fail(w, r, &wire.Error{Code: string(session.KindRateLimited), Message: "too many requests", RetryAfter: max(res.RetryAfter, time.Second)})
		return
	}
	c, err := r.Cookie(h.cookieName(WakeCookie))
	if err != nil || !verifyCookie(h.opts.Secret, rq.id, c.Value, rq.now) {
		h.fail(w, r, &wire.Error{Code: wire.CodeUnauthenticated, Message: "the wake cookie is missing or not valid for this workspace"})
		return
	}
	sess, err := h.deps.Sessions.Await(r.Context(), rq.id, h.opts.StatusWait)
	switch {
	case errors.Is(err, session.ErrNotFound):
		h.fail(w, r, &wire.Error{Code: string(session.KindNotFound), Message: "no such workspace"})
	case err != nil:
		h.log.Warn("reading the session", "id", rq.id, "err", err)
		h.fail(w, r, &wire.Error{Code: string(session.KindUnavailable), Message: "unavailable"})
	default:
		wire.WriteJSON(w, http.StatusOK, Status{State: sess.State, Ready: sess.State == session.StateRunning})
	}
}

// fail answers the status endpoint's polls in the API's one error shape.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	wire.WriteError(w, r, h.log, err)
}

// write renders a page, logging a failure to.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, p *page) {
	if err := p.write(w, r); err != nil {
		h.log.Debug("writing a page", "err", err)
	}
}
