package kube

import (
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// RouteRequestTimeout is an HTTPRoute rule's request timeout: "0s" is none, since
// code-server's websocket stays open for as long as the tab is. GKE takes the backend's
// timeout from GCPBackendPolicy instead (BackendTimeoutSec), so routes on a GKE Gateway carry
// none.
const RouteRequestTimeout gwv1.Duration = "0s"

// HTTPRoute builds the workspace's HTTPRoute, vs-code-<id>, in gateway mode: attached to the
// shared Gateway's HTTPS listener, serving vs-code-<id>.<domain> at every path from the
// workspace's Service, or, while the workspace is not running and wake on access is on
// (Options.RoutesToActivator), from the activator's Service (plain HTTP: see
// gatewayActivatorPort).
func HTTPRoute(ws session.Workspace, o Options) (*gwv1ac.HTTPRouteApplyConfiguration, error) {
	return build(ws, o, httpRoute)
}

func httpRoute(w workspace, o Options) *gwv1ac.HTTPRouteApplyConfiguration {
	backend := gwv1ac.HTTPBackendRef().WithName(gwv1.ObjectName(w.names.Workspace)).WithPort(o.Port)
	if o.RoutesToActivator(w.Workspace) {
		backend = gwv1ac.HTTPBackendRef().WithName(gwv1.ObjectName(o.ActivatorService)).WithPort(o.gatewayActivatorPort())
	}
	rule := gwv1ac.HTTPRouteRule().
		WithMatches(gwv1ac.HTTPRouteMatch().
			WithPath(gwv1ac.HTTPPathMatch().WithType(gwv1.PathMatchPathPrefix).WithValue("/"))).
		WithBackendRefs(backend)
	if !o.onGKE() {
		rule.WithTimeouts(gwv1ac.HTTPRouteTimeouts().WithRequest(RouteRequestTimeout))
	}
	return gwv1ac.HTTPRoute(w.names.Workspace, o.Namespace).
		WithLabels(w.labels).
		WithAnnotations(w.annotations).
		WithSpec(gwv1ac.HTTPRouteSpec().
			WithParentRefs(gwv1ac.ParentReference().
				WithName(gwv1.ObjectName(o.gatewayName())).
				WithNamespace(gwv1.Namespace(o.gatewayNamespace())).
				WithSectionName(GatewayListener)).
			WithHostnames(gwv1.Hostname(w.names.Host(o.Domain))).
			WithRules(rule))
}
