package devingress

import (
	"context"
	"errors"
	"fmt"
	"net"
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

// errNoRoute: no Ingress serves the host and path (404).
var errNoRoute = errors.New("no Ingress serves this host and path")

// route is where an Ingress sends a request.
type route struct {
	service string
	port    networkingv1.ServiceBackendPort
	vhost   string // the upstream-vhost annotation
}

// backend finds the Ingress named after host's first label and returns its backend for host
// and path: the longest matching path of the host's rules, else the default backend.
func (h *Handler) backend(ctx context.Context, host, path string) (route, error) {
	name, _, _ := strings.Cut(host, ".")
	if len(validation.IsDNS1123Label(name)) > 0 {
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
		addrs, err := h.readyAddrs(ctx, b.service, sp)
		if err != nil {
			return "", err
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

// readyAddrs lists the ready host:port addresses of the Service's port across its
// EndpointSlices, sorted (an endpoint whose readiness is unknown counts as ready, as the
// API says consumers should read it).
func (h *Handler) readyAddrs(ctx context.Context, service string, sp corev1.ServicePort) ([]string, error) {
	list, err := h.kube.DiscoveryV1().EndpointSlices(h.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + service,
	})
	if err != nil {
		return nil, fmt.Errorf("endpoint slices of %s: %w", service, err)
	}
	var out []string
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
			out = append(out, net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(port))))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
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
