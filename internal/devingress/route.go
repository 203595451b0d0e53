package devingress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// errNoRoute: no Ingress or HTTPRoute serves the host and path (404).
var errNoRoute = errors.New("no route serves this host and path")

// route is where an Ingress or an HTTPRoute sends a request.
type route struct {
	service string
	port    networkingv1.ServiceBackendPort
	vhost   string // the upstream-vhost annotation (Ingresses only)
}

// backend returns where the object that routes host (by Options.Routing) sends r.
func (h *Handler) backend(ctx context.Context, host string, r *http.Request) (route, error) {
	if h.opts.Routing == RoutingGateway {
		return h.httpRoute(ctx, host, r)
	}
	return h.ingress(ctx, host, r.URL.Path)
}

// routeName is the name of the object that routes host: its first label, vs-code-<id>.
func routeName(host string) (string, bool) {
	name, _, _ := strings.Cut(host, ".")
	return name, len(validation.IsDNS1123Label(name)) == 0
}

// ingress finds the Ingress named after host's first label and returns its backend for host
// and path: the longest matching path of the host's rules, else the default backend.
func (h *Handler) ingress(ctx context.Context, host, path string) (route, error) {
	name, ok := routeName(host)
	if !ok {
		return route{}, errNoRoute
	}
	ing, err := h.kube.NetworkingV1().Ingresses(h.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return route{}, errNoRoute
	} else if err != nil {
		return route{}, fmt.Errorf("ingress %s/%s: %w", h.opts.Namespace, name, err)
	}
	b := matchPath(ing, host, path)
	if b == nil || b.Service == nil {
		return route{}, errNoRoute
	}
	return route{service: b.Service.Name, port: b.Service.Port, vhost: ing.Annotations[AnnotationUpstreamVhost]}, nil
}

// matchPath applies the Ingress's rules as the API defines them: rules for host (or for any
// host), the longest matching Exact or Prefix path (ImplementationSpecific as a prefix, as
// nginx does), then the default backend. It returns nil when nothing matches.
func matchPath(ing *networkingv1.Ingress, host, path string) *networkingv1.IngressBackend {
	if path == "" {
		path = "/"
	}
	var best *networkingv1.IngressBackend
	bestLen, hostMatched := -1, false
	for _, rule := range ing.Spec.Rules {
		if rule.Host != "" && !strings.EqualFold(rule.Host, host) {
			continue
		}
		hostMatched = true
		if rule.HTTP == nil {
			continue
		}
		for i, p := range rule.HTTP.Paths {
			n, ok := pathMatches(p, path)
			if ok && n > bestLen {
				best, bestLen = &rule.HTTP.Paths[i].Backend, n
			}
		}
	}
	if best != nil {
		return best
	}
	if hostMatched || len(ing.Spec.Rules) == 0 {
		return ing.Spec.DefaultBackend
	}
	return nil
}

// pathMatches reports whether p matches path, and how specific it is (its length; an Exact
// match beats any prefix).
func pathMatches(p networkingv1.HTTPIngressPath, path string) (int, bool) {
	want := p.Path
	if want == "" {
		want = "/"
	}
	if p.PathType != nil && *p.PathType == networkingv1.PathTypeExact {
		return 1 << 20, path == want
	}
	// Prefix matches by path elements: /foo matches /foo and /foo/bar, never /foobar.
	want = strings.TrimSuffix(want, "/")
	if want == "" {
		return 0, true
	}
	if path == want || strings.HasPrefix(path, want+"/") {
		return len(want), true
	}
	return 0, false
}

// errFakePods: the Service's ready endpoints are all pods on kwok's fake nodes, whose
// addresses are made up (502: nothing serves them, and they may well be someone else's).
var errFakePods = errors.New("its ready pods are on fake (kwok) nodes, which run nothing")

// FakeNodeAnnotation marks the local cluster's fake nodes (kwok manages the nodes that carry
// it with value "fake").
const FakeNodeAnnotation = "kwok.x-k8s.io/node"

// endpoint returns a ready podIP:port of the route's Service, waiting up to
// Options.EndpointWait for one.
func (h *Handler) endpoint(ctx context.Context, b route) (string, error) {
	svc, err := h.kube.CoreV1().Services(h.opts.Namespace).Get(ctx, b.service, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("service %s: %w", b.service, err)
	}
	sp, ok := servicePort(svc, b.port)
	if !ok {
		return "", fmt.Errorf("service %s has no port %s", b.service, portString(b.port))
	}
	deadline := time.Now().Add(h.opts.EndpointWait)
	for {
		eps, err := h.readyEndpoints(ctx, b.service, sp)
		if err != nil {
			return "", err
		}
		addrs, err := h.servable(ctx, eps)
		if err != nil {
			return "", fmt.Errorf("service %s: %w", b.service, err)
		}
		if len(addrs) > 0 {
			return addrs[int(h.next.Add(1)%uint64(len(addrs)))], nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("service %s: no ready endpoint after %s", b.service, h.opts.EndpointWait)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(endpointPoll):
		}
	}
}

func servicePort(svc *corev1.Service, p networkingv1.ServiceBackendPort) (corev1.ServicePort, bool) {
	for _, sp := range svc.Spec.Ports {
		if (p.Name != "" && sp.Name == p.Name) || (p.Name == "" && sp.Port == p.Number) {
			return sp, true
		}
	}
	return corev1.ServicePort{}, false
}

func portString(p networkingv1.ServiceBackendPort) string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Number))
}

// readyEndpoint is one ready address of a Service's port and the node of its pod.
type readyEndpoint struct {
	addr string // host:port
	node string
}

// readyEndpoints lists the ready addresses of the Service's port across its EndpointSlices,
// sorted (an endpoint whose readiness is unknown counts as ready, as the API says consumers
// should read it).
func (h *Handler) readyEndpoints(ctx context.Context, service string, sp corev1.ServicePort) ([]readyEndpoint, error) {
	list, err := h.kube.DiscoveryV1().EndpointSlices(h.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + service,
	})
	if err != nil {
		return nil, fmt.Errorf("endpoint slices of %s: %w", service, err)
	}
	var out []readyEndpoint
	for _, s := range list.Items {
		if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
			continue
		}
		port, ok := slicePort(s.Ports, sp)
		if !ok {
			continue
		}
		for _, ep := range s.Endpoints {
			if (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) || len(ep.Addresses) == 0 {
				continue
			}
			e := readyEndpoint{addr: net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(port)))}
			if ep.NodeName != nil {
				e.node = *ep.NodeName
			}
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b readyEndpoint) int { return strings.Compare(a.addr, b.addr) })
	return slices.CompactFunc(out, func(a, b readyEndpoint) bool { return a.addr == b.addr }), nil
}

// servable keeps the addresses that can serve: not those of pods on fake nodes, unless
// Options.FakeNodes says a Transport stands in for them. errFakePods when only those are left.
func (h *Handler) servable(ctx context.Context, eps []readyEndpoint) ([]string, error) {
	var out []string
	fakes := 0
	for _, e := range eps {
		if !h.opts.FakeNodes && e.node != "" {
			fake, err := h.fakeNode(ctx, e.node)
			if err != nil {
				return nil, err
			}
			if fake {
				fakes++
				continue
			}
		}
		out = append(out, e.addr)
	}
	if len(out) == 0 && fakes > 0 {
		return nil, errFakePods
	}
	return out, nil
}

func (h *Handler) fakeNode(ctx context.Context, name string) (bool, error) {
	n, err := h.kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("node %s: %w", name, err)
	}
	return n.Annotations[FakeNodeAnnotation] == "fake", nil
}

// slicePort is the number of the Service port sp in a slice (slices name their ports after
// the Service's).
func slicePort(ports []discoveryv1.EndpointPort, sp corev1.ServicePort) (int32, bool) {
	for _, p := range ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if name == sp.Name && proto == corev1.ProtocolTCP && p.Port != nil {
			return *p.Port, true
		}
	}
	return 0, false
}
