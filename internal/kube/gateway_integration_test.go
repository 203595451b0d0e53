package kube

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// The API server (with the Gateway API's standard-channel CRDs, as up.sh installs them) accepts
// the shared Gateway in each of its shapes, and EnsureGateway is idempotent.
func TestIntegrationEnsureGateway(t *testing.T) {
	for name, mutate := range map[string]func(*Options){
		"gke": func(o *Options) {
			o.GatewayClass, o.GatewayCertMap, o.GatewayAddress = DefaultGatewayClass, "hyperbola-wildcard", "hyperbola-ip"
		},
		"local": func(o *Options) { o.GatewayTLSSecret = "hyperbola-wildcard-tls" },
	} {
		t.Run(name, func(t *testing.T) {
			c, cs := newCluster(t, inGateway, mutate)
			o := c.Options()
			for range 2 {
				if err := c.EnsureGateway(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			g, err := gatewayClient(t, cs).GatewayV1().Gateways(o.Namespace).Get(t.Context(), DefaultGatewayName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if string(g.Spec.GatewayClassName) != o.gatewayClass() || *g.Spec.Listeners[0].Hostname != gwv1.Hostname("*."+o.Domain) ||
				g.Labels[LabelManagedBy] != ManagedByValue {
				t.Errorf("gateway %+v", g)
			}
			if g.Generation != 1 {
				t.Errorf("a repeated EnsureGateway changed the Gateway: generation %d", g.Generation)
			}
			r, err := gatewayClient(t, cs).GatewayV1().HTTPRoutes(o.Namespace).Get(t.Context(), o.redirectRouteName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if f := r.Spec.Rules[0].Filters[0]; f.RequestRedirect == nil || *f.RequestRedirect.Scheme != "https" || r.Generation != 1 {
				t.Errorf("redirect route %+v", r)
			}
			// the shared objects belong to no session: observing every session skips them
			if all, err := c.ObserveAll(t.Context()); err != nil || len(all) != 0 {
				t.Errorf("ObserveAll = %v, %v", all, err)
			}
		})
	}
	// ingress mode: nothing, not even a request for a kind the cluster may not have
	c, _ := newCluster(t)
	if err := c.EnsureGateway(t.Context()); err != nil {
		t.Errorf("ingress mode: %v", err)
	}
}

// A session moves from ingress to gateway routing without a restart: with KeepIngress both
// routes serve the same host; without it Apply removes the Ingress. The Deployment's template
// and generation and the claim stay as they were.
func TestIntegrationMoveToGateway(t *testing.T) {
	ingress, cs := newCluster(t)
	o := ingress.Options()
	ctx := t.Context()
	ws := newWorkspace(t)
	n, _ := NamesFor(ws.ID)
	if err := ingress.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "Ready", func() (bool, error) { return observe(t, ingress, ws.ID).Ready, nil })
	dep0, pvc0 := workspaceState(t, ingress, n)

	gatewayed := func(keep bool) *Cluster {
		oo := o
		inGateway(&oo)
		oo.KeepIngress = keep
		cl, err := NewClients(env.Kube.Config, Budgets{})
		if err != nil {
			t.Fatal(err)
		}
		return NewClusterFromClients(cl, oo)
	}
	keep := gatewayed(true)
	if obs := observe(t, keep, ws.ID); !obs.Complete || !obs.Reroute {
		t.Errorf("before the move: complete %v reroute %v", obs.Complete, obs.Reroute)
	}
	again := ws
	again.Password = ""
	if err := keep.Apply(ctx, again); err != nil {
		t.Fatal(err)
	}
	objs := withoutPods(labelled(t, cs, o.Namespace, ws.ID))
	if !slices.Contains(objs, "Ingress/"+n.Workspace) || !slices.Contains(objs, "HTTPRoute/"+n.Workspace) {
		t.Errorf("keeping the ingress: %v", objs)
	}
	if obs := observe(t, keep, ws.ID); !obs.Complete || obs.Reroute || !slices.Equal(obs.Kinds, session.KindOrder) {
		t.Errorf("keeping the ingress: %+v", obs)
	}
	// Both send the same host to the same place; the route flips with the workspace's state.
	r := getRoute(t, n, o.Namespace)
	ing, err := cs.NetworkingV1().Ingresses(o.Namespace).Get(ctx, n.Workspace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Spec.Hostnames[0]) != ing.Spec.Rules[0].Host || routedTo(t, cs, o.Namespace, n, true) != routedTo(t, cs, o.Namespace, n, false) {
		t.Errorf("route %v → %s, ingress %s → %s", r.Spec.Hostnames, routedTo(t, cs, o.Namespace, n, true), ing.Spec.Rules[0].Host, routedTo(t, cs, o.Namespace, n, false))
	}
	asleep := again
	asleep.Activator = true
	if err := keep.Route(ctx, asleep); err != nil {
		t.Fatal(err)
	}
	if a, b := routedTo(t, cs, o.Namespace, n, true), routedTo(t, cs, o.Namespace, n, false); a != "hyperbola-activator" || b != a {
		t.Errorf("routed to the activator: route %s, ingress %s", a, b)
	}
	if err := keep.Route(ctx, again); err != nil {
		t.Fatal(err)
	}

	gw := gatewayed(false)
	if obs := observe(t, gw, ws.ID); !obs.Reroute {
		t.Errorf("an Ingress left: reroute %v", obs.Reroute)
	}
	if err := gw.Apply(ctx, again); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the Ingress gone", func() (bool, error) {
		return !slices.Contains(labelled(t, cs, o.Namespace, ws.ID), "Ingress/"+n.Workspace), nil
	})
	if obs := observe(t, gw, ws.ID); !obs.Complete || obs.Reroute || !slices.Equal(obs.Kinds, session.GatewayWorkspaceKinds) || !obs.Ready {
		t.Errorf("after the move: %+v", obs)
	}
	if r := getRoute(t, n, o.Namespace); string(r.Spec.Hostnames[0]) != n.Host(o.Domain) || routedTo(t, cs, o.Namespace, n, true) != n.Workspace {
		t.Errorf("after the move: route %v", r.Spec)
	}
	dep1, pvc1 := workspaceState(t, gw, n)
	if !maps.Equal(dep0, dep1) || pvc0 != pvc1 {
		t.Errorf("the workspace changed: deployment %v → %v, claim %s → %s", dep0, dep1, pvc0, pvc1)
	}
}

func getRoute(t *testing.T, n Names, ns string) *gwv1.HTTPRoute {
	t.Helper()
	r, err := gatewayClient(t, env.Kube.Client).GatewayV1().HTTPRoutes(ns).Get(t.Context(), n.Workspace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// workspaceState is what must not change when a session's routing moves: the Deployment's
// generation, template hash and pod uid, and the claim's uid.
func workspaceState(t *testing.T, c *Cluster, n Names) (map[string]string, string) {
	t.Helper()
	ctx, ns := t.Context(), c.Options().Namespace
	dep, err := c.cs.AppsV1().Deployments(ns).Get(ctx, n.Workspace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pvc, err := c.cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, n.Data, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := ComponentSelector(n.ID, ComponentWorkspace)
	pods, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	var uids []string
	for _, p := range pods.Items {
		uids = append(uids, string(p.UID))
	}
	slices.Sort(uids)
	return map[string]string{
		"generation": fmt.Sprint(dep.Generation),
		"template":   dep.Spec.Template.Annotations[AnnotationTemplate],
		"pods":       fmt.Sprint(uids),
	}, string(pvc.UID)
}
