package sweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// DefaultProbeURL reaches a workspace's code-server through its Service inside the cluster.
// PodProbeURL reaches it at its pod's address, which a control plane outside the cluster
// reaches when its network routes to the pods (Cloud Run with Direct VPC egress to a
// VPC-native GKE cluster): it depends neither on cluster DNS nor on the workspace's
// certificate. PublicProbeURL goes through the workspace's Ingress, with full TLS
// verification: a workspace whose certificate is still pending does not answer it, so it never
// sleeps.
const (
	DefaultProbeURL = "http://vs-code-{id}.{namespace}.svc.cluster.local:{port}/healthz"
	PodProbeURL     = "http://{pod_ip}:{port}/healthz"
	PublicProbeURL  = "https://vs-code-{id}.{domain}/healthz"
)

// PodIPPlaceholder in a probe URL stands for the address of the workspace's Ready pod,
// which the sweep resolves for all its candidates at once (Deps.PodAddrs).
const PodIPPlaceholder = "{pod_ip}"

// The statuses code-server's /healthz reports.
const (
	StatusAlive   = "alive"   // a heartbeat within the last minute
	StatusExpired = "expired" // no heartbeat within the last minute
)

// maxProbeBody bounds what a probe reads: code-server's answer is about 50 bytes.
const maxProbeBody = 16 << 10

// Heartbeat is what code-server's unauthenticated GET /healthz answers:
// {"status":"alive"|"expired","lastHeartbeat":<ms since epoch>}. code-server beats at most
// once a minute, on any request but /healthz, and keeps beating while any connection is open,
// so an open browser tab counts as activity.
type Heartbeat struct {
	Status string
	// Last is the last heartbeat; the zero time when code-server has not beaten since it
	// started (lastHeartbeat 0).
	Last time.Time
}

// Prober asks a workspace for its last heartbeat. Probe must honour ctx's deadline.
type Prober interface {
	Probe(ctx context.Context, id string) (Heartbeat, error)
}

// PodProber is a Prober whose URL may name the workspace's pod ({pod_ip}). The sweep lists
// the Ready workspace pods once per sweep (Deps.PodAddrs) and probes each candidate at its
// own pod's address; a candidate without one is not probed.
type PodProber interface {
	Prober
	// NeedsPodIP reports whether a probe needs the pod's address.
	NeedsPodIP() bool
	// ProbePod is Probe of session id whose Ready pod has address podIP.
	ProbePod(ctx context.Context, id, podIP string) (Heartbeat, error)
}

// ProberFunc adapts a function to Prober.
type ProberFunc func(ctx context.Context, id string) (Heartbeat, error)

// Probe calls f.
func (f ProberFunc) Probe(ctx context.Context, id string) (Heartbeat, error) { return f(ctx, id) }

// Reasons a probe fails, as ProbeError.Reason (and the keys of Report.ProbeErrorsBy).
const (
	ReasonTimeout     = "timeout"      // no answer within the probe timeout
	ReasonRefused     = "refused"      // connection refused: nothing listens (pod gone, starting)
	ReasonUnreachable = "unreachable"  // DNS, routing, TLS or another transport failure
	ReasonStatus      = "status"       // an answer other than 200
	ReasonBadResponse = "bad_response" // a 200 whose body is not code-server's heartbeat JSON
	ReasonInvalid     = "invalid"      // the URL could not be built (a bad template or id)
)

// ProbeError is a failed probe. A failed probe never puts a workspace to sleep.
type ProbeError struct {
	ID     string
	URL    string
	Reason string // one of the Reason constants
	Status int    // the HTTP status, for ReasonStatus
	Err    error
}

func (e *ProbeError) Error() string {
	msg := fmt.Sprintf("probe of %s (%s): %s", e.ID, e.URL, e.Reason)
	if e.Status != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *ProbeError) Unwrap() error { return e.Err }

// ReasonOf returns the reason of a probe error (ReasonUnreachable for an error that is not a
// *ProbeError).
func ReasonOf(err error) string {
	var pe *ProbeError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return ReasonUnreachable
}

// ProbeOptions configure an HTTPProber.
type ProbeOptions struct {
	// URLTemplate is the probe URL with placeholders {id}, {pod_ip}, {namespace}, {port} and
	// {domain} (DefaultProbeURL when ""); it names the workspace by {id} or {pod_ip}. Its
	// path must end in /healthz and it must have no query: code-server counts every other
	// request, /healthz?x included, as activity.
	URLTemplate string
	Namespace   string
	Port        int32
	Domain      string
	// DialContext replaces the dialer (tests map workspace host names to local stand-ins,
	// as cluster DNS would). nil dials normally.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Client replaces the whole HTTP client; DialContext is ignored then. It should not keep
	// connections alive (see NewHTTPProber).
	Client *http.Client
}

// HTTPProber probes code-server's /healthz over HTTP. It is safe for concurrent use.
type HTTPProber struct {
	client   *http.Client
	template string
	repl     *strings.Replacer
}

var _ PodProber = (*HTTPProber)(nil)

// NewHTTPProber returns a prober for opts. Its client follows no redirects and keeps no
// connection alive: code-server counts an open connection as activity, so a pooled idle
// connection of the sweep's own would keep a workspace awake.
func NewHTTPProber(opts ProbeOptions) (*HTTPProber, error) {
	if opts.URLTemplate == "" {
		opts.URLTemplate = DefaultProbeURL
	}
	p := &HTTPProber{
		client:   opts.Client,
		template: opts.URLTemplate,
		repl: strings.NewReplacer(
			"{namespace}", opts.Namespace,
			"{port}", strconv.Itoa(int(opts.Port)),
			"{domain}", opts.Domain,
		),
	}
	if err := p.checkTemplate(opts); err != nil {
		return nil, err
	}
	if p.client == nil {
		dial := opts.DialContext
		if dial == nil {
			dial = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
		}
		p.client = &http.Client{
			Transport: &http.Transport{
				Proxy:                  nil, // workspace URLs are reached directly
				DialContext:            dial,
				DisableKeepAlives:      true,
				TLSHandshakeTimeout:    5 * time.Second,
				MaxResponseHeaderBytes: 16 << 10,
				DisableCompression:     true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return p, nil
}

// checkTemplate builds the URL of a sample id and checks its shape.
func (p *HTTPProber) checkTemplate(opts ProbeOptions) error {
	if !strings.Contains(p.template, "{id}") && !p.NeedsPodIP() {
		return fmt.Errorf("sweep probe URL %q: the template needs an {id} or a %s placeholder", p.template, PodIPPlaceholder)
	}
	for ph, empty := range map[string]bool{"{namespace}": opts.Namespace == "", "{port}": opts.Port <= 0, "{domain}": opts.Domain == ""} {
		if empty && strings.Contains(p.template, ph) {
			return fmt.Errorf("sweep probe URL %q: %s has no value", p.template, ph)
		}
	}
	raw := p.build("a0000000", "10.0.0.1")
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("sweep probe URL %q: %w", p.template, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("sweep probe URL %q: the scheme must be http or https", p.template)
	case u.Host == "":
		return fmt.Errorf("sweep probe URL %q: no host", p.template)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("sweep probe URL %q: no query or fragment allowed (code-server would count the probe as activity)", p.template)
	case !strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/healthz"):
		return fmt.Errorf("sweep probe URL %q: the path must end in /healthz", p.template)
	}
	return nil
}

// build fills in the template; host is the pod's address as a URL host (IPv6 bracketed).
func (p *HTTPProber) build(id, host string) string {
	return strings.NewReplacer("{id}", id, PodIPPlaceholder, host).Replace(p.repl.Replace(p.template))
}

// NeedsPodIP reports whether the template names the pod's address ({pod_ip}).
func (p *HTTPProber) NeedsPodIP() bool { return strings.Contains(p.template, PodIPPlaceholder) }

// URL returns the probe URL of session id; an error when the template needs the pod's
// address (PodURL).
func (p *HTTPProber) URL(id string) (string, error) { return p.PodURL(id, "") }

// PodURL returns the probe URL of session id whose Ready pod has address podIP ("" when the
// template does not need it).
func (p *HTTPProber) PodURL(id, podIP string) (string, error) {
	if err := session.CheckID(id); err != nil {
		return "", err
	}
	if !p.NeedsPodIP() {
		return p.build(id, ""), nil
	}
	addr, err := netip.ParseAddr(podIP)
	if err != nil || addr.Zone() != "" {
		return "", fmt.Errorf("session %s: pod address %q is not an IP address", id, podIP)
	}
	addr = addr.Unmap()
	host := addr.String()
	if addr.Is6() {
		host = "[" + host + "]"
	}
	return p.build(id, host), nil
}

// Probe asks session id's code-server for its heartbeat. With a template that needs the pod's
// address, it fails with ReasonInvalid: use ProbePod.
func (p *HTTPProber) Probe(ctx context.Context, id string) (Heartbeat, error) {
	return p.ProbePod(ctx, id, "")
}

// ProbePod asks session id's code-server, whose Ready pod has address podIP, for its heartbeat.
// podIP is ignored when the template does not need it.
func (p *HTTPProber) ProbePod(ctx context.Context, id, podIP string) (Heartbeat, error) {
	u, err := p.PodURL(id, podIP)
	if err != nil {
		return Heartbeat{}, &ProbeError{ID: id, Reason: ReasonInvalid, Err: err}
	}
	fail := func(reason string, status int, err error) (Heartbeat, error) {
		return Heartbeat{}, &ProbeError{ID: id, URL: u, Reason: reason, Status: status, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(ReasonInvalid, 0, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hyperbola-sweep")
	resp, err := p.client.Do(req)
	if err != nil {
		return fail(transportReason(ctx, err), 0, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody+1))
	if err != nil {
		return fail(transportReason(ctx, err), 0, fmt.Errorf("reading the answer: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		return fail(ReasonStatus, resp.StatusCode, nil)
	}
	if len(body) > maxProbeBody {
		return fail(ReasonBadResponse, 0, fmt.Errorf("answer longer than %d bytes", maxProbeBody))
	}
	hb, err := ParseHeartbeat(body)
	if err != nil {
		return fail(ReasonBadResponse, 0, err)
	}
	return hb, nil
}

func transportReason(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil, errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused
	}
	return ReasonUnreachable
}

// ParseHeartbeat reads code-server's /healthz answer. Both fields are required: status
// "alive" or "expired", lastHeartbeat a whole number of milliseconds since the epoch (0 when
// code-server has not beaten yet).
func ParseHeartbeat(b []byte) (Heartbeat, error) {
	var body struct {
		Status        *string         `json:"status"`
		LastHeartbeat json.RawMessage `json:"lastHeartbeat"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return Heartbeat{}, fmt.Errorf("not a heartbeat: %w", err)
	}
	if body.Status == nil || len(body.LastHeartbeat) == 0 {
		return Heartbeat{}, errors.New(`not a heartbeat: "status" and "lastHeartbeat" are required`)
	}
	if *body.Status != StatusAlive && *body.Status != StatusExpired {
		return Heartbeat{}, fmt.Errorf("not a heartbeat: status %q", *body.Status)
	}
	raw := string(body.LastHeartbeat)
	msec, err := strconv.ParseInt(raw, 10, 64)
	if err != nil { // a number written with a fraction or an exponent
		f, ferr := strconv.ParseFloat(raw, 64)
		if ferr != nil || f > 1e15 || f < -1e15 || raw[0] == '"' {
			return Heartbeat{}, fmt.Errorf("not a heartbeat: lastHeartbeat %s", raw)
		}
		msec = int64(f)
	}
	if msec < 0 {
		return Heartbeat{}, fmt.Errorf("not a heartbeat: lastHeartbeat %d is negative", msec)
	}
	hb := Heartbeat{Status: *body.Status}
	if msec > 0 {
		hb.Last = time.UnixMilli(msec).UTC()
	}
	return hb, nil
}
