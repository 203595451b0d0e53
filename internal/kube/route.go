package kube

import (
	"context"
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

var _ session.Cluster = (*Cluster)(nil)

// ObjectGateway is the shared Gateway's kind, for errors.
const ObjectGateway session.ObjectKind = "Gateway"

// errNoGatewayClient is gateway mode on a Cluster built without the Gateway API's clients.
var errNoGatewayClient = errors.New("kube: gateway routing needs the Gateway API clients (kube.NewClients)")

// Route applies the workspace's route alone (server-side apply, like Apply): its Ingress in
// ingress mode, its HTTPRoute in gateway mode (and its Ingress too while KeepIngress). The
// backend is the activator while ws.Activator (and wake on access) says so, the workspace
// otherwise. Without wake on access the route is the one Apply wrote, whatever the state, so
// Route writes nothing: a workspace's start is not made to wait on a write that changes
// nothing. (A route left on the activator from when wake on access was on is drift the
// reconcile repairs: Observed.Reroute.)
func (c *Cluster) Route(ctx context.Context, ws session.Workspace) error {
	w, err := resolve(ws, c.opts)
	if err != nil || !c.opts.wakeOnAccess() {
		return err
	}
	return parallel(ctx, c.routeSteps(w)...)
}

// routeSteps write the routes the routing mode wants for w (see Route).
func (c *Cluster) routeSteps(w workspace) []func(context.Context) error {
	o, name := c.opts, w.names.Workspace
	var steps []func(context.Context) error
	if o.writesIngress() {
		steps = append(steps, applyStep(c, session.ObjectIngress, name, c.cs.NetworkingV1().Ingresses(o.Namespace).Apply, ingress(w, o)))
	}
	if o.gateway() {
		steps = append(steps, c.withGateway(session.ObjectHTTPRoute, name, func(gw gateway.Interface) func(context.Context) error {
			return applyStep(c, session.ObjectHTTPRoute, name, gw.GatewayV1().HTTPRoutes(o.Namespace).Apply, httpRoute(w, o))
		}))
	}
	return steps
}

// gatewaySteps are Apply's steps beyond Route's in gateway mode: GKE's policies of the
// workspace's Service on a GKE Gateway and, without KeepIngress, the removal of an Ingress
// (and of its certificate's Secret) left from ingress mode: the workspace keeps its host,
// served by the HTTPRoute. A new workspace has none to remove.
func (c *Cluster) gatewaySteps(w workspace) []func(context.Context) error {
	o, n := c.opts, w.names
	if !o.gateway() {
		return nil
	}
	var steps []func(context.Context) error
	if o.onGKE() {
		steps = append(steps,
			c.applyDynamic(HealthCheckPolicyResource, ObjectHealthCheckPolicy, healthCheckPolicy(w, o)),
			c.applyDynamic(BackendPolicyResource, ObjectBackendPolicy, backendPolicy(w, o)))
	}
	if !o.KeepIngress && !w.NewVolume {
		steps = append(steps,
			c.deleteStep(session.ObjectIngress, c.cs.NetworkingV1().Ingresses(o.Namespace), n.Workspace),
			c.deleteStep(session.ObjectSecret, c.cs.CoreV1().Secrets(o.Namespace), n.TLS))
	}
	return steps
}

// withGateway is step(c.gw), or a step that fails when the Cluster has no Gateway API client.
func (c *Cluster) withGateway(kind session.ObjectKind, name string, step func(gateway.Interface) func(context.Context) error) func(context.Context) error {
	if c.gw == nil {
		return func(context.Context) error { return c.kubeError("reach", kind, name, errNoGatewayClient) }
	}
	return step(c.gw)
}

// applyDynamic server-side applies u, an object of resource r, through the dynamic client.
func (c *Cluster) applyDynamic(r schema.GroupVersionResource, kind session.ObjectKind, u *unstructured.Unstructured) func(context.Context) error {
	return func(ctx context.Context) error {
		if c.dyn == nil {
			return c.kubeError("apply", kind, u.GetName(), errNoGatewayClient)
		}
		_, err := c.dyn.Resource(r).Namespace(u.GetNamespace()).Apply(ctx, u.GetName(), u, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		return c.kubeError("apply", kind, u.GetName(), err)
	}
}

// dynamicDeleter is a dynamic resource client as a deleter.
type dynamicDeleter struct {
	c *Cluster
	r schema.GroupVersionResource
}

func (d dynamicDeleter) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	if d.c.dyn == nil {
		return errNoGatewayClient
	}
	return d.c.dyn.Resource(d.r).Namespace(d.c.opts.Namespace).Delete(ctx, name, opts)
}

// EnsureGateway applies the shared Gateway (Gateway) and its redirect to HTTPS
// (RedirectRoute) in gateway mode; in ingress mode it does
// nothing. The sweep runs it every time, so a Gateway deleted or changed by hand comes back
// as configured.
func (c *Cluster) EnsureGateway(ctx context.Context) error {
	o := c.opts
	if !o.gateway() {
		return nil
	}
	name, ns := o.gatewayName(), o.gatewayNamespace()
	return parallel(ctx,
		c.withGateway(ObjectGateway, name, func(gw gateway.Interface) func(context.Context) error {
			return applyStep(c, ObjectGateway, name, gw.GatewayV1().Gateways(ns).Apply, Gateway(o))
		}),
		c.withGateway(session.ObjectHTTPRoute, o.redirectRouteName(), func(gw gateway.Interface) func(context.Context) error {
			return applyStep(c, session.ObjectHTTPRoute, o.redirectRouteName(), gw.GatewayV1().HTTPRoutes(ns).Apply, RedirectRoute(o))
		}))
}
