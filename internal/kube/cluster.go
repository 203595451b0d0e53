package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Cluster implements session.Cluster with client-go: server-side apply with field manager
// "hyperbola", scaling through the scale subresource, observation by label. Every method is
// idempotent, and a bad session id returns session.CheckID's error before any API call.
type Cluster struct {
	cs   kubernetes.Interface
	opts Options
	now  func() time.Time
}

var _ session.Cluster = (*Cluster)(nil)

// NewCluster returns a Cluster that manages sessions in opts.Namespace through cs. The options
// are expected to be valid (OptionsFromConfig, Options.Validate).
func NewCluster(cs kubernetes.Interface, opts Options) *Cluster {
	return &Cluster{cs: cs, opts: opts, now: time.Now}
}

// Options returns the cluster's options.
func (c *Cluster) Options() Options { return c.opts }

// RESTConfig loads a client configuration: from the kubeconfig file (and kubeContext, "" for
// its current one) when either is set, from the pod's service account otherwise.
// Client-side rate limiting is raised from client-go's 5 QPS to 100: one Apply makes six requests
// at once and one Observe seven.
func RESTConfig(kubeconfig, kubeContext string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" && kubeContext == "" {
		if cfg, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("kube: in-cluster config (set KUBECONFIG outside a cluster): %w", err)
		}
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if kubeconfig != "" {
			rules.ExplicitPath = kubeconfig
		}
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
		if cfg, err = cc.ClientConfig(); err != nil {
			return nil, fmt.Errorf("kube: loading kubeconfig %q (context %q): %w", kubeconfig, kubeContext, err)
		}
	}
	if cfg.QPS == 0 {
		cfg.QPS = 100
	}
	if cfg.Burst == 0 {
		cfg.Burst = 200
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hyperbola"
	}
	return cfg, nil
}

// kubeError wraps a failed API call with what it was doing. A cluster that cannot answer (no
// connection, timeouts, 429, 5xx) gives a session.KindUnavailable error; the client-go error
// stays in the chain for apierrors.
func (c *Cluster) kubeError(op string, kind session.ObjectKind, name string, err error) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("kube: %s %s %s/%s", op, kind, c.opts.Namespace, name)
	if kind == "" {
		msg = fmt.Sprintf("kube: %s in %s", op, c.opts.Namespace)
	}
	if transient(err) {
		return &session.Error{Kind: session.KindUnavailable, Message: msg, Err: err}
	}
	return fmt.Errorf("%s: %w", msg, err)
}

func transient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return true // no answer from the API server: the connection failed
	}
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err)
}

// notFound is a session.KindNotFound error about session id that keeps err in its chain.
func (c *Cluster) notFound(id, what string, err error) error {
	return &session.Error{Kind: session.KindNotFound, Message: fmt.Sprintf("session %q not found: %s", id, what), Err: err}
}

// parallel runs every step at once and joins their errors: one failing step does not stop
// the others (each is idempotent, so a retry converges).
func parallel(ctx context.Context, steps ...func(context.Context) error) error {
	var g errgroup.Group
	errs := make([]error, len(steps))
	for i, step := range steps {
		g.Go(func() error {
			errs[i] = step(ctx)
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// typed converts an apply configuration into the typed object it describes (for Create).
func typed[T any](ac any) (*T, error) {
	js, err := json.Marshal(ac)
	if err != nil {
		return nil, fmt.Errorf("kube: encoding %T: %w", ac, err)
	}
	out := new(T)
	if err := json.Unmarshal(js, out); err != nil {
		return nil, fmt.Errorf("kube: decoding %T: %w", out, err)
	}
	return out, nil
}

// Apply creates or updates the workspace's six objects at once. The PVC, Deployment, Service,
// Ingress and NetworkPolicy are server-side applied (field manager "hyperbola", forced). The
// Secret is created only when missing (with ws.Password; an existing password is never
// replaced), then its labels and annotations are applied. Everything is built before the
// first API call, so bad input changes nothing.
func (c *Cluster) Apply(ctx context.Context, ws session.Workspace) error {
	o := c.opts
	n, err := NamesFor(ws.ID)
	if err != nil {
		return err
	}
	pvc, err := PersistentVolumeClaim(ws, o)
	if err != nil {
		return err
	}
	dep, err := Deployment(ws, o)
	if err != nil {
		return err
	}
	svc, err := Service(ws, o)
	if err != nil {
		return err
	}
	ing, err := Ingress(ws, o)
	if err != nil {
		return err
	}
	np, err := NetworkPolicy(ws, o)
	if err != nil {
		return err
	}
	secMeta, err := SecretMetadata(ws, o)
	if err != nil {
		return err
	}
	var sec *corev1.Secret
	if ws.Password != "" {
		ac, err := Secret(ws, o)
		if err != nil {
			return err
		}
		if sec, err = typed[corev1.Secret](ac); err != nil {
			return err
		}
	}

	apply := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	ns := o.Namespace
	return parallel(ctx,
		func(ctx context.Context) error {
			_, err := c.cs.CoreV1().PersistentVolumeClaims(ns).Apply(ctx, pvc, apply)
			if apierrors.IsInvalid(err) {
				// The only field of a bound claim that may change is its size, and only up.
				return &session.Error{Kind: session.KindInvalid, Field: "storage",
					Message: fmt.Sprintf("kube: the claim %s/%s refused the change (storage can grow, never shrink)", ns, n.Data), Err: err}
			}
			return c.kubeError("apply", session.ObjectPVC, n.Data, err)
		},
		func(ctx context.Context) error {
			_, err := c.cs.AppsV1().Deployments(ns).Apply(ctx, dep, apply)
			return c.kubeError("apply", session.ObjectDeployment, n.Workspace, err)
		},
		func(ctx context.Context) error {
			_, err := c.cs.CoreV1().Services(ns).Apply(ctx, svc, apply)
			return c.kubeError("apply", session.ObjectService, n.Workspace, err)
		},
		func(ctx context.Context) error {
			_, err := c.cs.NetworkingV1().Ingresses(ns).Apply(ctx, ing, apply)
			return c.kubeError("apply", session.ObjectIngress, n.Workspace, err)
		},
		func(ctx context.Context) error {
			_, err := c.cs.NetworkingV1().NetworkPolicies(ns).Apply(ctx, np, apply)
			return c.kubeError("apply", session.ObjectNetworkPolicy, n.Workspace, err)
		},
		func(ctx context.Context) error {
			secrets := c.cs.CoreV1().Secrets(ns)
			if sec != nil {
				_, err := secrets.Create(ctx, sec, metav1.CreateOptions{FieldManager: FieldManager})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					return c.kubeError("create", session.ObjectSecret, n.Auth, err)
				}
			} else {
				// Applying the metadata alone would create a Secret without a password.
				_, err := secrets.Get(ctx, n.Auth, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return &session.Error{Kind: session.KindInvalid, Field: "password",
						Message: fmt.Sprintf("kube: the Secret %s/%s does not exist: a password is needed to create it", ns, n.Auth), Err: err}
				}
				if err != nil {
					return c.kubeError("get", session.ObjectSecret, n.Auth, err)
				}
			}
			_, err := secrets.Apply(ctx, secMeta, apply)
			return c.kubeError("apply", session.ObjectSecret, n.Auth, err)
		},
	)
}

// Route applies the workspace's Ingress alone (server-side apply, like Apply): its backend is
// the activator while ws.Activator (and wake on access) says so, the workspace otherwise.
func (c *Cluster) Route(ctx context.Context, ws session.Workspace) error {
	n, err := NamesFor(ws.ID)
	if err != nil {
		return err
	}
	ing, err := Ingress(ws, c.opts)
	if err != nil {
		return err
	}
	_, err = c.cs.NetworkingV1().Ingresses(c.opts.Namespace).Apply(ctx, ing, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	return c.kubeError("apply", session.ObjectIngress, n.Workspace, err)
}

// Scale sets the Deployment's replicas with a merge patch of its scale subresource: no read,
// so no race with the Deployment controller's writes.
func (c *Cluster) Scale(ctx context.Context, id string, replicas int32) error {
	n, err := NamesFor(id)
	if err != nil {
		return err
	}
	if replicas < 0 || replicas > 1 {
		return session.Invalid("replicas", "a workspace runs 0 or 1 pods, not %d", replicas)
	}
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas)
	_, err = c.cs.AppsV1().Deployments(c.opts.Namespace).Patch(ctx, n.Workspace, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: FieldManager}, "scale")
	if apierrors.IsNotFound(err) {
		return c.notFound(id, "no Deployment "+c.opts.Namespace+"/"+n.Workspace, err)
	}
	return c.kubeError("scale", session.ObjectDeployment, n.Workspace, err)
}

// objects are the labelled objects of one or more sessions, as listed.
type objects struct {
	pvcs        []corev1.PersistentVolumeClaim
	deployments []appsv1.Deployment
	services    []corev1.Service
	ingresses   []networkingv1.Ingress
	netpols     []networkingv1.NetworkPolicy
	secrets     []corev1.Secret
	pods        []corev1.Pod // workspace pods only
}

// list lists every kind (and the pods) matching selector, at once.
func (c *Cluster) list(ctx context.Context, selector string) (*objects, error) {
	ns := c.opts.Namespace
	lo := metav1.ListOptions{LabelSelector: selector}
	var o objects
	err := parallel(ctx,
		func(ctx context.Context) error {
			l, err := c.cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, lo)
			if err == nil {
				o.pvcs = l.Items
			}
			return c.kubeError("list PersistentVolumeClaims "+selector, "", "", err)
		},
		func(ctx context.Context) error {
			l, err := c.cs.AppsV1().Deployments(ns).List(ctx, lo)
			if err == nil {
				o.deployments = l.Items
			}
			return c.kubeError("list Deployments "+selector, "", "", err)
		},
		func(ctx context.Context) error {
			l, err := c.cs.CoreV1().Services(ns).List(ctx, lo)
			if err == nil {
				o.services = l.Items
			}
			return c.kubeError("list Services "+selector, "", "", err)
		},
		func(ctx context.Context) error {
			l, err := c.cs.NetworkingV1().Ingresses(ns).List(ctx, lo)
			if err == nil {
				o.ingresses = l.Items
			}
			return c.kubeError("list Ingresses "+selector, "", "", err)
		},
		func(ctx context.Context) error {
			l, err := c.cs.NetworkingV1().NetworkPolicies(ns).List(ctx, lo)
			if err == nil {
				o.netpols = l.Items
			}
			return c.kubeError("list NetworkPolicies "+selector, "", "", err)
		},
		func(ctx context.Context) error {
			l, err := c.cs.CoreV1().Secrets(ns).List(ctx, lo)
			if err == nil {
				o.secrets = l.Items
			}
			return c.kubeError("list Secrets "+selector, "", "", err)
		},
		func(ctx context.Context) error {
			l, err := c.cs.CoreV1().Pods(ns).List(ctx, lo)
			if err == nil {
				for _, p := range l.Items {
					if p.Labels[LabelComponent] == ComponentWorkspace {
						o.pods = append(o.pods, p)
					}
				}
			}
			return c.kubeError("list Pods "+selector, "", "", err)
		},
	)
	if err != nil {
		return nil, err
	}
	return &o, nil
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
	return summarize(id, objs), nil
}

// Readiness is Observe for a session waiting for its pod (session.ReadinessObserver): a GET
// of the Deployment and a list of the workspace's pods, instead of Observe's seven lists. A
// missing Deployment gives an Observed with no kinds.
func (c *Cluster) Readiness(ctx context.Context, id string) (*session.Observed, error) {
	n, err := NamesFor(id)
	if err != nil {
		return nil, err
	}
	dep, err := c.cs.AppsV1().Deployments(c.opts.Namespace).Get(ctx, n.Workspace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &session.Observed{ID: id}, nil
	}
	if err != nil {
		return nil, c.kubeError("get", session.ObjectDeployment, n.Workspace, err)
	}
	obs := &session.Observed{ID: id, Kinds: []session.ObjectKind{session.ObjectDeployment}, DesiredReplicas: 1, ReadyReplicas: dep.Status.ReadyReplicas}
	if dep.Spec.Replicas != nil {
		obs.DesiredReplicas = *dep.Spec.Replicas
	}
	sel, err := ComponentSelector(id, ComponentWorkspace)
	if err != nil {
		return nil, err
	}
	pods, err := c.cs.CoreV1().Pods(c.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, c.kubeError("list Pods "+sel, "", "", err)
	}
	obs.Pods = len(pods.Items)
	obs.Ready = workspaceReady(dep, obs.DesiredReplicas, pods.Items)
	if !obs.Ready {
		obs.PodProblem = podProblem(dep, pods.Items)
	}
	return obs, nil
}

// ObserveAll reports every session that has labelled objects in the namespace, by id.
// Objects whose session label is not a valid id are ignored.
func (c *Cluster) ObserveAll(ctx context.Context) ([]*session.Observed, error) {
	objs, err := c.list(ctx, ManagedSelector())
	if err != nil {
		return nil, err
	}
	by := map[string]*objects{}
	get := func(m metav1.Object) *objects {
		id := m.GetLabels()[LabelSession]
		if !session.ValidID(id) {
			return nil
		}
		if by[id] == nil {
			by[id] = &objects{}
		}
		return by[id]
	}
	for _, x := range objs.pvcs {
		if g := get(&x); g != nil {
			g.pvcs = append(g.pvcs, x)
		}
	}
	for _, x := range objs.deployments {
		if g := get(&x); g != nil {
			g.deployments = append(g.deployments, x)
		}
	}
	for _, x := range objs.services {
		if g := get(&x); g != nil {
			g.services = append(g.services, x)
		}
	}
	for _, x := range objs.ingresses {
		if g := get(&x); g != nil {
			g.ingresses = append(g.ingresses, x)
		}
	}
	for _, x := range objs.netpols {
		if g := get(&x); g != nil {
			g.netpols = append(g.netpols, x)
		}
	}
	for _, x := range objs.secrets {
		if g := get(&x); g != nil {
			g.secrets = append(g.secrets, x)
		}
	}
	for _, x := range objs.pods {
		if g := get(&x); g != nil {
			g.pods = append(g.pods, x)
		}
	}
	out := make([]*session.Observed, 0, len(by))
	for _, id := range slices.Sorted(maps.Keys(by)) {
		if obs := summarize(id, by[id]); obs.Exists() {
			out = append(out, obs)
		}
	}
	return out, nil
}

// find returns the object of items named name (objects are matched by name as well as label,
// so a stray object carrying a session's label is not taken for one of its own).
func find[T any](items []T, name string, meta func(*T) metav1.Object) *T {
	for i := range items {
		if meta(&items[i]).GetName() == name {
			return &items[i]
		}
	}
	return nil
}

// summarize turns the listed objects of session id into an Observed. It is pure.
func summarize(id string, objs *objects) *session.Observed {
	obs := &session.Observed{ID: id}
	n, err := NamesFor(id)
	if err != nil {
		return obs
	}
	pvc := find(objs.pvcs, n.Data, func(x *corev1.PersistentVolumeClaim) metav1.Object { return x })
	dep := find(objs.deployments, n.Workspace, func(x *appsv1.Deployment) metav1.Object { return x })
	svc := find(objs.services, n.Workspace, func(x *corev1.Service) metav1.Object { return x })
	ing := find(objs.ingresses, n.Workspace, func(x *networkingv1.Ingress) metav1.Object { return x })
	np := find(objs.netpols, n.Workspace, func(x *networkingv1.NetworkPolicy) metav1.Object { return x })
	sec := find(objs.secrets, n.Auth, func(x *corev1.Secret) metav1.Object { return x })

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
	add(session.ObjectNetworkPolicy, np != nil, np)
	add(session.ObjectSecret, sec != nil, sec)
	slices.SortFunc(obs.Kinds, func(a, b session.ObjectKind) int {
		return slices.Index(session.WorkspaceKinds, a) - slices.Index(session.WorkspaceKinds, b)
	})
	obs.Complete = len(obs.Kinds) == len(session.WorkspaceKinds)
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
		if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			obs.Storage = q.String()
		}
	}
	if dep != nil {
		if dep.Spec.Replicas != nil {
			obs.DesiredReplicas = *dep.Spec.Replicas
		} else {
			obs.DesiredReplicas = 1
		}
		obs.ReadyReplicas = dep.Status.ReadyReplicas
		if ctr := workspaceContainer(dep); ctr != nil {
			obs.Image = ctr.Image
			if q, ok := ctr.Resources.Requests[corev1.ResourceCPU]; ok {
				obs.CPU = q.String()
			}
			if q, ok := ctr.Resources.Requests[corev1.ResourceMemory]; ok {
				obs.Memory = q.String()
			}
		}
		obs.Ready = workspaceReady(dep, obs.DesiredReplicas, objs.pods)
	}
	obs.Pods = len(objs.pods)
	if !obs.Ready {
		obs.PodProblem = podProblem(dep, objs.pods)
	}
	return obs
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

// problemReasons are the container waiting reasons that will not resolve by waiting a moment.
var problemReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "ErrImageNeverPull": true, "InvalidImageName": true,
	"CrashLoopBackOff": true, "CreateContainerConfigError": true, "CreateContainerError": true,
	"RunContainerError": true, "PreStartHookError": true, "PostStartHookError": true,
}

// workspaceReady: the Deployment is rolled out at its current generation (with Recreate, an
// updated pod exists only once every old pod is gone) and a pod of it is Ready. The pod is
// read directly: the Deployment's own readyReplicas trails the pod by two controllers'
// updates (0.4-0.7 s measured on the local cluster under load).
func workspaceReady(dep *appsv1.Deployment, desired int32, pods []corev1.Pod) bool {
	if dep.Status.ObservedGeneration < dep.Generation || desired < 1 || dep.Status.UpdatedReplicas < 1 {
		return false
	}
	if dep.Status.ReadyReplicas >= 1 {
		return true
	}
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return true
			}
		}
	}
	return false
}

// podProblem explains why the workspace cannot become ready, from the Deployment's
// ReplicaFailure condition (a pod that cannot even be created) and the pods' conditions and
// container states. "" when nothing is known to be wrong.
func podProblem(dep *appsv1.Deployment, pods []corev1.Pod) string {
	if dep != nil {
		for _, cond := range dep.Status.Conditions {
			if cond.Type == appsv1.DeploymentReplicaFailure && cond.Status == corev1.ConditionTrue {
				return joinNonEmpty(": ", cond.Reason, cond.Message)
			}
		}
	}
	pods = slices.Clone(pods)
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Status.Phase == corev1.PodFailed {
			return "pod " + p.Name + " failed: " + joinNonEmpty(": ", p.Status.Reason, p.Status.Message)
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable {
				return "pod " + p.Name + " is unschedulable: " + cond.Message
			}
		}
		statuses := append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...)
		for _, s := range statuses {
			if w := s.State.Waiting; w != nil && problemReasons[w.Reason] {
				problem := fmt.Sprintf("pod %s container %s: %s", p.Name, s.Name, joinNonEmpty(": ", w.Reason, w.Message))
				// A crash loop's cause is what the container said as it ended (its
				// termination message, or its log's tail: FallbackToLogsOnError).
				if t := s.LastTerminationState.Terminated; t != nil {
					problem += fmt.Sprintf("; it exited %d (%s): %s", t.ExitCode, t.Reason, lastLines(t.Message, 5))
				}
				return problem
			}
		}
	}
	return ""
}

// lastLines returns the last n non-empty lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := slices.DeleteFunc(strings.Split(strings.TrimSpace(s), "\n"), func(l string) bool { return strings.TrimSpace(l) == "" })
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func joinNonEmpty(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return strings.TrimSpace(s) == "" }), sep)
}

// Password reads the IDE password from the session's Secret.
func (c *Cluster) Password(ctx context.Context, id string) (string, error) {
	n, err := NamesFor(id)
	if err != nil {
		return "", err
	}
	s, err := c.cs.CoreV1().Secrets(c.opts.Namespace).Get(ctx, n.Auth, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", c.notFound(id, "no Secret "+c.opts.Namespace+"/"+n.Auth, err)
	}
	if err != nil {
		return "", c.kubeError("get", session.ObjectSecret, n.Auth, err)
	}
	pw, ok := s.Data[PasswordKey]
	if !ok || len(pw) == 0 {
		return "", fmt.Errorf("kube: the Secret %s/%s holds no %s", c.opts.Namespace, n.Auth, PasswordKey)
	}
	return string(pw), nil
}

// StartBackup creates the backup Job of the attempt unless it exists, and returns its state.
// The zip is named after the time the Job is created; the Job records where it goes. It
// returns a session.KindNotFound error when the session has no data claim to back up.
func (c *Cluster) StartBackup(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	n, err := NamesFor(id)
	if err != nil {
		return nil, err
	}
	name, err := n.BackupJob(attempt)
	if err != nil {
		return nil, err
	}
	jobs := c.cs.BatchV1().Jobs(c.opts.Namespace)
	job, err := jobs.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return c.backupOf(ctx, job)
	}
	if !apierrors.IsNotFound(err) {
		return nil, c.kubeError("get", session.ObjectJob, name, err)
	}
	pvc, err := c.cs.CoreV1().PersistentVolumeClaims(c.opts.Namespace).Get(ctx, n.Data, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, c.notFound(id, "no PersistentVolumeClaim "+c.opts.Namespace+"/"+n.Data+" to back up", err)
	}
	if err != nil {
		return nil, c.kubeError("get", session.ObjectPVC, n.Data, err)
	}
	req := BackupRequest{ID: id, Attempt: attempt, Time: c.now(), UserID: pvc.Annotations[AnnotationUserID]}
	if user := UserLabels(pvc.Labels); ValidateUserLabels(user) == nil {
		req.Labels = user
	}
	ac, err := BackupJob(req, c.opts)
	if err != nil {
		return nil, err
	}
	obj, err := typed[batchv1.Job](ac)
	if err != nil {
		return nil, err
	}
	job, err = jobs.Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) { // another caller created it first: report that one
		job, err = jobs.Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, c.kubeError("create", session.ObjectJob, name, err)
	}
	return c.backupOf(ctx, job)
}

// BackupStatus reports the backup Job of the attempt: BackupMissing when there is none
// (never created, or removed after its TTL).
func (c *Cluster) BackupStatus(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	name, err := BackupJobName(id, attempt)
	if err != nil {
		return nil, err
	}
	job, err := c.cs.BatchV1().Jobs(c.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &session.Backup{Phase: session.BackupMissing}, nil
	}
	if err != nil {
		return nil, c.kubeError("get", session.ObjectJob, name, err)
	}
	return c.backupOf(ctx, job)
}

// backupOf reads a backup Job's outcome from its conditions; a failure's reason is the Job's
// condition and the failed container's termination message.
func (c *Cluster) backupOf(ctx context.Context, job *batchv1.Job) (*session.Backup, error) {
	b := &session.Backup{Phase: session.BackupRunning, Location: job.Annotations[AnnotationBackupLocation]}
	var failed *batchv1.JobCondition
	for i, cond := range job.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			b.Phase = session.BackupSucceeded
			return b, nil
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			if failed == nil || cond.Type == batchv1.JobFailed {
				failed = &job.Status.Conditions[i]
			}
		}
	}
	if failed == nil {
		return b, nil
	}
	b.Phase = session.BackupFailed
	pods, err := c.cs.CoreV1().Pods(c.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{batchv1.JobNameLabel: job.Name}).String(),
	})
	if err != nil {
		return nil, c.kubeError("list Pods of Job "+job.Name, "", "", err)
	}
	// What the backup said (it names the files it could not read, the room it lacked) comes
	// first; the Job's condition (DeadlineExceeded, BackoffLimitExceeded) after it.
	b.Reason = joinNonEmpty("; ", terminations(pods.Items), joinNonEmpty(": ", failed.Reason, failed.Message))
	if b.Reason == "" {
		b.Reason = "the backup Job failed"
	}
	return b, nil
}

// terminations describes the containers of pods that ended in error.
func terminations(pods []corev1.Pod) string {
	var out []string
	for _, p := range pods {
		statuses := append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...)
		for _, s := range statuses {
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
				exit := fmt.Sprintf("container %s exited %d (%s)", s.Name, t.ExitCode, t.Reason)
				if msg := strings.TrimSpace(t.Message); msg != "" {
					exit = msg + " [" + exit + "]"
				}
				out = append(out, exit)
			} else if w := s.State.Waiting; w != nil && problemReasons[w.Reason] {
				out = append(out, fmt.Sprintf("container %s: %s", s.Name, joinNonEmpty(": ", w.Reason, w.Message)))
			}
		}
		if len(out) == 0 && p.Status.Phase == corev1.PodFailed {
			out = append(out, "pod "+p.Name+" failed: "+joinNonEmpty(": ", p.Status.Reason, p.Status.Message))
		}
	}
	return strings.Join(out, "; ")
}

// DeleteWorkspace deletes the session's Deployment, Service, Ingress, NetworkPolicy, Secret and
// the TLS Secret cert-manager wrote for its Ingress, at once, in the background (dependents
// go with them); with deletePVC also the claim and the session's finished backup Jobs.
// Objects already gone are not an error. It returns once the deletions are accepted.
func (c *Cluster) DeleteWorkspace(ctx context.Context, id string, deletePVC bool) error {
	n, err := NamesFor(id)
	if err != nil {
		return err
	}
	ns := c.opts.Namespace
	bg := metav1.DeletePropagationBackground
	del := metav1.DeleteOptions{PropagationPolicy: &bg}
	gone := func(kind session.ObjectKind, name string, err error) error {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return c.kubeError("delete", kind, name, err)
	}
	steps := []func(context.Context) error{
		func(ctx context.Context) error {
			return gone(session.ObjectDeployment, n.Workspace, c.cs.AppsV1().Deployments(ns).Delete(ctx, n.Workspace, del))
		},
		func(ctx context.Context) error {
			return gone(session.ObjectService, n.Workspace, c.cs.CoreV1().Services(ns).Delete(ctx, n.Workspace, del))
		},
		func(ctx context.Context) error {
			return gone(session.ObjectIngress, n.Workspace, c.cs.NetworkingV1().Ingresses(ns).Delete(ctx, n.Workspace, del))
		},
		func(ctx context.Context) error {
			return gone(session.ObjectNetworkPolicy, n.Workspace, c.cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, n.Workspace, del))
		},
		func(ctx context.Context) error {
			return gone(session.ObjectSecret, n.Auth, c.cs.CoreV1().Secrets(ns).Delete(ctx, n.Auth, del))
		},
		func(ctx context.Context) error {
			return gone(session.ObjectSecret, n.TLS, c.cs.CoreV1().Secrets(ns).Delete(ctx, n.TLS, del))
		},
	}
	if deletePVC {
		steps = append(steps,
			func(ctx context.Context) error {
				return gone(session.ObjectPVC, n.Data, c.cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, n.Data, del))
			},
			func(ctx context.Context) error { return c.deleteFinishedBackups(ctx, id, del) },
		)
	}
	return parallel(ctx, steps...)
}

func (c *Cluster) deleteFinishedBackups(ctx context.Context, id string, del metav1.DeleteOptions) error {
	sel, err := ComponentSelector(id, ComponentBackup)
	if err != nil {
		return err
	}
	jobs := c.cs.BatchV1().Jobs(c.opts.Namespace)
	l, err := jobs.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return c.kubeError("list Jobs "+sel, "", "", err)
	}
	var errs []error
	for _, j := range l.Items {
		if !finished(&j) {
			continue
		}
		if err := jobs.Delete(ctx, j.Name, del); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, c.kubeError("delete", session.ObjectJob, j.Name, err))
		}
	}
	return errors.Join(errs...)
}

// finished reports whether the Job's outcome is decided: Complete or Failed, or the
// SuccessCriteriaMet or FailureTarget conditions that precede them while its pods terminate.
func finished(j *batchv1.Job) bool {
	for _, cond := range j.Status.Conditions {
		switch cond.Type {
		case batchv1.JobComplete, batchv1.JobFailed, batchv1.JobSuccessCriteriaMet, batchv1.JobFailureTarget:
			if cond.Status == corev1.ConditionTrue {
				return true
			}
		}
	}
	return false
}
