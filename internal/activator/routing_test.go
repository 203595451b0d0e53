package activator_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/devingress"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// routings are the routing modes (HYPERBOLA_ROUTING) the end-to-end tests run in: a
// workspace's host is routed by its Ingress, or by its HTTPRoute on the shared Gateway.
var routings = []string{devingress.RoutingIngress, devingress.RoutingGateway}

// gateway is the shared Gateway of the tests' gateway mode. Nothing here reads the Gateway
// itself (the local entry point checks that a route names it), so it need not exist.
var gateway = devingress.GatewayRef{Namespace: "hyperbola-gateway", Name: "hyperbola"}

// routingSettings are the fixture settings of the end-to-end test in routing mode routing:
// wake on access through the activator's own host, and in gateway mode the options
// HYPERBOLA_ROUTING=gateway and the Gateway's settings give the builders (the local
// cluster's GatewayClass: no GKE policies, whose CRDs it lacks; the default sources of the
// Gateway's proxies; the activator's Service at port 80, the relay's plain HTTP). A routing mode the builders do not know yet skips the
// test.
func routingSettings(t testing.TB, routing string) func(*kube.Options, *session.Options) {
	t.Helper()
	if routing != devingress.RoutingGateway {
		return func(o *kube.Options, _ *session.Options) { o.ActivatorHost, o.ActivatorPort = activatorHost, 443 }
	}
	return func(o *kube.Options, _ *session.Options) {
		o.ActivatorHost, o.ActivatorPort = activatorHost, 80
		o.Routing, o.GatewayName, o.GatewayNamespace = kube.RoutingGateway, gateway.Name, gateway.Namespace
		o.GatewayClass, o.GatewaySourceCIDRs = "hyperbola-local", kube.DefaultGatewaySourceCIDRs()
	}
}

// routeBackend is the Service the workspace's HTTPRoute sends its host to.
func (f *fixture) routeBackend(t testing.TB, id string) string {
	t.Helper()
	gw, err := gatewayclient.NewForConfig(f.kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	r, err := gw.GatewayV1().HTTPRoutes(f.ns).Get(context.Background(), "vs-code-"+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(r.Spec.Rules[0].BackendRefs[0].Name)
}

// routingName is the fixture's routing mode, for file names.
func (f *fixture) routingName() string {
	if f.routing == "" {
		return devingress.RoutingIngress
	}
	return f.routing
}
