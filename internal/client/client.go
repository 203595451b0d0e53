// Package client is a Go client for Hyperbola's HTTP API (internal/api). *Client implements
// session.Manager, so the Terraform provider drives a deployed API exactly as it drives the
// Service in process: the API's error codes come back as *session.Error with the same Kind
// and Field.
//
// Idempotent calls are retried on connection errors and on 502/503/504 with exponential
// backoff (honouring Retry-After), within the caller's context. Create is made idempotent by
// an Idempotency-Key (the request's RequestID, or a fresh random one per call), so it is
// retried too: a retry returns the session the first attempt made.
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/reconcile"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/wire"
)

// maxResponse bounds what is read from one answer (a page of 1000 sessions is ~0.5 MB).
const maxResponse = 16 << 20

// Client calls one Hyperbola API endpoint with one API key.
type Client struct {
	base       *url.URL
	key        string
	hc         *http.Client
	maxRetries int
	// attempt bounds one attempt (request and answer); a create that restores gets at least
	// RestoreAttemptTimeout.
	attempt    time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	userAgent  string
	sleep      func(ctx context.Context, d time.Duration) error
	// noWait is set once the API refused the status route's wait (a server older than it):
	// Await is Get from then on.
	noWait atomic.Bool
}

var _ session.Manager = (*Client)(nil)

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: http.Client's, with the attempt timeout of
// WithAttemptTimeout). A Timeout set on hc bounds every attempt too, a create that restores
// included: leave it zero and use WithAttemptTimeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithAttemptTimeout bounds one attempt of a call, from sending the request to reading the
// answer (default DefaultAttemptTimeout). A create with restore_from is given at least
// RestoreAttemptTimeout.
func WithAttemptTimeout(d time.Duration) Option { return func(c *Client) { c.attempt = d } }

// DefaultAttemptTimeout bounds one attempt of a call by default.
const DefaultAttemptTimeout = 60 * time.Second

// RestoreAttemptTimeout bounds one attempt of a create with restore_from: the API answers it
// only once the archive has been read through and tested (a Kubernetes Job: seconds for a
// small workspace, a minute or more for a large one).
const RestoreAttemptTimeout = 3 * time.Minute

// WithRetries sets how many times a retryable call is retried (default 4; 0 disables).
func WithRetries(n int) Option { return func(c *Client) { c.maxRetries = max(n, 0) } }

// WithBackoff sets the first and the longest wait between retries (default 200 ms and 5 s).
func WithBackoff(first, longest time.Duration) Option {
	return func(c *Client) { c.minBackoff, c.maxBackoff = first, longest }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the API at endpoint (e.g. "https://api.example.com" or
// "http://127.0.0.1:8080"; a path prefix is kept) with apiKey. The endpoint must pass
// CheckEndpoint. The client never follows a redirect to another host or scheme: the key would
// go with it (Go's client drops Authorization on such a redirect, not X-API-Key).
func New(endpoint, apiKey string, opts ...Option) (*Client, error) {
	u, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(apiKey) == "" {
		return nil, session.Invalid("api_key", "api_key is required")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{
		base: u, key: apiKey, hc: &http.Client{}, attempt: DefaultAttemptTimeout,
		maxRetries: 4, minBackoff: 200 * time.Millisecond, maxBackoff: 5 * time.Second,
		userAgent: "hyperbola-client/1", sleep: sleepCtx,
	}
	for _, o := range opts {
		o(c)
	}
	if c.minBackoff <= 0 {
		c.minBackoff = 200 * time.Millisecond
	}
	if c.maxBackoff < c.minBackoff {
		c.maxBackoff = c.minBackoff
	}
	if c.attempt <= 0 {
		c.attempt = DefaultAttemptTimeout
	}
	// A copy, so the caller's client keeps its own policy; theirs still runs after ours.
	hc := *c.hc
	hc.CheckRedirect = sameOrigin(u, c.hc.CheckRedirect)
	c.hc = &hc
	return c, nil
}

// CheckEndpoint reports what is wrong with an API endpoint, as a *session.Error on field
// "endpoint": it must be an https:// URL without a query or a fragment, or an http:// one
// whose host is a loopback address (127.0.0.0/8, ::1, localhost): the API key travels in a
// header, so plain HTTP to any other host hands it to the network.
func CheckEndpoint(endpoint string) error {
	_, err := parseEndpoint(endpoint)
	return err
}

func parseEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(endpoint))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, session.Invalid("endpoint", "endpoint must be an http:// or https:// URL, not %q", endpoint)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, session.Invalid("endpoint", "endpoint must not carry a query or a fragment")
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, session.Invalid("endpoint",
			"endpoint %q uses plain http:// to %s, which would send the API key unencrypted: use https://, or http:// only to a loopback address (127.0.0.1, ::1, localhost)",
			u.Redacted(), u.Hostname())
	}
	return u, nil
}

// loopback reports whether host is a loopback address or localhost.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// maxRedirects is how many redirects within the origin are followed (net/http's default).
const maxRedirects = 10

// RedirectError is a redirect the client refused to follow: to another host or scheme than
// the endpoint's, since the request carries the API key.
type RedirectError struct {
	// Target is the redirect's destination; Host is its host.
	Target, Host string
}

func (e *RedirectError) Error() string {
	return "refusing a redirect to another host or scheme (" + e.Host + "): the request carries the API key; set endpoint to the API's own URL"
}

// sameOrigin is a CheckRedirect that follows redirects only within base's scheme and host
// (default ports made explicit), then asks next (the caller's, when it set one).
func sameOrigin(base *url.URL, next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	origin := func(u *url.URL) string {
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		return strings.ToLower(u.Scheme + "://" + u.Hostname() + ":" + port)
	}
	want := origin(base)
	return func(req *http.Request, via []*http.Request) error {
		if origin(req.URL) != want {
			return &RedirectError{Target: req.URL.Redacted(), Host: req.URL.Host}
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
}

// APIError is the HTTP detail of an error answer; it is the Err of the *session.Error the
// client returns.
type APIError = wire.APIError

// Create asks for a new workspace. The answer carries the IDE password, once. With
// RestoreFrom the API reads the archive through before it answers, so an attempt may take
// up to RestoreAttemptTimeout.
func (c *Client) Create(ctx context.Context, req session.CreateRequest) (*session.Session, error) {
	key := req.RequestID
	if key == "" {
		key = newIdempotencyKey()
	}
	req.RequestID = "" // sent as the header
	var timeout time.Duration
	if req.RestoreFrom != "" {
		timeout = max(c.attempt, RestoreAttemptTimeout)
	}
	var out session.Session
	err := c.call(ctx, call{method: http.MethodPost, path: "/session/create", body: req, out: &out,
		retry: true, header: http.Header{wire.HeaderIdempotencyKey: {key}}, timeout: timeout})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Get returns the session (GET /session/{uuid}/status).
func (c *Client) Get(ctx context.Context, id string) (*session.Session, error) {
	return c.onSession(ctx, http.MethodGet, id, "/status", nil, nil)
}

// Await returns the session once it is no longer starting, or after wait (at most
// session.MaxAwait): GET /session/{uuid}/status?wait=. The server holds the request meanwhile,
// so the answer comes the moment the workspace runs, not at the caller's next poll.
func (c *Client) Await(ctx context.Context, id string, wait time.Duration) (*session.Session, error) {
	wait = min(wait, session.MaxAwait)
	if wait <= 0 || c.noWait.Load() {
		return c.Get(ctx, id)
	}
	// An attempt lasts the wait and the answer: never cut short by a shorter attempt timeout.
	sess, err := c.sessionCall(ctx, id, call{method: http.MethodGet, path: "/status",
		query: url.Values{"wait": {wait.String()}}, retry: true, timeout: max(c.attempt, wait+10*time.Second)})
	if session.KindOf(err) == session.KindInvalid && session.FieldOf(err) == "wait" {
		c.noWait.Store(true)
		return c.Get(ctx, id)
	}
	return sess, err
}

// Sleep puts the session to sleep; sleeping a sleeping session is a no-op.
func (c *Client) Sleep(ctx context.Context, id string) (*session.Session, error) {
	return c.onSession(ctx, http.MethodPost, id, "/sleep", nil, nil)
}

// Wake wakes the session; Get reports running once its pod is ready.
func (c *Client) Wake(ctx context.Context, id string) (*session.Session, error) {
	return c.onSession(ctx, http.MethodPost, id, "/wake", nil, nil)
}

// Update changes the session in place (PATCH); nil fields are left as they are, and non-nil
// Labels (empty included) replace every user label.
func (c *Client) Update(ctx context.Context, id string, req session.UpdateRequest) (*session.Session, error) {
	body := map[string]any{}
	set := func(k string, v any, ok bool) {
		if ok {
			body[k] = v
		}
	}
	set("image", req.Image, req.Image != nil)
	set("storage", req.Storage, req.Storage != nil)
	set("cpu", req.CPU, req.CPU != nil)
	set("memory", req.Memory, req.Memory != nil)
	set("idle_timeout", req.IdleTimeout, req.IdleTimeout != nil)
	set("idle_connected_max", req.IdleConnectedMax, req.IdleConnectedMax != nil)
	set("backup_on_delete", req.BackupOnDelete, req.BackupOnDelete != nil)
	set("labels", req.Labels, req.Labels != nil)
	set("ttl", req.TTL, req.TTL != nil)
	return c.onSession(ctx, http.MethodPatch, id, "", nil, body)
}

// Delete backs the session up (unless SkipBackup) and deletes it. The answer is the session
// as it is now: deleting while the backup runs, deleted once done; Get (or Delete again)
// drives it on.
func (c *Client) Delete(ctx context.Context, id string, opts session.DeleteOptions) (*session.Session, error) {
	var q url.Values
	if opts.SkipBackup {
		q = url.Values{"skip_backup": {"true"}}
	}
	return c.onSession(ctx, http.MethodDelete, id, "", q, nil)
}

// ListBackups returns a page of the backup catalog (GET /backups).
func (c *Client) ListBackups(ctx context.Context, opts session.BackupListOptions) (*session.BackupList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"user_id": opts.UserID, "session_id": opts.SessionID, "cursor": opts.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var out session.BackupList
	if err := c.call(ctx, call{method: http.MethodGet, path: "/backups", query: q, out: &out, retry: true}); err != nil {
		return nil, err
	}
	if out.Backups == nil {
		out.Backups = []*session.BackupRecord{}
	}
	return &out, nil
}

// DeleteBackup removes an archive (DELETE /backups/{id}).
func (c *Client) DeleteBackup(ctx context.Context, id string) (*session.BackupRecord, error) {
	if err := session.CheckBackupID(id); err != nil {
		return nil, err
	}
	var out session.BackupRecord
	if err := c.call(ctx, call{method: http.MethodDelete, path: "/backups/" + url.PathEscape(id), out: &out, retry: true}); err != nil {
		return nil, err
	}
	return &out, nil
}

// List returns a page of sessions.
func (c *Client) List(ctx context.Context, opts session.ListOptions) (*session.ListResult, error) {
	q := url.Values{}
	if opts.UserID != "" {
		q.Set("user_id", opts.UserID)
	}
	if opts.State != "" {
		q.Set("status", string(opts.State))
	}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	var out session.ListResult
	if err := c.call(ctx, call{method: http.MethodGet, path: "/sessions", query: q, out: &out, retry: true}); err != nil {
		return nil, err
	}
	if out.Sessions == nil {
		out.Sessions = []*session.Session{}
	}
	return &out, nil
}

// Health reports the API's dependencies (GET /ready, its readiness: no key needed; the
// answer may be a few seconds old). A 503 comes back as a *session.Error of
// KindUnavailable, with the checks still filled in.
func (c *Client) Health(ctx context.Context) (map[string]string, error) {
	var out struct {
		Checks map[string]string `json:"checks"`
	}
	err := c.call(ctx, call{method: http.MethodGet, path: "/ready", out: &out, retry: false, errOut: &out})
	return out.Checks, err
}

// Activity is what POST /session/{uuid}/activity answers.
type Activity struct {
	ID           string    `json:"uuid"`
	LastActivity time.Time `json:"last_activity"`
}

// Touch records client activity on the session (POST /session/{uuid}/activity): its last
// activity becomes now, so the sweep leaves it awake for another idle_timeout. A deleting or
// deleted session is a session.ErrConflict; an API whose session core records no activity
// answers an error that IsUnimplemented reports.
func (c *Client) Touch(ctx context.Context, id string) (*Activity, error) {
	if err := session.CheckID(id); err != nil {
		return nil, err
	}
	var out Activity
	// Retried: recording activity twice is recording it once.
	if err := c.call(ctx, call{method: http.MethodPost, path: "/session/" + id + "/activity", out: &out, retry: true}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Usage returns the usage report (GET /usage) for q: one user or everyone, within
// [q.From, q.To) (From required; To zero: until now; at most events.MaxUsageWindow). An API
// without durable records (no Firestore) answers an error that IsUnimplemented reports.
func (c *Client) Usage(ctx context.Context, q events.UsageQuery) (*events.UsageReport, error) {
	v := url.Values{}
	if q.UserID != "" {
		v.Set("user_id", q.UserID)
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	var out events.UsageReport
	if err := c.call(ctx, call{method: http.MethodGet, path: "/usage", query: v, out: &out, retry: true}); err != nil {
		return nil, err
	}
	if out.Users == nil {
		out.Users = []events.UserUsage{}
	}
	if out.Sessions == nil {
		out.Sessions = []events.SessionUsage{}
	}
	return &out, nil
}

// Reconcile runs a reconcile on the API (POST /reconcile; dryRun changes nothing) and returns
// its report. Another reconcile running meanwhile is a session.ErrBusy error (retry later).
func (c *Client) Reconcile(ctx context.Context, dryRun bool) (*reconcile.Report, error) {
	var q url.Values
	if dryRun {
		q = url.Values{"dry_run": {"true"}}
	}
	var out reconcile.Report
	// Retried: a reconcile is made to be run again; a retry that finds the first attempt
	// still running answers busy.
	if err := c.call(ctx, call{method: http.MethodPost, path: "/reconcile", query: q, out: &out, retry: true}); err != nil {
		return nil, err
	}
	return &out, nil
}

// IsUnimplemented reports whether err is the API's 501: the control plane was built without
// the part the route needs (the usage report without Firestore, say). Retrying does not help.
func IsUnimplemented(err error) bool { return wire.IsUnimplemented(err) }

func (c *Client) onSession(ctx context.Context, method, id, suffix string, q url.Values, body any) (*session.Session, error) {
	// Every session route is idempotent: a repeated sleep, wake or delete is a no-op success,
	// and PATCH sets absolute values.
	return c.sessionCall(ctx, id, call{method: method, path: suffix, query: q, body: body, retry: true})
}

// sessionCall runs cl on session id's route (cl.path is what follows /session/{id}) and
// returns the session it answers.
func (c *Client) sessionCall(ctx context.Context, id string, cl call) (*session.Session, error) {
	if err := session.CheckID(id); err != nil { // never build a path from a malformed id
		return nil, err
	}
	var out session.Session
	cl.path, cl.out = "/session/"+id+cl.path, &out
	if err := c.call(ctx, cl); err != nil {
		return nil, err
	}
	return &out, nil
}

type call struct {
	method string
	path   string
	query  url.Values
	body   any
	header http.Header
	out    any
	errOut any // also decode an error answer into this (health's checks)
	retry  bool
	// timeout bounds each attempt; 0 is the client's attempt timeout.
	timeout time.Duration
}

// call runs one API call, retrying when it may.
func (c *Client) call(ctx context.Context, cl call) error {
	var payload []byte
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return fmt.Errorf("encoding the %s %s body: %w", cl.method, cl.path, err)
		}
		payload = b
	}
	u := *c.base
	u.Path = c.base.Path + cl.path
	u.RawQuery = cl.query.Encode()
	target := u.String()

	for attempt := 0; ; attempt++ {
		status, header, body, err := c.once(ctx, cl, target, payload)
		retryable := cl.retry && attempt < c.maxRetries
		if re := (*RedirectError)(nil); errors.As(err, &re) {
			// the endpoint is the wrong URL: another attempt would be refused the same way
			return &session.Error{Kind: session.KindInvalid, Field: "endpoint",
				Message: fmt.Sprintf("%s %s: the API at %s redirected to %s, another host or scheme; the client does not follow it (the request carries the API key): set endpoint to the API's own URL",
					cl.method, cl.path, c.base.Redacted(), re.Host), Err: err}
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s %s: %w", cl.method, cl.path, ctx.Err())
			}
			if retryable {
				if werr := c.sleep(ctx, c.backoff(attempt, 0)); werr != nil {
					return fmt.Errorf("%s %s: %w", cl.method, cl.path, werr)
				}
				continue
			}
			return session.Unavailable("hyperbola API", fmt.Errorf("%s %s: %w", cl.method, cl.path, err))
		}
		if (status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout) && retryable {
			if werr := c.sleep(ctx, c.backoff(attempt, wire.RetryAfter(header))); werr != nil {
				return fmt.Errorf("%s %s: %w", cl.method, cl.path, werr)
			}
			continue
		}
		if status >= 200 && status < 300 {
			if cl.out == nil {
				return nil
			}
			if err := json.Unmarshal(body, cl.out); err != nil {
				return &session.Error{Kind: session.KindInternal, Message: fmt.Sprintf("%s %s: the answer is not the expected JSON", cl.method, cl.path), Err: err}
			}
			return nil
		}
		if cl.errOut != nil {
			_ = json.Unmarshal(body, cl.errOut)
		}
		return wire.DecodeError(status, header, body)
	}
}

func (c *Client) once(ctx context.Context, cl call, target string, payload []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	timeout := cl.timeout
	if timeout <= 0 {
		timeout = c.attempt
	}
	ctx, cancel := context.WithTimeout(ctx, timeout) // the answer is read whole before it ends
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, cl.method, target, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range cl.header {
		req.Header[k] = v
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set(wire.HeaderAPIKey, c.key)
	req.Header.Set("User-Agent", c.userAgent)
	if a := session.ActorOf(ctx); a != "api" { // e.g. "terraform": the durable events say who
		req.Header.Set(wire.HeaderActor, a)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// backoff is the wait before retry attempt+1: exponential with full jitter, or the server's
// Retry-After when it is longer (capped at the longest backoff).
func (c *Client) backoff(attempt int, serverSays time.Duration) time.Duration {
	d := c.minBackoff << min(attempt, 20)
	if d > c.maxBackoff || d <= 0 {
		d = c.maxBackoff
	}
	d = d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
	if serverSays > d {
		d = min(serverSays, c.maxBackoff)
	}
	return d
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func newIdempotencyKey() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return "hyperbola-client-" + hex.EncodeToString(b[:])
}
