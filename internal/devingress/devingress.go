// Package devingress is the local cluster's ingress controller and Gateway: for local use only
// (make run, tests). In production ingress-nginx or a Gateway implementation (GKE's) does this
// job; the local cluster has neither, nor kube-proxy nor DNS, so this package reads what
// Hyperbola wrote and serves it the way those would.
//
// For each request, Host vs-code-<id>.<domain> (any port ignored) names the object of that
// name in the namespace that routes it, by Options.Routing:
//
//   - ingress: the Ingress. Its rule for the host and the longest matching path give the
//     backend Service.
//   - gateway: the HTTPRoute, when it names Options.Gateway as a parent and the host among its
//     hostnames. The match the Gateway API gives precedence (Exact path, the longest
//     PathPrefix, ...) picks the rule, and the rule's first backendRef with a weight other
//     than 0 the Service. No status is written: nothing reads it.
//
// The backend Service is then
//
//   - the activator Service (a workspace that is not running): the control plane's handler,
//     in process, with the workspace host in X-Forwarded-Host, and Host set to the Ingress's
//     upstream-vhost annotation when it has one, as nginx sends it (an HTTPRoute has none: a
//     Gateway keeps the client's Host);
//   - any other Service (the workspace's own): a ready endpoint of its EndpointSlices, reached
//     at podIP:port by httputil.ReverseProxy (WebSockets included, the client's Host kept).
//
// Errors are nginx's: 404 for a host no Ingress or HTTPRoute serves, 500 for an HTTPRoute rule
// without a usable backend (the Gateway API's answer), 503 when the Service has no ready
// endpoint (after a short wait: the EndpointSlice may trail the pod's readiness, which is
// when Hyperbola switches the route back), 502 when the pod fails to answer. A pod on one
// of kwok's fake nodes runs nothing and its address is made up: it is never dialled (502),
// unless Options.FakeNodes says a Transport stands in for such pods.
//
// Objects are read at request time, so a switch of the route applies to the very next
// request. The control plane's answers name https://<host>/ (no port), as production serves
// workspaces; for a browser on http://<host>:<port>/ those origins are rewritten to the one it
// uses (nginx's proxy_redirect and sub_filter) and cookies lose Secure, so local redirects stay
// on this entry point.
package devingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// Defaults of Options.
const (
	// DefaultEndpointWait is how long a request waits for a ready endpoint before its 503.
	DefaultEndpointWait = 3 * time.Second
	// dialTimeout is nginx's proxy-connect-timeout default.
	dialTimeout = 5 * time.Second
	// endpointPoll is how often a waiting request looks at the EndpointSlices again.
	endpointPoll = 100 * time.Millisecond
)

// AnnotationUpstreamVhost is ingress-nginx's annotation for the Host sent upstream.
const AnnotationUpstreamVhost = "nginx.ingress.kubernetes.io/upstream-vhost"

// Routing modes (Options.Routing): the objects that route a workspace's host, as the control
// plane's HYPERBOLA_ROUTING says.
const (
	RoutingIngress = "ingress"
	RoutingGateway = "gateway"
)

// GatewayRef names a Gateway.
type GatewayRef struct{ Namespace, Name string }

// Options configure the entry point.
type Options struct {
	// Namespace holds the workspaces' Ingresses or HTTPRoutes, Services and EndpointSlices.
	// Required.
	Namespace string
	// Routing is RoutingIngress (the default) or RoutingGateway.
	Routing string
	// Gateway is the Gateway a workspace's HTTPRoute must name as a parent to be served
	// (gateway mode; its Namespace defaults to Namespace). Its name is required there.
	Gateway GatewayRef
	// GatewayClient reads HTTPRoutes. Required in gateway mode.
	GatewayClient gatewayclient.Interface
	// Domain is the workspaces' parent domain: hosts are vs-code-<id>.<Domain>. Required.
	Domain string
	// ActivatorService is the Service a workspace's route names while it is not running
	// (HYPERBOLA_ACTIVATOR_SERVICE); requests routed to it go to Activator. "" routes none.
	ActivatorService string
	// Activator serves what the route sends to the activator: the control plane's handler
	// (activator.Dispatch's), called in process. Required with ActivatorService.
	Activator http.Handler
	// Transport carries requests to pods (default: plain HTTP with nginx's connect timeout).
	// Tests replace it where the pods serve nothing (kwok's).
	Transport http.RoundTripper
	// FakeNodes sends requests to pods on kwok's fake nodes too. Their addresses are made up
	// (and may route off this machine), so only with a Transport that stands in for them;
	// without it such a pod's host answers 502.
	FakeNodes bool
	// EndpointWait is how long a request waits for a ready endpoint (DefaultEndpointWait).
	EndpointWait time.Duration
	Logger       *slog.Logger
}

// Handler is the entry point, an http.Handler for every workspace host.
type Handler struct {
	kube  kubernetes.Interface
	opts  Options
	log   *slog.Logger
	proxy *httputil.ReverseProxy
	next  atomic.Uint64 // round robin over ready endpoints
}

// New returns the entry point, reading objects with client.
func New(client kubernetes.Interface, opts Options) (*Handler, error) {
	switch {
	case client == nil:
		return nil, errors.New("devingress: a Kubernetes client is required")
	case opts.Namespace == "" || opts.Domain == "":
		return nil, errors.New("devingress: the namespace and the domain are required")
	case opts.ActivatorService != "" && opts.Activator == nil:
		return nil, errors.New("devingress: an activator Service needs the activator's handler")
	}
	switch opts.Routing {
	case "":
		opts.Routing = RoutingIngress
	case RoutingIngress:
	case RoutingGateway:
		if opts.GatewayClient == nil || opts.Gateway.Name == "" {
			return nil, errors.New("devingress: gateway routing needs a Gateway API client and the Gateway's name")
		}
		if opts.Gateway.Namespace == "" {
			opts.Gateway.Namespace = opts.Namespace
		}
	default:
		return nil, fmt.Errorf("devingress: routing %q: want %q or %q", opts.Routing, RoutingIngress, RoutingGateway)
	}
	opts.Domain = strings.ToLower(strings.TrimSuffix(opts.Domain, "."))
	if opts.EndpointWait <= 0 {
		opts.EndpointWait = DefaultEndpointWait
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Transport == nil {
		opts.Transport = defaultTransport()
	}
	h := &Handler{kube: client, opts: opts, log: opts.Logger.With("component", "devingress")}
	h.proxy = &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    opts.Transport,
		ErrorHandler: h.upstreamError,
		ErrorLog:     slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
	return h, nil
}

// defaultTransport reaches pods over plain HTTP; no response timeout, since code-server's
// long polls and WebSockets idle for long (the Ingress allows an hour).
func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // pod addresses never go through HTTP_PROXY
	t.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.ForceAttemptHTTP2 = false
	t.MaxIdleConnsPerHost = 32
	return t
}

// upstreamKey carries the chosen pod address from ServeHTTP to rewrite.
type upstreamKey struct{}

// rewrite sends the request to the chosen pod as nginx does: the client's Host, and
// X-Forwarded-For, -Host and -Proto.
func rewrite(pr *httputil.ProxyRequest) {
	addr, _ := pr.In.Context().Value(upstreamKey{}).(string)
	pr.SetURL(&url.URL{Scheme: "http", Host: addr})
	pr.Out.Host = pr.In.Host
	pr.SetXForwarded()
	if ip := clientIP(pr.In); ip != "" {
		pr.Out.Header.Set("X-Real-IP", ip)
	}
}

func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	h.log.Warn("upstream failed", "host", r.Host, "upstream", r.Context().Value(upstreamKey{}), "err", err)
	errorPage(w, http.StatusBadGateway)
}

// ServeHTTP routes one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, ok := h.hostOf(r)
	if !ok {
		errorPage(w, http.StatusNotFound)
		return
	}
	b, err := h.backend(r.Context(), host, r)
	switch {
	case errors.Is(err, errNoRoute):
		errorPage(w, http.StatusNotFound)
		return
	case errors.Is(err, errNoBackend):
		h.log.Info("no usable backend", "host", host, "path", r.URL.Path, "err", err)
		errorPage(w, http.StatusInternalServerError)
		return
	case err != nil:
		h.log.Warn("reading the route", "host", host, "err", err)
		errorPage(w, http.StatusServiceUnavailable)
		return
	}
	if h.opts.ActivatorService != "" && b.service == h.opts.ActivatorService {
		h.toActivator(w, r, host, b.vhost)
		return
	}
	addr, err := h.endpoint(r.Context(), b)
	switch {
	case errors.Is(err, errFakePods):
		h.log.Info("no pod to serve", "host", host, "service", b.service, "err", err)
		errorPage(w, http.StatusBadGateway)
		return
	case err != nil:
		if r.Context().Err() == nil {
			h.log.Info("no ready endpoint", "host", host, "service", b.service, "err", err)
		}
		w.Header().Set("Retry-After", "2")
		errorPage(w, http.StatusServiceUnavailable)
		return
	}
	h.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), upstreamKey{}, addr)))
}

// hostOf is the request's host without a port, lower-case, when it is under the domain.
func (h *Handler) hostOf(r *http.Request) (string, bool) {
	host := strings.ToLower(r.Host)
	if hst, _, err := net.SplitHostPort(host); err == nil {
		host = hst
	}
	host = strings.TrimSuffix(host, ".")
	label, rest, ok := strings.Cut(host, ".")
	return host, ok && label != "" && rest == h.opts.Domain
}

// toActivator hands the request to the control plane in process, with the headers nginx
// sets in front of the activator, and fits its answer to the browser's origin.
func (h *Handler) toActivator(w http.ResponseWriter, r *http.Request, host, vhost string) {
	up := r.Clone(r.Context())
	up.Header.Set("X-Forwarded-Host", r.Host)
	up.Header.Set("X-Forwarded-Proto", scheme(r))
	if ip := clientIP(r); ip != "" {
		up.Header.Set("X-Forwarded-For", ip)
		up.Header.Set("X-Real-IP", ip)
	}
	if vhost != "" {
		up.Host = vhost
	}
	buf := newBuffer()
	h.opts.Activator.ServeHTTP(buf, up)
	buf.flushTo(w, r, originRewrite(host, scheme(r)+"://"+r.Host), r.TLS == nil)
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

func clientIP(r *http.Request) string {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return ip
}

// errorPage answers status with a small page that names it, as nginx's do.
func errorPage(w http.ResponseWriter, status int) {
	text := fmt.Sprintf("%d %s", status, http.StatusText(status))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html>\n<head><title>%s</title></head>\n<body>\n<center><h1>%s</h1></center>\n<hr><center>hyperbola devingress</center>\n</body>\n</html>\n", text, text)
}
