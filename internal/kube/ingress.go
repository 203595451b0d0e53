package kube

import (
	"maps"

	networkingv1 "k8s.io/api/networking/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// How nginx serves a workspace, and where the activator listens.
const (
	// IngressProxyTimeout is nginx's read/send timeout in seconds: code-server's websocket
	// stays open for as long as the tab is, and nginx would cut it after 60 s of silence.
	IngressProxyTimeout = "3600"
	// IngressProxyBodySize lets a user upload files of up to this size through the editor.
	IngressProxyBodySize = "100m"
	// ActivatorPortHTTPS and ActivatorPortHTTP are the activator Service's port when
	// Options.ActivatorPort is 0: 443 when the activator is reached over HTTPS (ActivatorHost
	// set, the hyperbola-activator Service of infra/modules/cluster-addons), 80 otherwise.
	ActivatorPortHTTPS int32 = 443
	ActivatorPortHTTP  int32 = 80
)

// The ingress-nginx annotations of a route to the activator.
const (
	AnnotationBackendProtocol     = "nginx.ingress.kubernetes.io/backend-protocol"
	AnnotationUpstreamVhost       = "nginx.ingress.kubernetes.io/upstream-vhost"
	AnnotationProxySSLSecret      = "nginx.ingress.kubernetes.io/proxy-ssl-secret"
	AnnotationProxySSLVerify      = "nginx.ingress.kubernetes.io/proxy-ssl-verify"
	AnnotationProxySSLName        = "nginx.ingress.kubernetes.io/proxy-ssl-name"
	AnnotationProxySSLServerName  = "nginx.ingress.kubernetes.io/proxy-ssl-server-name"
	AnnotationProxySSLVerifyDepth = "nginx.ingress.kubernetes.io/proxy-ssl-verify-depth"
)

// ActivatorVerifyDepth is how many CA certificates above the activator's own nginx may walk
// to a root of the CA Secret. nginx's default (1) admits one intermediate below the root;
// Cloud Run serves one today (leaf, WR2, GTS Root R1), and 2 keeps a cross-signed chain
// (GTS Root R1 under GlobalSign Root CA) verifiable too.
const ActivatorVerifyDepth = "2"

// DefaultActivatorCASecret is the Secret (key ca.crt) in the workspace namespace whose CAs
// verify the activator's host when Options.ActivatorCASecret is "": the one
// infra/modules/cluster-addons creates beside the activator's Service.
const DefaultActivatorCASecret = "hyperbola-activator-ca"

// activatorCASecret is the Secret of CAs that verify the activator's host.
func (o Options) activatorCASecret() string {
	if o.ActivatorCASecret != "" {
		return o.ActivatorCASecret
	}
	return DefaultActivatorCASecret
}

// activatorPort is the activator Service's port the Ingress names.
func (o Options) activatorPort() int32 {
	switch {
	case o.ActivatorPort != 0:
		return o.ActivatorPort
	case o.ActivatorHost != "":
		return ActivatorPortHTTPS
	}
	return ActivatorPortHTTP
}

// RoutesToActivator reports whether the Ingress of ws sends its host to the activator.
func (o Options) RoutesToActivator(ws session.Workspace) bool {
	return ws.Activator && o.wakeOnAccess()
}

// wakeOnAccess reports whether a workspace's route follows its state (to the activator while
// it does not run). Without it every state routes to the workspace: there is no switch.
func (o Options) wakeOnAccess() bool { return o.ActivatorService != "" }

// Ingress builds the workspace's Ingress, vs-code-<id>, serving vs-code-<id>.<domain> over
// TLS with a certificate cert-manager writes to vs-code-<id>-tls. Its backend is the
// workspace's Service, or, while the workspace is not running and wake on access is on
// (Options.RoutesToActivator), the activator's Service with the annotations that reach it.
// Server-side apply drops the activator's annotations again when the route goes back.
func Ingress(ws session.Workspace, o Options) (*networkingv1ac.IngressApplyConfiguration, error) {
	return build(ws, o, ingress)
}

func ingress(w workspace, o Options) *networkingv1ac.IngressApplyConfiguration {
	host := w.names.Host(o.Domain)
	ann := maps.Clone(w.annotations)
	ann["nginx.ingress.kubernetes.io/proxy-read-timeout"] = IngressProxyTimeout
	ann["nginx.ingress.kubernetes.io/proxy-send-timeout"] = IngressProxyTimeout
	ann["nginx.ingress.kubernetes.io/proxy-body-size"] = IngressProxyBodySize
	if o.ClusterIssuer != "" {
		ann["cert-manager.io/cluster-issuer"] = o.ClusterIssuer
	}
	backend := networkingv1ac.IngressServiceBackend().
		WithName(w.names.Workspace).
		WithPort(networkingv1ac.ServiceBackendPort().WithName(PortName))
	if o.RoutesToActivator(w.Workspace) && o.gateway() {
		// An Ingress kept beside the HTTPRoute (KeepIngress): the activator's Service is then
		// gateway mode's plain HTTP relay, which sets the activator's Host itself.
		backend = networkingv1ac.IngressServiceBackend().
			WithName(o.ActivatorService).
			WithPort(networkingv1ac.ServiceBackendPort().WithNumber(o.gatewayActivatorPort()))
	} else if o.RoutesToActivator(w.Workspace) {
		backend = networkingv1ac.IngressServiceBackend().
			WithName(o.ActivatorService).
			WithPort(networkingv1ac.ServiceBackendPort().WithNumber(o.activatorPort()))
		if o.ActivatorHost != "" {
			ann[AnnotationBackendProtocol] = "HTTPS"
			ann[AnnotationUpstreamVhost] = o.ActivatorHost
			// verified unless explicitly skipped: the password form and the cookies of a
			// sleeping workspace cross this hop
			if !o.ActivatorSkipVerify {
				ann[AnnotationProxySSLSecret] = o.Namespace + "/" + o.activatorCASecret()
				ann[AnnotationProxySSLVerify] = "on"
				ann[AnnotationProxySSLVerifyDepth] = ActivatorVerifyDepth
				ann[AnnotationProxySSLName] = o.ActivatorHost
				ann[AnnotationProxySSLServerName] = "on"
			}
		}
	}
	ingSpec := networkingv1ac.IngressSpec().
		WithTLS(networkingv1ac.IngressTLS().WithHosts(host).WithSecretName(w.names.TLS)).
		WithRules(networkingv1ac.IngressRule().
			WithHost(host).
			WithHTTP(networkingv1ac.HTTPIngressRuleValue().
				WithPaths(networkingv1ac.HTTPIngressPath().
					WithPath("/").
					WithPathType(networkingv1.PathTypePrefix).
					WithBackend(networkingv1ac.IngressBackend().WithService(backend)))))
	if o.IngressClass != "" {
		ingSpec.WithIngressClassName(o.IngressClass)
	}
	return networkingv1ac.Ingress(w.names.Workspace, o.Namespace).
		WithLabels(w.labels).
		WithAnnotations(ann).
		WithSpec(ingSpec)
}
