package kube

import (
	corev1 "k8s.io/api/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"
)

// Gateway builds the shared Gateway of gateway mode, Options' GatewayName in GatewayNamespace,
// of class GatewayClass: one HTTPS listener ("https", 443) for *.<domain> that admits the
// HTTPRoutes of the workspace namespace alone, and one HTTP listener ("http", 80) that admits
// the Gateway's own namespace's, for RedirectRoute (a URL typed without https:// still
// arrives, as ingress-nginx redirected it). Its certificate is one wildcard certificate:
// the Certificate Manager map GatewayCertMap (GKE's annotation; the listener then has no tls),
// or the Secret GatewayTLSSecret (certificateRefs, for other implementations). With
// GatewayAddress it takes the reserved global static IP of that name, so the DNS records stay
// put when the Gateway is made again.
func Gateway(o Options) *gwv1ac.GatewayApplyConfiguration {
	ns := gwv1ac.RouteNamespaces().WithFrom(gwv1.NamespacesFromSame)
	if o.gatewayNamespace() != o.Namespace {
		ns = gwv1ac.RouteNamespaces().WithFrom(gwv1.NamespacesFromSelector).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{corev1.LabelMetadataName: o.Namespace}))
	}
	listener := gwv1ac.Listener().
		WithName(GatewayListener).
		WithPort(GatewayHTTPSPort).
		WithProtocol(gwv1.HTTPSProtocolType).
		WithHostname(gwv1.Hostname("*." + o.Domain)).
		WithAllowedRoutes(gwv1ac.AllowedRoutes().
			WithNamespaces(ns).
			WithKinds(gwv1ac.RouteGroupKind().WithGroup(gwv1.GroupName).WithKind("HTTPRoute")))
	if o.GatewayTLSSecret != "" {
		listener.WithTLS(gwv1ac.ListenerTLSConfig().
			WithMode(gwv1.TLSModeTerminate).
			WithCertificateRefs(gwv1ac.SecretObjectReference().WithName(gwv1.ObjectName(o.GatewayTLSSecret))))
	}
	http := gwv1ac.Listener().
		WithName(GatewayHTTPListener).
		WithPort(GatewayHTTPPort).
		WithProtocol(gwv1.HTTPProtocolType).
		WithHostname(gwv1.Hostname("*." + o.Domain)).
		WithAllowedRoutes(gwv1ac.AllowedRoutes().
			WithNamespaces(gwv1ac.RouteNamespaces().WithFrom(gwv1.NamespacesFromSame)).
			WithKinds(gwv1ac.RouteGroupKind().WithGroup(gwv1.GroupName).WithKind("HTTPRoute")))
	spec := gwv1ac.GatewaySpec().
		WithGatewayClassName(gwv1.ObjectName(o.gatewayClass())).
		WithListeners(listener, http)
	if o.GatewayAddress != "" {
		spec.WithAddresses(gwv1ac.GatewaySpecAddress().WithType(gwv1.NamedAddressType).WithValue(o.GatewayAddress))
	}
	gw := gwv1ac.Gateway(o.gatewayName(), o.gatewayNamespace()).
		WithLabels(warmLabels(ComponentGateway)).
		WithSpec(spec)
	if o.GatewayCertMap != "" {
		gw.WithAnnotations(map[string]string{AnnotationCertMap: o.GatewayCertMap})
	}
	return gw
}

// RedirectRoute builds the HTTPRoute <GatewayName>-https-redirect beside the shared Gateway: on
// its HTTP listener, every host under the domain is redirected (301) to the same URL over
// HTTPS.
func RedirectRoute(o Options) *gwv1ac.HTTPRouteApplyConfiguration {
	return gwv1ac.HTTPRoute(o.redirectRouteName(), o.gatewayNamespace()).
		WithLabels(warmLabels(ComponentGateway)).
		WithSpec(gwv1ac.HTTPRouteSpec().
			WithParentRefs(gwv1ac.ParentReference().
				WithName(gwv1.ObjectName(o.gatewayName())).
				WithSectionName(GatewayHTTPListener)).
			WithHostnames(gwv1.Hostname("*." + o.Domain)).
			WithRules(gwv1ac.HTTPRouteRule().
				WithFilters(gwv1ac.HTTPRouteFilter().
					WithType(gwv1.HTTPRouteFilterRequestRedirect).
					WithRequestRedirect(gwv1ac.HTTPRequestRedirectFilter().
						WithScheme("https").
						WithStatusCode(301)))))
}

// redirectRouteName is RedirectRoute's name.
func (o Options) redirectRouteName() string { return o.gatewayName() + "-https-redirect" }
