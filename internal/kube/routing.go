package kube

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The routing modes (Options.Routing, docs/operations/routing.md): how a workspace's host
// reaches its pod.
const (
	// RoutingIngress gives each workspace an Ingress (ingress-nginx) with a certificate of
	// its own from cert-manager.
	RoutingIngress = "ingress"
	// RoutingGateway gives each workspace an HTTPRoute on one shared Gateway that holds a
	// single wildcard certificate for *.<domain>: no certificate per workspace, so no
	// certificate authority's weekly limit on how many workspaces can start.
	RoutingGateway = "gateway"
)

// The Gateway's defaults when Options name none.
const (
	// DefaultGatewayName is the shared Gateway's name.
	DefaultGatewayName = "hyperbola"
	// DefaultGatewayClass is GKE's global external Application Load Balancer: the one
	// GatewayClass of GKE that serves a Certificate Manager map (a wildcard certificate
	// authorised by DNS) on a global static IP.
	DefaultGatewayClass = "gke-l7-global-external-managed"
	// GKEGatewayClassPrefix starts the name of every GatewayClass of GKE's own controller:
	// with one, each workspace also gets GKE's HealthCheckPolicy and GCPBackendPolicy.
	GKEGatewayClassPrefix = "gke-"
	// GatewayListener is the Gateway's HTTPS listener, the section every HTTPRoute attaches to.
	GatewayListener = "https"
	// GatewayHTTPSPort is that listener's port.
	GatewayHTTPSPort int32 = 443
	// GatewayHTTPListener and GatewayHTTPPort are the Gateway's plain HTTP listener, which
	// only redirects to HTTPS (RedirectRoute).
	GatewayHTTPListener       = "http"
	GatewayHTTPPort     int32 = 80
	// AnnotationCertMap names the Certificate Manager map a GKE Gateway serves its
	// certificates from.
	AnnotationCertMap = "networking.gke.io/certmap"
	// ComponentGateway labels the shared Gateway: it belongs to no session.
	ComponentGateway = "gateway"
)

// DefaultGatewaySourceCIDRs are where GKE's Google front ends and health checkers reach a
// workspace pod from (a container-native load balancer sends to the pod's IP): the only
// sources a workspace's port admits in gateway mode, besides the probe's.
func DefaultGatewaySourceCIDRs() []string { return []string{"35.191.0.0/16", "130.211.0.0/22"} }

// gateway reports whether the options route through a Gateway.
func (o Options) gateway() bool { return o.Routing == RoutingGateway }

// writesIngress reports whether Apply and Route write a workspace's Ingress: always in
// ingress mode, and in gateway mode while KeepIngress (a migration: both entry points serve
// every workspace while DNS moves).
func (o Options) writesIngress() bool { return !o.gateway() || o.KeepIngress }

// gatewayName is the shared Gateway's name.
func (o Options) gatewayName() string {
	if o.GatewayName != "" {
		return o.GatewayName
	}
	return DefaultGatewayName
}

// gatewayNamespace is the shared Gateway's namespace: the workspaces' by default.
func (o Options) gatewayNamespace() string {
	if o.GatewayNamespace != "" {
		return o.GatewayNamespace
	}
	return o.Namespace
}

// gatewayClass is the shared Gateway's class.
func (o Options) gatewayClass() string {
	if o.GatewayClass != "" {
		return o.GatewayClass
	}
	return DefaultGatewayClass
}

// onGKE reports whether the Gateway is GKE's own (its class starts with "gke-"): its
// workspaces get GKE's policies, and their routes no timeouts (GKE takes the backend's timeout
// from GCPBackendPolicy).
func (o Options) onGKE() bool { return strings.HasPrefix(o.gatewayClass(), GKEGatewayClassPrefix) }

// gatewayActivatorPort is the activator Service's port an HTTPRoute names: in gateway mode the
// activator's Service is plain HTTP (on GKE an in-cluster relay that speaks HTTPS to Cloud Run
// itself), so 0 is ActivatorPortHTTP whatever ActivatorHost says.
func (o Options) gatewayActivatorPort() int32 {
	if o.ActivatorPort != 0 {
		return o.ActivatorPort
	}
	return ActivatorPortHTTP
}

// OptionError is an Options field refused by Validate: Field is its name in Options (such as
// "GatewayName"), so that the caller can name the setting it came from.
type OptionError struct {
	Field string
	Err   error
}

func (e *OptionError) Error() string { return "kube options: " + e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

// optionError is an OptionError about field.
func optionError(field, format string, args ...any) error {
	return &OptionError{Field: field, Err: fmt.Errorf(format, args...)}
}

// validateRouting checks the routing mode and, in gateway mode, the Gateway's settings.
func (o Options) validateRouting() error {
	switch o.Routing {
	case "", RoutingIngress, RoutingGateway:
	default:
		return optionError("Routing", "routing %q: want %q or %q", o.Routing, RoutingIngress, RoutingGateway)
	}
	if o.writesIngress() {
		if errs := validation.IsDNS1123Label(o.IngressNamespace); len(errs) > 0 {
			return optionError("IngressNamespace", "ingress namespace %q: %s", o.IngressNamespace, strings.Join(errs, "; "))
		}
	}
	if !o.gateway() {
		return nil
	}
	for _, c := range []struct {
		field, what, v string
		check          func(string) []string
	}{
		{"GatewayName", "gateway name", o.GatewayName, validation.IsDNS1123Subdomain},
		{"GatewayNamespace", "gateway namespace", o.GatewayNamespace, validation.IsDNS1123Label},
		{"GatewayClass", "gateway class", o.GatewayClass, validation.IsDNS1123Subdomain},
		// Google Cloud resource names: a letter, then up to 62 lowercase letters, digits and hyphens
		{"GatewayCertMap", "gateway certificate map", o.GatewayCertMap, validation.IsDNS1123Label},
		{"GatewayAddress", "gateway address", o.GatewayAddress, validation.IsDNS1123Label},
		{"GatewayTLSSecret", "gateway TLS secret", o.GatewayTLSSecret, validation.IsDNS1123Subdomain},
	} {
		if c.v == "" {
			continue
		}
		if errs := c.check(c.v); len(errs) > 0 {
			return optionError(c.field, "%s %q: %s", c.what, c.v, strings.Join(errs, "; "))
		}
	}
	switch {
	case o.GatewayCertMap != "" && o.GatewayTLSSecret != "":
		return optionError("GatewayCertMap", "a gateway certificate map and a gateway TLS secret: set one (the map on GKE, the Secret elsewhere)")
	case len(o.GatewaySourceCIDRs) == 0:
		return optionError("GatewaySourceCIDRs", "gateway source CIDRs are empty: the Gateway's proxies could reach no workspace")
	}
	if err := ValidateCIDRs(o.GatewaySourceCIDRs); err != nil {
		return optionError("GatewaySourceCIDRs", "gateway source CIDRs: %w", err)
	}
	return nil
}
