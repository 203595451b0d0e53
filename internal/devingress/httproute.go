package devingress

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// errNoBackend: a rule matched but names no backend this entry point can send to (no
// backendRef with a weight, or one that is not a Service of the namespace). The Gateway API
// answers such requests 500.
var errNoBackend = errors.New("the matching rule has no usable backend")

// httpRoute finds the HTTPRoute named after host's first label and returns where it sends the
// request, as a Gateway implementation reads it: the route must name the configured Gateway
// as a parent and host among its hostnames; of its rules' matches, the one the API gives
// precedence (Exact path, then the longest PathPrefix, then the most conditions, then the
// first); of that rule's backends, the first with a weight other than 0. Filters are not
// applied (Hyperbola writes none) and there is never an upstream-vhost: in gateway mode the
// activator's host is the relay's business (a real Gateway sends the client's Host).
func (h *Handler) httpRoute(ctx context.Context, host string, r *http.Request) (route, error) {
	name, ok := routeName(host)
	if !ok {
		return route{}, errNoRoute
	}
	hr, err := h.opts.GatewayClient.GatewayV1().HTTPRoutes(h.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return route{}, errNoRoute
	} else if err != nil {
		return route{}, fmt.Errorf("httproute %s/%s: %w", h.opts.Namespace, name, err)
	}
	if !h.attached(hr) || !hostnameMatches(hr.Spec.Hostnames, host) {
		return route{}, errNoRoute
	}
	rule := matchRule(hr.Spec.Rules, r)
	if rule == nil {
		return route{}, errNoRoute
	}
	ref, ok := firstBackend(rule.BackendRefs, hr.Namespace)
	if !ok {
		return route{}, errNoBackend
	}
	return route{service: string(ref.Name), port: networkingv1.ServiceBackendPort{Number: *ref.Port}}, nil
}

// attached reports whether the route names the configured Gateway among its parents (any
// listener of it: sectionName and port are not checked).
func (h *Handler) attached(hr *gatewayv1.HTTPRoute) bool {
	for _, p := range hr.Spec.ParentRefs {
		group, kind, ns := gatewayv1.GroupName, "Gateway", hr.Namespace
		if p.Group != nil {
			group = string(*p.Group)
		}
		if p.Kind != nil {
			kind = string(*p.Kind)
		}
		if p.Namespace != nil {
			ns = string(*p.Namespace)
		}
		if group == gatewayv1.GroupName && kind == "Gateway" &&
			string(p.Name) == h.opts.Gateway.Name && ns == h.opts.Gateway.Namespace {
			return true
		}
	}
	return false
}

// hostnameMatches applies a route's hostnames to host (lower-case): none means every host of
// the listener; "*.example.com" matches any host with at least one more label in front.
func hostnameMatches(hostnames []gatewayv1.Hostname, host string) bool {
	if len(hostnames) == 0 {
		return true
	}
	for _, hn := range hostnames {
		want := strings.ToLower(string(hn))
		if suffix, ok := strings.CutPrefix(want, "*"); ok {
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return true
			}
		} else if want == host {
			return true
		}
	}
	return false
}

// precedence orders matches as the API does: an Exact path, then the longest path, then a
// method, then the most headers, then the most query parameters.
type precedence struct{ exact, path, method, headers, query int }

func (p precedence) compare(q precedence) int {
	return cmp.Or(cmp.Compare(p.exact, q.exact), cmp.Compare(p.path, q.path), cmp.Compare(p.method, q.method),
		cmp.Compare(p.headers, q.headers), cmp.Compare(p.query, q.query))
}

// matchRule returns the rule whose match takes precedence for r, the first on a tie; nil when
// none matches. A rule without matches matches every request (PathPrefix "/").
func matchRule(rules []gatewayv1.HTTPRouteRule, r *http.Request) *gatewayv1.HTTPRouteRule {
	var best *gatewayv1.HTTPRouteRule
	var bestP precedence
	for i := range rules {
		matches := rules[i].Matches
		if len(matches) == 0 {
			matches = []gatewayv1.HTTPRouteMatch{{}}
		}
		for _, m := range matches {
			p, ok := requestMatches(m, r)
			if ok && (best == nil || p.compare(bestP) > 0) {
				best, bestP = &rules[i], p
			}
		}
	}
	return best
}

// requestMatches applies one match to r. Regular expressions are implementation-specific in
// the API and never match here.
func requestMatches(m gatewayv1.HTTPRouteMatch, r *http.Request) (precedence, bool) {
	var p precedence
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	kind, value := gatewayv1.PathMatchPathPrefix, "/"
	if m.Path != nil {
		if m.Path.Type != nil {
			kind = *m.Path.Type
		}
		if m.Path.Value != nil {
			value = *m.Path.Value
		}
	}
	switch kind {
	case gatewayv1.PathMatchExact:
		if path != value {
			return p, false
		}
		p.exact, p.path = 1, len(value)
	case gatewayv1.PathMatchPathPrefix:
		// by path elements: /foo matches /foo and /foo/bar, never /foobar; a trailing / is ignored
		prefix := strings.TrimSuffix(value, "/")
		if prefix != "" && path != prefix && !strings.HasPrefix(path, prefix+"/") {
			return p, false
		}
		p.path = len(prefix)
	default:
		return p, false
	}
	if m.Method != nil {
		if string(*m.Method) != r.Method {
			return p, false
		}
		p.method = 1
	}
	for _, hm := range m.Headers {
		if (hm.Type != nil && *hm.Type != gatewayv1.HeaderMatchExact) || !slices.Contains(r.Header.Values(string(hm.Name)), hm.Value) {
			return p, false
		}
	}
	p.headers = len(m.Headers)
	query := r.URL.Query()
	for _, qm := range m.QueryParams {
		if (qm.Type != nil && *qm.Type != gatewayv1.QueryParamMatchExact) || !query.Has(string(qm.Name)) || query.Get(string(qm.Name)) != qm.Value {
			return p, false
		}
	}
	p.query = len(m.QueryParams)
	return p, true
}

// firstBackend is the first backendRef with a weight other than 0 (none given is 1), when it
// is a Service of the route's own namespace with a port (anything else would need a
// ReferenceGrant or another kind of backend, which this entry point does not serve).
func firstBackend(refs []gatewayv1.HTTPBackendRef, ns string) (gatewayv1.BackendObjectReference, bool) {
	for _, b := range refs {
		if b.Weight != nil && *b.Weight == 0 {
			continue
		}
		ref := b.BackendObjectReference
		ok := (ref.Group == nil || *ref.Group == "") && (ref.Kind == nil || *ref.Kind == "Service") &&
			(ref.Namespace == nil || string(*ref.Namespace) == ns) && ref.Port != nil
		return ref, ok
	}
	return gatewayv1.BackendObjectReference{}, false
}
