package kube

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// gatewayOptions are testOptions in gateway mode on GKE, as infra deploys them.
func gatewayOptions() Options {
	o := testOptions()
	o.Routing = RoutingGateway
	o.GatewayCertMap = "hyperbola-wildcard"
	o.GatewayAddress = "hyperbola-gateway-ip"
	o.GatewaySourceCIDRs = DefaultGatewaySourceCIDRs()
	o.ActivatorHost, o.ActivatorCASecret = "", "" // the relay speaks HTTPS to the activator
	return o
}

// localGatewayOptions are gateway mode with another implementation: the local cluster's class
// and a wildcard Secret, the Gateway in a namespace of its own.
func localGatewayOptions() Options {
	o := gatewayOptions()
	o.GatewayClass = "hyperbola-local"
	o.GatewayCertMap, o.GatewayAddress = "", ""
	o.GatewayTLSSecret = "hyperbola-wildcard-tls"
	o.GatewayNamespace = "hyperbola-gateway"
	return o
}

func TestGoldenHTTPRoute(t *testing.T) {
	got, err := HTTPRoute(testWorkspace(), gatewayOptions())
	golden(t, "httproute", got, err, &gwv1.HTTPRoute{})
}

func TestGoldenHTTPRouteAsleep(t *testing.T) {
	got, err := HTTPRoute(sleepingWorkspace(), gatewayOptions())
	golden(t, "httproute-asleep", got, err, &gwv1.HTTPRoute{})
}

func TestGoldenHTTPRouteLocal(t *testing.T) {
	got, err := HTTPRoute(sleepingWorkspace(), localGatewayOptions())
	golden(t, "httproute-local-asleep", got, err, &gwv1.HTTPRoute{})
}

func TestGoldenGateway(t *testing.T) {
	golden(t, "gateway", Gateway(gatewayOptions()), nil, &gwv1.Gateway{})
}

func TestGoldenGatewayLocal(t *testing.T) {
	golden(t, "gateway-local", Gateway(localGatewayOptions()), nil, &gwv1.Gateway{})
}

func TestGoldenRedirectRoute(t *testing.T) {
	golden(t, "httproute-redirect", RedirectRoute(gatewayOptions()), nil, &gwv1.HTTPRoute{})
}

func TestGoldenHealthCheckPolicy(t *testing.T) {
	got, err := HealthCheckPolicy(testWorkspace(), gatewayOptions())
	golden(t, "healthcheckpolicy", got.Object, err, &map[string]any{})
}

func TestGoldenBackendPolicy(t *testing.T) {
	got, err := BackendPolicy(testWorkspace(), gatewayOptions())
	golden(t, "gcpbackendpolicy", got.Object, err, &map[string]any{})
}

func TestGoldenNetworkPolicyGateway(t *testing.T) {
	got, err := NetworkPolicy(testWorkspace(), gatewayOptions())
	golden(t, "networkpolicy-gateway", got, err, &networkingv1.NetworkPolicy{})
}

// The HTTPRoute follows ws.Activator as the Ingress does, with the activator's plain HTTP port
// unless one is set; everything else stays the workspace's.
func TestHTTPRouteBackend(t *testing.T) {
	decode := func(ws session.Workspace, o Options) gwv1.HTTPRoute {
		t.Helper()
		ac, err := HTTPRoute(ws, o)
		if err != nil {
			t.Fatal(err)
		}
		var r gwv1.HTTPRoute
		roundTrip(t, ac, &r)
		return r
	}
	backend := func(r gwv1.HTTPRoute) string {
		b := r.Spec.Rules[0].BackendRefs[0]
		return fmt.Sprintf("%s:%d", b.Name, *b.Port)
	}
	o := gatewayOptions()
	awake, asleep := testWorkspace(), sleepingWorkspace()
	for _, c := range []struct {
		name string
		ws   session.Workspace
		o    func(*Options)
		want string
	}{
		{"awake", awake, nil, "vs-code-ab12cd34:8080"},
		{"asleep", asleep, nil, "hyperbola-activator:80"},
		{"asleep, activator port", asleep, func(o *Options) { o.ActivatorPort = 8081 }, "hyperbola-activator:8081"},
		{"asleep, activator host set", asleep, func(o *Options) { o.ActivatorHost = "x.run.app" }, "hyperbola-activator:80"},
		{"asleep, wake on access off", asleep, func(o *Options) { o.ActivatorService = "" }, "vs-code-ab12cd34:8080"},
	} {
		oo := o
		if c.o != nil {
			c.o(&oo)
		}
		r := decode(c.ws, oo)
		if got := backend(r); got != c.want {
			t.Errorf("%s: backend %s, want %s", c.name, got, c.want)
		}
		if !slices.Equal(r.Spec.Hostnames, []gwv1.Hostname{"vs-code-ab12cd34.preview.hyperbola.in"}) {
			t.Errorf("%s: hostnames %v", c.name, r.Spec.Hostnames)
		}
		p := r.Spec.ParentRefs[0]
		if p.Name != "hyperbola" || *p.Namespace != "hyperbola" || *p.SectionName != GatewayListener {
			t.Errorf("%s: parent %+v", c.name, p)
		}
	}
	// Routes on a GKE Gateway carry no timeouts (GCPBackendPolicy sets the backend's); others none too: "0s".
	if r := decode(awake, o); r.Spec.Rules[0].Timeouts != nil {
		t.Errorf("GKE route timeouts %+v", r.Spec.Rules[0].Timeouts)
	}
	if r := decode(awake, localGatewayOptions()); r.Spec.Rules[0].Timeouts == nil || *r.Spec.Rules[0].Timeouts.Request != "0s" {
		t.Errorf("local route timeouts %+v", r.Spec.Rules[0].Timeouts)
	}
}

// In gateway mode the workspace port admits the Gateway's sources (and the ingress
// controller's pods only while the Ingress is kept), beside the probe.
func TestNetworkPolicyGatewaySources(t *testing.T) {
	sources := func(o Options) []string {
		ac, err := NetworkPolicy(testWorkspace(), o)
		if err != nil {
			t.Fatal(err)
		}
		var np networkingv1.NetworkPolicy
		roundTrip(t, ac, &np)
		var out []string
		for _, r := range np.Spec.Ingress {
			for _, p := range r.From {
				switch {
				case p.IPBlock != nil:
					out = append(out, p.IPBlock.CIDR)
				case p.NamespaceSelector != nil:
					out = append(out, "ns:"+p.NamespaceSelector.MatchLabels[corev1.LabelMetadataName])
				}
			}
		}
		return out
	}
	o := gatewayOptions()
	o.ProbeSourceCIDRs = []string{"10.8.0.0/28"}
	if got, want := sources(o), []string{"35.191.0.0/16", "130.211.0.0/22", "10.8.0.0/28"}; !slices.Equal(got, want) {
		t.Errorf("gateway: %v, want %v", got, want)
	}
	o.KeepIngress = true
	if got, want := sources(o), []string{"ns:ingress-nginx", "35.191.0.0/16", "130.211.0.0/22", "10.8.0.0/28"}; !slices.Equal(got, want) {
		t.Errorf("gateway keeping the ingress: %v, want %v", got, want)
	}
	if got, want := sources(testOptions()), []string{"ns:ingress-nginx"}; !slices.Equal(got, want) {
		t.Errorf("ingress: %v, want %v", got, want)
	}
}

func TestGatewayOptions(t *testing.T) {
	for _, o := range []Options{gatewayOptions(), localGatewayOptions()} {
		if err := o.Validate(); err != nil {
			t.Error(err)
		}
	}
	// In gateway mode without the Ingress, no ingress controller namespace is needed.
	o := gatewayOptions()
	o.IngressNamespace = ""
	if err := o.Validate(); err != nil {
		t.Errorf("gateway mode without an ingress namespace: %v", err)
	}
	for name, c := range map[string]struct {
		mutate func(*Options)
		want   string
	}{
		"routing":      {func(o *Options) { o.Routing = "nginx" }, "routing"},
		"name":         {func(o *Options) { o.GatewayName = "Bad_Name" }, "gateway name"},
		"namespace":    {func(o *Options) { o.GatewayNamespace = "bad.ns" }, "gateway namespace"},
		"class":        {func(o *Options) { o.GatewayClass = "Bad Class" }, "gateway class"},
		"certmap":      {func(o *Options) { o.GatewayCertMap = "Bad_Map" }, "certificate map"},
		"address":      {func(o *Options) { o.GatewayAddress = "1.2.3.4" }, "gateway address"},
		"secret":       {func(o *Options) { o.GatewayTLSSecret = "x" }, "set one"},
		"no sources":   {func(o *Options) { o.GatewaySourceCIDRs = nil }, "source CIDRs"},
		"bad source":   {func(o *Options) { o.GatewaySourceCIDRs = []string{"35.191.0.1/16"} }, "source CIDRs"},
		"keep, no ns":  {func(o *Options) { o.KeepIngress, o.IngressNamespace = true, "" }, "ingress namespace"},
		"ingress mode": {func(o *Options) { o.Routing, o.IngressNamespace = RoutingIngress, "" }, "ingress namespace"},
	} {
		o := gatewayOptions()
		c.mutate(&o)
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming %q", name, err, c.want)
		}
	}
}

// summarize in gateway mode: whole with either route, and Reroute while the routes are not
// the ones wanted.
func TestSummarizeRoutes(t *testing.T) {
	id := "ab12cd34"
	n, _ := NamesFor(id)
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }
	objs := func(ing, route bool) *objects {
		o := &objects{
			pvcs:        []corev1.PersistentVolumeClaim{{ObjectMeta: meta(n.Data)}},
			deployments: []appsv1.Deployment{{ObjectMeta: meta(n.Workspace)}},
			services:    []corev1.Service{{ObjectMeta: meta(n.Workspace)}},
			netpols:     []networkingv1.NetworkPolicy{{ObjectMeta: meta(n.Workspace)}},
			secrets:     []metav1.PartialObjectMetadata{{ObjectMeta: meta(n.Auth)}},
		}
		if ing {
			o.ingresses = []networkingv1.Ingress{{ObjectMeta: meta(n.Workspace)}}
		}
		if route {
			o.routes = []gwv1.HTTPRoute{{ObjectMeta: meta(n.Workspace)}}
		}
		return o
	}
	keep := gatewayOptions()
	keep.KeepIngress = true
	for _, c := range []struct {
		name              string
		o                 Options
		ing, route        bool
		complete, reroute bool
		kinds             []session.ObjectKind
	}{
		{"ingress mode", testOptions(), true, false, true, false, session.WorkspaceKinds},
		{"gateway", gatewayOptions(), false, true, true, false, session.GatewayWorkspaceKinds},
		{"gateway, ingress left", gatewayOptions(), true, true, true, true, session.KindOrder},
		{"gateway, route missing", gatewayOptions(), true, false, true, true, session.WorkspaceKinds},
		{"gateway, no route at all", gatewayOptions(), false, false, false, true, nil},
		{"keeping the ingress, both", keep, true, true, true, false, session.KindOrder},
		{"keeping the ingress, ingress missing", keep, false, true, true, true, session.GatewayWorkspaceKinds},
	} {
		obs := summarize(id, objs(c.ing, c.route), c.o)
		if obs.Complete != c.complete || obs.Reroute != c.reroute {
			t.Errorf("%s: complete %v reroute %v, want %v %v", c.name, obs.Complete, obs.Reroute, c.complete, c.reroute)
		}
		if c.kinds != nil && !slices.Equal(obs.Kinds, c.kinds) {
			t.Errorf("%s: kinds %v, want %v", c.name, obs.Kinds, c.kinds)
		}
	}
}

// Without wake on access, a route whose backend is not the workspace's Service (the
// activator's, left from when wake on access was on) wants applying: nothing else switches it
// back. With wake on access it is a sleeping workspace's route.
func TestSummarizeStrayBackend(t *testing.T) {
	id := "ab12cd34"
	n, _ := NamesFor(id)
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }
	objs := func(backend string) *objects {
		ing := networkingv1.Ingress{ObjectMeta: meta(n.Workspace), Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: backend}}}}}}}}}}
		route := gwv1.HTTPRoute{ObjectMeta: meta(n.Workspace), Spec: gwv1.HTTPRouteSpec{Rules: []gwv1.HTTPRouteRule{{
			BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(backend)}}}}}}}}
		return &objects{
			pvcs:        []corev1.PersistentVolumeClaim{{ObjectMeta: meta(n.Data)}},
			deployments: []appsv1.Deployment{{ObjectMeta: meta(n.Workspace)}},
			services:    []corev1.Service{{ObjectMeta: meta(n.Workspace)}},
			ingresses:   []networkingv1.Ingress{ing},
			routes:      []gwv1.HTTPRoute{route},
			netpols:     []networkingv1.NetworkPolicy{{ObjectMeta: meta(n.Workspace)}},
			secrets:     []metav1.PartialObjectMetadata{{ObjectMeta: meta(n.Auth)}},
		}
	}
	keep := gatewayOptions()
	keep.KeepIngress = true
	for name, o := range map[string]Options{"ingress": testOptions(), "gateway, keeping the ingress": keep} {
		off := o
		off.ActivatorService = ""
		for _, c := range []struct {
			o       Options
			backend string
			reroute bool
		}{
			{o, "hyperbola-activator", false}, {o, n.Workspace, false},
			{off, "hyperbola-activator", true}, {off, n.Workspace, false},
		} {
			if obs := summarize(id, objs(c.backend), c.o); obs.Reroute != c.reroute {
				t.Errorf("%s, activator service %q, backend %s: reroute %v, want %v", name, c.o.ActivatorService, c.backend, obs.Reroute, c.reroute)
			}
		}
	}
}

// An Ingress kept beside the HTTPRoute sends a sleeping workspace to gateway mode's activator
// Service (the plain HTTP relay) as the route does, without the HTTPS annotations of ingress
// mode's activator, whatever ActivatorHost says.
func TestKeptIngressToTheRelay(t *testing.T) {
	o := gatewayOptions()
	o.KeepIngress = true
	o.ActivatorHost = "session-api-123456789012.us-central1.run.app"
	ac, err := Ingress(sleepingWorkspace(), o)
	if err != nil {
		t.Fatal(err)
	}
	var ing networkingv1.Ingress
	roundTrip(t, ac, &ing)
	b := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
	if b.Name != "hyperbola-activator" || b.Port.Number != 80 {
		t.Errorf("backend %+v", b)
	}
	for _, k := range []string{AnnotationBackendProtocol, AnnotationUpstreamVhost, AnnotationProxySSLSecret} {
		if v, ok := ing.Annotations[k]; ok {
			t.Errorf("annotation %s=%s on a kept Ingress", k, v)
		}
	}
}
