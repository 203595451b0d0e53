package kube

import (
	"context"
	"maps"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// objects are the labelled objects of one or more sessions, as listed.
type objects struct {
	pvcs        []corev1.PersistentVolumeClaim
	deployments []appsv1.Deployment
	services    []corev1.Service
	ingresses   []networkingv1.Ingress
	routes      []gwv1.HTTPRoute // gateway mode only
	netpols     []networkingv1.NetworkPolicy
	secrets     []metav1.PartialObjectMetadata // metadata only: a summary never needs a password
	pods        []corev1.Pod                   // workspace pods only
}

// list lists every kind (and the pods) matching selector, at once, each page by page.
func (c *Cluster) list(ctx context.Context, selector string) (*objects, error) {
	ns := c.opts.Namespace
	core, net := c.rd.CoreV1(), c.rd.NetworkingV1()
	var objs objects
	err := parallel(ctx,
		listStep(c, "PersistentVolumeClaims", selector, core.PersistentVolumeClaims(ns).List,
			func(l *corev1.PersistentVolumeClaimList) []corev1.PersistentVolumeClaim { return l.Items }, &objs.pvcs),
		listStep(c, "Deployments", selector, c.rd.AppsV1().Deployments(ns).List,
			func(l *appsv1.DeploymentList) []appsv1.Deployment { return l.Items }, &objs.deployments),
		listStep(c, "Services", selector, core.Services(ns).List,
			func(l *corev1.ServiceList) []corev1.Service { return l.Items }, &objs.services),
		listStep(c, "Ingresses", selector, net.Ingresses(ns).List,
			func(l *networkingv1.IngressList) []networkingv1.Ingress { return l.Items }, &objs.ingresses),
		listStep(c, "NetworkPolicies", selector, net.NetworkPolicies(ns).List,
			func(l *networkingv1.NetworkPolicyList) []networkingv1.NetworkPolicy { return l.Items }, &objs.netpols),
		c.listSecretsStep(selector, &objs.secrets),
		listStep(c, "Pods", selector, core.Pods(ns).List, podItems, &objs.pods),
		c.listRoutesStep(selector, &objs.routes),
	)
	if err != nil {
		return nil, err
	}
	objs.pods = slices.DeleteFunc(objs.pods, func(p corev1.Pod) bool { return p.Labels[LabelComponent] != ComponentWorkspace })
	return &objs, nil
}

// listSecretsStep lists the Secrets matching selector as metadata only: through the metadata
// client, or, without one (NewCluster), through the typed client, dropping the data on arrival.
func (c *Cluster) listSecretsStep(selector string, into *[]metav1.PartialObjectMetadata) func(context.Context) error {
	if c.md != nil {
		return listStep(c, "Secrets", selector,
			c.md.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(c.opts.Namespace).List,
			func(l *metav1.PartialObjectMetadataList) []metav1.PartialObjectMetadata { return l.Items }, into)
	}
	return listStep(c, "Secrets", selector, c.rd.CoreV1().Secrets(c.opts.Namespace).List,
		func(l *corev1.SecretList) []metav1.PartialObjectMetadata {
			out := make([]metav1.PartialObjectMetadata, len(l.Items))
			for i := range l.Items {
				out[i] = metav1.PartialObjectMetadata{ObjectMeta: l.Items[i].ObjectMeta}
			}
			return out
		}, into)
}

// listRoutesStep lists the HTTPRoutes matching selector in gateway mode; in ingress mode it
// lists nothing (a cluster may not have the kind at all).
func (c *Cluster) listRoutesStep(selector string, into *[]gwv1.HTTPRoute) func(context.Context) error {
	if !c.opts.gateway() {
		return func(context.Context) error { return nil }
	}
	if c.gwrd == nil {
		return func(context.Context) error { return c.listError("HTTPRoutes", selector, errNoGatewayClient) }
	}
	return listStep(c, "HTTPRoutes", selector, c.gwrd.GatewayV1().HTTPRoutes(c.opts.Namespace).List,
		func(l *gwv1.HTTPRouteList) []gwv1.HTTPRoute { return l.Items }, into)
}

func podItems(l *corev1.PodList) []corev1.Pod { return l.Items }

// listStep lists the objects of one kind (what, plural) matching selector into *into, page by
// page (Options.ListPageSize at a time) with a client's List; items takes a page's objects.
// A continue token the API server has expired (410 Expired: the list took longer than etcd
// keeps the page's revision) restarts the list from its first page, once; a second expiry is
// an error.
func listStep[L metav1.ListInterface, T any](c *Cluster, what, selector string,
	list func(context.Context, metav1.ListOptions) (L, error), items func(L) []T, into *[]T) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := listPages(ctx, c, selector, list, items, into); err != nil {
			return c.listError(what, selector, err)
		}
		return nil
	}
}

// listPages is listStep's paging, its error as the client returned it.
func listPages[L metav1.ListInterface, T any](ctx context.Context, c *Cluster, selector string,
	list func(context.Context, metav1.ListOptions) (L, error), items func(L) []T, into *[]T) error {
	opts := metav1.ListOptions{LabelSelector: selector, Limit: c.opts.pageSize()}
	var out []T
	restarted := false
	for {
		l, err := list(ctx, opts)
		if err != nil && opts.Continue != "" && !restarted && apierrors.IsResourceExpired(err) {
			restarted, out, opts.Continue = true, nil, ""
			continue
		}
		if err != nil {
			return err
		}
		out = append(out, items(l)...)
		if opts.Continue = l.GetContinue(); opts.Continue == "" {
			*into = out
			return nil
		}
	}
}

// Observe reports what the cluster holds for session id: an Observed with no Kinds when it
// holds nothing (not an error).
func (c *Cluster) Observe(ctx context.Context, id string) (*session.Observed, error) {
	sel, err := SessionSelector(id)
	if err != nil {
		return nil, err
	}
	objs, err := c.list(ctx, sel)
	if err != nil {
		return nil, err
	}
	return summarize(id, objs, c.opts), nil
}

// ObserveAll reports every session that has labelled objects in the namespace, by id.
// Objects whose session label is not a valid id are ignored.
func (c *Cluster) ObserveAll(ctx context.Context) ([]*session.Observed, error) {
	objs, err := c.list(ctx, ManagedSelector())
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	pvcs, deployments := bySession(objs.pvcs, ids), bySession(objs.deployments, ids)
	services, ingresses := bySession(objs.services, ids), bySession(objs.ingresses, ids)
	netpols, secrets := bySession(objs.netpols, ids), bySession(objs.secrets, ids)
	pods, routes := bySession(objs.pods, ids), bySession(objs.routes, ids)
	out := make([]*session.Observed, 0, len(ids))
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		obs := summarize(id, &objects{
			pvcs: pvcs[id], deployments: deployments[id], services: services[id], ingresses: ingresses[id],
			netpols: netpols[id], secrets: secrets[id], pods: pods[id], routes: routes[id],
		}, c.opts)
		if obs.Exists() {
			out = append(out, obs)
		}
	}
	return out, nil
}

// bySession groups items by their session label, and adds each session to ids. Objects whose
// label is not a valid id are left out.
func bySession[T any, PT interface {
	*T
	metav1.Object
}](items []T, ids map[string]bool) map[string][]T {
	by := map[string][]T{}
	for i := range items {
		if id := PT(&items[i]).GetLabels()[LabelSession]; session.ValidID(id) {
			by[id] = append(by[id], items[i])
			ids[id] = true
		}
	}
	return by
}

// find returns the object of items named name (objects are matched by name as well as label,
// so a stray object carrying a session's label is not taken for one of its own).
func find[T any, PT interface {
	*T
	metav1.Object
}](items []T, name string) PT {
	for i := range items {
		if PT(&items[i]).GetName() == name {
			return &items[i]
		}
	}
	return nil
}

// strayBackend reports whether the Ingress or the HTTPRoute sends its host to a Service other
// than the workspace's own (name). Without wake on access that is the activator's route left
// from when it was on: nothing would ever switch it back.
func strayBackend(name string, ing *networkingv1.Ingress, route *gwv1.HTTPRoute) bool {
	if ing != nil {
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				if b := p.Backend.Service; b != nil && b.Name != name {
					return true
				}
			}
		}
	}
	if route != nil {
		for _, r := range route.Spec.Rules {
			for _, b := range r.BackendRefs {
				if string(b.Name) != name {
					return true
				}
			}
		}
	}
	return false
}

// summarize turns the listed objects of session id into an Observed, o's routing telling
// whether its routes are the ones wanted (Observed.Reroute). It is pure.
func summarize(id string, objs *objects, o Options) *session.Observed {
	obs := &session.Observed{ID: id}
	n, err := NamesFor(id)
	if err != nil {
		return obs
	}
	pvc := find(objs.pvcs, n.Data)
	dep := find(objs.deployments, n.Workspace)
	svc := find(objs.services, n.Workspace)
	ing := find(objs.ingresses, n.Workspace)
	route := find(objs.routes, n.Workspace)
	np := find(objs.netpols, n.Workspace)
	sec := find(objs.secrets, n.Auth)

	// Present objects, in the order their metadata is trusted: the Deployment first.
	var metas []metav1.Object
	add := func(kind session.ObjectKind, present bool, m metav1.Object) {
		if present {
			obs.Kinds = append(obs.Kinds, kind)
			metas = append(metas, m)
		}
	}
	add(session.ObjectDeployment, dep != nil, dep)
	add(session.ObjectPVC, pvc != nil, pvc)
	add(session.ObjectService, svc != nil, svc)
	add(session.ObjectIngress, ing != nil, ing)
	add(session.ObjectHTTPRoute, route != nil, route)
	add(session.ObjectNetworkPolicy, np != nil, np)
	add(session.ObjectSecret, sec != nil, sec)
	slices.SortFunc(obs.Kinds, func(a, b session.ObjectKind) int {
		return slices.Index(session.KindOrder, a) - slices.Index(session.KindOrder, b)
	})
	// Whole with either route: a session moving between routings is never taken for a
	// broken one (Reroute says its routes want applying).
	obs.Complete = pvc != nil && dep != nil && svc != nil && np != nil && sec != nil && (ing != nil || route != nil)
	obs.Reroute = dep != nil && (o.gateway() && (route == nil || (ing != nil) != o.KeepIngress) ||
		!o.wakeOnAccess() && strayBackend(n.Workspace, ing, route))
	if len(metas) == 0 {
		return obs
	}

	for _, m := range metas {
		if u := m.GetAnnotations()[AnnotationUserID]; u != "" && obs.UserID == "" {
			obs.UserID = u
		}
		if d, err := time.ParseDuration(m.GetAnnotations()[AnnotationIdleTimeout]); err == nil && obs.IdleTimeout == 0 {
			obs.IdleTimeout = d
		}
	}
	obs.Labels = UserLabels(metas[0].GetLabels())
	obs.Created = created(metas)

	if pvc != nil {
		obs.PVCPhase = string(pvc.Status.Phase)
		obs.Storage = request(pvc.Spec.Resources.Requests, corev1.ResourceStorage)
	}
	if dep != nil {
		if ctr := workspaceContainer(dep); ctr != nil {
			obs.Image = ctr.Image
			obs.CPU = request(ctr.Resources.Requests, corev1.ResourceCPU)
			obs.Memory = request(ctr.Resources.Requests, corev1.ResourceMemory)
		}
	}
	observeReadiness(obs, dep, objs.pods)
	return obs
}

// request is the quantity requested of a resource, "" when none is.
func request(l corev1.ResourceList, name corev1.ResourceName) string {
	if q, ok := l[name]; ok {
		return q.String()
	}
	return ""
}

// created is the session's creation time: the earliest created-at annotation, or, when no
// object carries one, the oldest object's creation time.
func created(metas []metav1.Object) time.Time {
	var annotated, oldest time.Time
	for _, m := range metas {
		if t, err := time.Parse(time.RFC3339, m.GetAnnotations()[AnnotationCreatedAt]); err == nil {
			if annotated.IsZero() || t.Before(annotated) {
				annotated = t
			}
		}
		if t := m.GetCreationTimestamp().Time; !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	if !annotated.IsZero() {
		return annotated.UTC()
	}
	return oldest.UTC()
}

func workspaceContainer(dep *appsv1.Deployment) *corev1.Container {
	cs := dep.Spec.Template.Spec.Containers
	for i := range cs {
		if cs[i].Name == ContainerName {
			return &cs[i]
		}
	}
	if len(cs) > 0 {
		return &cs[0]
	}
	return nil
}
