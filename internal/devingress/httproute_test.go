package devingress

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

func ptr[T any](v T) *T { return &v }

// An HTTPRoute is served only where a Gateway would serve it: attached to the configured
// Gateway (any listener) and naming the host.
func TestHTTPRouteServesOnlyItsGatewayAndHosts(t *testing.T) {
	o := kubeOptions(t, "")
	for name, tc := range map[string]struct {
		mutate func(*gatewayv1.HTTPRoute)
		want   int
	}{
		"as built":                {func(*gatewayv1.HTTPRoute) {}, http.StatusOK},
		"parent in its namespace": {func(r *gatewayv1.HTTPRoute) { r.Spec.ParentRefs[0].Namespace = nil }, http.StatusOK},
		"another listener":        {func(r *gatewayv1.HTTPRoute) { r.Spec.ParentRefs[0].SectionName = ptr(gatewayv1.SectionName("http")) }, http.StatusOK},
		"explicit group and kind": {func(r *gatewayv1.HTTPRoute) {
			r.Spec.ParentRefs[0].Group, r.Spec.ParentRefs[0].Kind = ptr(gatewayv1.Group(gatewayv1.GroupName)), ptr(gatewayv1.Kind("Gateway"))
		}, http.StatusOK},
		"second parent": {func(r *gatewayv1.HTTPRoute) {
			r.Spec.ParentRefs = append([]gatewayv1.ParentReference{{Name: "other"}}, r.Spec.ParentRefs...)
		}, http.StatusOK},
		"no hostnames":       {func(r *gatewayv1.HTTPRoute) { r.Spec.Hostnames = nil }, http.StatusOK},
		"wildcard hostname":  {func(r *gatewayv1.HTTPRoute) { r.Spec.Hostnames = []gatewayv1.Hostname{"*." + domain} }, http.StatusOK},
		"upper-case host":    {func(r *gatewayv1.HTTPRoute) { r.Spec.Hostnames = []gatewayv1.Hostname{"VS-CODE-" + id + "." + domain} }, http.StatusOK},
		"no parent":          {func(r *gatewayv1.HTTPRoute) { r.Spec.ParentRefs = nil }, http.StatusNotFound},
		"another Gateway":    {func(r *gatewayv1.HTTPRoute) { r.Spec.ParentRefs[0].Name = "other" }, http.StatusNotFound},
		"another namespace":  {func(r *gatewayv1.HTTPRoute) { r.Spec.ParentRefs[0].Namespace = ptr(gatewayv1.Namespace("other")) }, http.StatusNotFound},
		"not a Gateway":      {func(r *gatewayv1.HTTPRoute) { r.Spec.ParentRefs[0].Kind = ptr(gatewayv1.Kind("Service")) }, http.StatusNotFound},
		"another hostname":   {func(r *gatewayv1.HTTPRoute) { r.Spec.Hostnames = []gatewayv1.Hostname{"vs-code-cd34ab12." + domain} }, http.StatusNotFound},
		"a deeper wildcard":  {func(r *gatewayv1.HTTPRoute) { r.Spec.Hostnames = []gatewayv1.Hostname{"*.x." + domain} }, http.StatusNotFound},
		"no rule matches /":  {func(r *gatewayv1.HTTPRoute) { r.Spec.Rules[0].Matches[0].Path.Value = ptr("/elsewhere") }, http.StatusNotFound},
		"no rules":           {func(r *gatewayv1.HTTPRoute) { r.Spec.Rules = nil }, http.StatusNotFound},
		"a rule, no matches": {func(r *gatewayv1.HTTPRoute) { r.Spec.Rules[0].Matches = nil }, http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			route, svc := workspaceIn(t, RoutingGateway, o, true) // to the activator, which answers 200
			r := route.(*gatewayv1.HTTPRoute)
			tc.mutate(r)
			s := newSetup(t, r, svc)
			if resp, body := s.get(t, host+":8081", "/"); resp.StatusCode != tc.want {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, tc.want, body)
			}
		})
	}
}

// The first backendRef with a weight takes the request; a rule whose backend cannot be
// served answers 500, as the Gateway API says.
func TestHTTPRouteBackends(t *testing.T) {
	o := kubeOptions(t, "")
	other := gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
		Name: "vs-code-" + id, Port: ptr(gatewayv1.PortNumber(8080)),
	}}}
	for name, tc := range map[string]struct {
		mutate func(*gatewayv1.HTTPBackendRef) []gatewayv1.HTTPBackendRef // the rule's refs, given its activator ref
		want   int
	}{
		"weight 1": {func(b *gatewayv1.HTTPBackendRef) []gatewayv1.HTTPBackendRef {
			b.Weight = ptr(int32(1))
			return []gatewayv1.HTTPBackendRef{*b, other}
		}, http.StatusOK},
		"weight 0 is skipped": {func(b *gatewayv1.HTTPBackendRef) []gatewayv1.HTTPBackendRef {
			o := other
			o.Weight = ptr(int32(0))
			return []gatewayv1.HTTPBackendRef{o, *b}
		}, http.StatusOK},
		"all weight 0": {func(b *gatewayv1.HTTPBackendRef) []gatewayv1.HTTPBackendRef {
			b.Weight = ptr(int32(0))
			return []gatewayv1.HTTPBackendRef{*b}
		}, http.StatusInternalServerError},
		"none": {func(*gatewayv1.HTTPBackendRef) []gatewayv1.HTTPBackendRef { return nil }, http.StatusInternalServerError},
		"not a Service": {func(b *gatewayv1.HTTPBackendRef) []gatewayv1.HTTPBackendRef {
			b.Kind = ptr(gatewayv1.Kind("ServiceImport"))
			return []gatewayv1.HTTPBackendRef{*b}
		}, http.StatusInternalServerError},
		"another namespace's": {func(b *gatewayv1.HTTPBackendRef) []gatewayv1.HTTPBackendRef {
			b.Namespace = ptr(gatewayv1.Namespace("other"))
			return []gatewayv1.HTTPBackendRef{*b}
		}, http.StatusInternalServerError},
		"this namespace, explicitly": {func(b *gatewayv1.HTTPBackendRef) []gatewayv1.HTTPBackendRef {
			b.Namespace = ptr(gatewayv1.Namespace(ns))
			b.Kind = ptr(gatewayv1.Kind("Service"))
			return []gatewayv1.HTTPBackendRef{*b}
		}, http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			route, svc := workspaceIn(t, RoutingGateway, o, true)
			r := route.(*gatewayv1.HTTPRoute)
			r.Spec.Rules[0].BackendRefs = tc.mutate(&r.Spec.Rules[0].BackendRefs[0])
			s := newSetup(t, r, svc)
			if resp, body := s.get(t, host, "/"); resp.StatusCode != tc.want {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if tc.want == http.StatusOK && len(s.activator) != 1 {
				t.Fatal("the request did not reach the activator")
			}
		})
	}
}

// An HTTPRoute names a Service's port by number: one the Service lacks has no endpoint (503,
// as for an Ingress).
func TestHTTPRouteToAPortTheServiceLacksIs503(t *testing.T) {
	up := pod(t)
	o := kubeOptions(t, "")
	route, svc := workspaceIn(t, RoutingGateway, o, false)
	r := route.(*gatewayv1.HTTPRoute)
	r.Spec.Rules[0].BackendRefs[0].Port = ptr(gatewayv1.PortNumber(9999))
	if resp, _ := newSetup(t, r, svc, slice(t, up.Listener.Addr().String(), true)).get(t, host, "/"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a port the Service lacks: %d, want 503", resp.StatusCode)
	}
}

// The Gateway API's precedence: an Exact path, then the longest prefix (by path elements),
// then a method, the most headers, the most query parameters, then the first rule.
func TestMatchRule(t *testing.T) {
	exact, prefix, regex := gatewayv1.PathMatchExact, gatewayv1.PathMatchPathPrefix, gatewayv1.PathMatchRegularExpression
	rule := func(name string, matches ...gatewayv1.HTTPRouteMatch) gatewayv1.HTTPRouteRule {
		return gatewayv1.HTTPRouteRule{Name: ptr(gatewayv1.SectionName(name)), Matches: matches}
	}
	path := func(kind gatewayv1.PathMatchType, v string) *gatewayv1.HTTPPathMatch {
		return &gatewayv1.HTTPPathMatch{Type: &kind, Value: &v}
	}
	rules := []gatewayv1.HTTPRouteRule{
		rule("root", gatewayv1.HTTPRouteMatch{Path: path(prefix, "/")}),
		rule("root-again", gatewayv1.HTTPRouteMatch{Path: path(prefix, "/")}),
		rule("api", gatewayv1.HTTPRouteMatch{Path: path(prefix, "/api/")}),
		rule("exact", gatewayv1.HTTPRouteMatch{Path: path(exact, "/api/exact")}),
		rule("post", gatewayv1.HTTPRouteMatch{Path: path(prefix, "/api"), Method: ptr(gatewayv1.HTTPMethodPost)}),
		rule("header", gatewayv1.HTTPRouteMatch{Path: path(prefix, "/api"), Headers: []gatewayv1.HTTPHeaderMatch{{Name: "x-canary", Value: "1"}}}),
		rule("query", gatewayv1.HTTPRouteMatch{Path: path(prefix, "/api"), QueryParams: []gatewayv1.HTTPQueryParamMatch{{Name: "v", Value: "2"}}}),
		rule("regex", gatewayv1.HTTPRouteMatch{Path: path(regex, "/re.*")}),
		rule("static", gatewayv1.HTTPRouteMatch{Path: path(prefix, "/static")}, gatewayv1.HTTPRouteMatch{Path: path(exact, "/favicon.ico")}),
	}
	for _, tc := range []struct{ method, target, header, want string }{
		{"GET", "/", "", "root"},
		{"GET", "/x", "", "root"},
		{"GET", "/api", "", "api"},
		{"GET", "/api/v1", "", "api"},
		{"GET", "/apix", "", "root"},
		{"GET", "/api/exact", "", "exact"},
		{"POST", "/api/exact", "", "exact"},
		{"GET", "/api/exact/more", "", "api"},
		{"POST", "/api/v1", "", "post"},
		{"POST", "/api/v1?v=2", "1", "post"}, // a method outranks headers and query parameters
		{"GET", "/api/v1?v=2", "1", "header"},
		{"GET", "/api/v1?v=2", "", "query"},
		{"GET", "/api/v1?v=3", "", "api"},
		{"GET", "/regex", "", "root"},
		{"GET", "/static/a.js", "", "static"},
		{"GET", "/favicon.ico", "", "static"},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		if tc.header != "" {
			r.Header.Set("X-Canary", tc.header)
		}
		got := ""
		if m := matchRule(rules, r); m != nil {
			got = string(*m.Name)
		}
		if got != tc.want {
			t.Errorf("%s %s (x-canary %q): %q, want %q", tc.method, tc.target, tc.header, got, tc.want)
		}
	}
	if m := matchRule(rules[2:3], httptest.NewRequest(http.MethodGet, "/other", nil)); m != nil {
		t.Errorf("no match: %q", *m.Name)
	}
}

func TestNewNeedsAGatewayInGatewayMode(t *testing.T) {
	k, gw := fakeClients()
	for name, opts := range map[string]Options{
		"no Gateway API client": {Namespace: ns, Domain: domain, Routing: RoutingGateway, Gateway: GatewayRef{Name: gatewayName}},
		"no Gateway":            {Namespace: ns, Domain: domain, Routing: RoutingGateway, GatewayClient: gw},
		"an unknown mode":       {Namespace: ns, Domain: domain, Routing: "mesh", GatewayClient: gw, Gateway: GatewayRef{Name: gatewayName}},
	} {
		if _, err := New(k, opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	h, err := New(k, Options{Namespace: ns, Domain: domain, Routing: RoutingGateway, GatewayClient: gw, Gateway: GatewayRef{Name: gatewayName}})
	if err != nil || h.opts.Gateway.Namespace != ns {
		t.Fatalf("the Gateway's namespace defaults to the workspaces': %v %+v", err, h)
	}
}

func fakeClients() (*fake.Clientset, *gatewayfake.Clientset) {
	return fake.NewClientset(), gatewayfake.NewClientset()
}
