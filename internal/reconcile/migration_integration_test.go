package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// routing moves w to gateway routing (keeping the Ingress or not): the cluster adapter and
// the Service are made again with the new options over the same namespace, store and
// records, as a deployment restarted with new settings is.
func (w *world) routing(t *testing.T, keepIngress bool) {
	t.Helper()
	o := w.cluster.Options()
	o.Routing, o.KeepIngress = kube.RoutingGateway, keepIngress
	o.GatewayClass, o.GatewaySourceCIDRs = "hyperbola-local", kube.DefaultGatewaySourceCIDRs()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	cl, err := kube.NewClients(env.Kube.Config, kube.Budgets{})
	if err != nil {
		t.Fatal(err)
	}
	w.cluster = kube.NewClusterFromClients(cl, o)
	w.svc = session.NewService(w.cluster, w.store, session.Options{Domain: domain, Recorder: w.recorder})
}

// untouched is what a move between routings must leave alone: each workspace's Deployment
// (generation, pod template, pods) and volume (its claim's uid).
func (w *world) untouched(t *testing.T, ids ...string) map[string]string {
	t.Helper()
	ctx, get := t.Context(), metav1.GetOptions{}
	out := map[string]string{}
	for _, id := range ids {
		n, _ := kube.NamesFor(id)
		dep, err := w.cs.AppsV1().Deployments(w.ns).Get(ctx, n.Workspace, get)
		if err != nil {
			t.Fatal(err)
		}
		pvc, err := w.cs.CoreV1().PersistentVolumeClaims(w.ns).Get(ctx, n.Data, get)
		if err != nil {
			t.Fatal(err)
		}
		sel, _ := kube.ComponentSelector(id, kube.ComponentWorkspace)
		pods, err := w.cs.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			t.Fatal(err)
		}
		var uids []string
		for _, p := range pods.Items {
			uids = append(uids, string(p.UID))
		}
		slices.Sort(uids)
		out[id] = fmt.Sprintf("generation %d template %s replicas %d pods %v claim %s", dep.Generation,
			dep.Spec.Template.Annotations[kube.AnnotationTemplate], *dep.Spec.Replicas, uids, pvc.UID)
	}
	return out
}

// routes reports the host and backend of session id's Ingress and HTTPRoute ("" when absent).
func (w *world) routes(t *testing.T, id string) (ingress, route string) {
	t.Helper()
	ctx, n := t.Context(), must(kube.NamesFor(id))
	ing, err := w.cs.NetworkingV1().Ingresses(w.ns).Get(ctx, n.Workspace, metav1.GetOptions{})
	switch {
	case err == nil && ing.DeletionTimestamp == nil:
		ingress = ing.Spec.Rules[0].Host + " → " + ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name
	case err != nil && !apierrors.IsNotFound(err):
		t.Fatal(err)
	}
	gw, err := gateway.NewForConfig(env.Kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	r, err := gw.GatewayV1().HTTPRoutes(w.ns).Get(ctx, n.Workspace, metav1.GetOptions{})
	switch {
	case err == nil:
		route = string(r.Spec.Hostnames[0]) + " → " + string(r.Spec.Rules[0].BackendRefs[0].Name)
	case !apierrors.IsNotFound(err):
		t.Fatal(err)
	}
	return ingress, route
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// Live sessions created with ingress routing move to gateway routing by reconcile alone: with
// the Ingress kept, each gets its HTTPRoute beside its Ingress (same host, same backend);
// without, its Ingress goes and its HTTPRoute stays. No workspace restarts, no volume is
// touched, the URLs stay, and the sessions go on working (a wake flips the route).
func TestIntegrationMoveLiveSessionsToGateway(t *testing.T) {
	w := newWorld(t, func(o *kube.Options) { o.ActivatorService = "hyperbola-activator" })
	ctx := t.Context()
	running, err := w.svc.Create(ctx, session.CreateRequest{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	asleep, err := w.svc.Create(ctx, session.CreateRequest{UserID: "bob", State: session.StateSleeping})
	if err != nil {
		t.Fatal(err)
	}
	w.waitState(t, running.ID, session.StateRunning)
	w.waitState(t, asleep.ID, session.StateSleeping)
	host := func(id string) string { return must(kube.NamesFor(id)).Host(domain) }
	workspace := func(id string) string { return host(id) + " → " + must(kube.NamesFor(id)).Workspace }
	activator := func(id string) string { return host(id) + " → hyperbola-activator" }
	check := func(stage string, wantIngress bool) {
		t.Helper()
		for id, want := range map[string]string{running.ID: workspace(running.ID), asleep.ID: activator(asleep.ID)} {
			ing, route := w.routes(t, id)
			if route != want || (wantIngress && ing != want) || (!wantIngress && ing != "") {
				t.Errorf("%s: %s has ingress %q route %q, want route %q (ingress kept: %v)", stage, id, ing, route, want, wantIngress)
			}
		}
	}
	before := w.untouched(t, running.ID, asleep.ID)

	// Gateway routing, keeping the Ingresses: one reconcile gives every session its route.
	w.routing(t, true)
	rep := w.reconcile(t, Options{})
	if got := ids(rep.Repaired); !slices.Equal(got, sorted(running.ID, asleep.ID)) || len(rep.Errors) != 0 {
		t.Fatalf("keeping the ingress: repaired %v, report %+v", got, rep)
	}
	w.waitState(t, running.ID, session.StateRunning)
	check("keeping the ingress", true)
	if rep := w.reconcile(t, Options{}); rep.Changed() {
		t.Errorf("a second run while keeping the ingress: %+v", rep)
	}

	// Then without them: one reconcile removes every Ingress.
	w.routing(t, false)
	rep = w.reconcile(t, Options{})
	if got := ids(rep.Repaired); !slices.Equal(got, sorted(running.ID, asleep.ID)) || len(rep.Errors) != 0 {
		t.Fatalf("moved: repaired %v, report %+v", got, rep)
	}
	w.waitState(t, running.ID, session.StateRunning)
	eventually(t, 30*time.Second, "the Ingresses gone", func() (bool, error) {
		a, _ := w.routes(t, running.ID)
		b, _ := w.routes(t, asleep.ID)
		return a == "" && b == "", nil
	})
	check("moved", false)
	if rep := w.reconcile(t, Options{}); rep.Changed() {
		t.Errorf("a second run after the move: %+v", rep)
	}
	for _, id := range []string{running.ID, asleep.ID} {
		s, err := w.svc.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.WorkspaceURL != "https://"+host(id) {
			t.Errorf("%s: url %s", id, s.WorkspaceURL)
		}
		if obs := w.observe(t, id); !obs.Complete || obs.Reroute || !slices.Equal(obs.Kinds, session.GatewayWorkspaceKinds) {
			t.Errorf("%s after the move: %+v", id, obs)
		}
	}
	if after := w.untouched(t, running.ID, asleep.ID); !maps.Equal(before, after) {
		t.Errorf("a workspace changed in the move:\nbefore %v\nafter  %v", before, after)
	}

	// The moved sessions go on working: a wake sends the host back to the workspace.
	if _, err := w.svc.Wake(ctx, asleep.ID); err != nil {
		t.Fatal(err)
	}
	w.waitState(t, asleep.ID, session.StateRunning)
	if _, route := w.routes(t, asleep.ID); route != workspace(asleep.ID) {
		t.Errorf("woken after the move: route %q", route)
	}
}
