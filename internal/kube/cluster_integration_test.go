package kube

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	gateway "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// These tests run against the real local control plane (scripts/localkube): the API server's
// validation and admission, server-side apply, the Deployment, ReplicaSet, Job and PV
// controllers and the scheduler are real; kwok plays the nodes (pods become Ready, Job pods
// complete, or fail when they carry hyperbola.dev/test-fail=true), except for the tests of
// restore_integration_test.go, whose Jobs and volumes are on the real node: it is started on
// demand, by the first of those, so the package holds the machine's one real node only from
// then on. `go test -short` skips them.

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Cluster: true, RealNodeOnDemand: true})
}

const backupPVC = "hyperbola-backups"

// newCluster gives t a Cluster in a fresh namespace holding the backup claim.
func newCluster(t *testing.T, mutate ...func(*Options)) (*Cluster, kubernetes.Interface) {
	t.Helper()
	k, ns := env.Namespace(t)
	o := testOptions()
	o.Namespace = ns
	o.StorageClass = "" // the local cluster's default class (kwok provisioner, expandable)
	o.BackupPVC = backupPVC
	for _, m := range mutate {
		m(&o)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := k.CreateBackupPVC(t.Context(), ns, backupPVC); err != nil {
		t.Fatal(err)
	}
	if !o.gateway() {
		return NewCluster(k.Client, o), k.Client
	}
	cl, err := NewClients(k.Config, Budgets{})
	if err != nil {
		t.Fatal(err)
	}
	cl.Write, cl.Read = k.Client, k.Client
	return NewClusterFromClients(cl, o), k.Client
}

// inGateway puts a test cluster in gateway mode with the local cluster's GatewayClass, as
// make run does (the Gateway in the workspace namespace).
func inGateway(o *Options) {
	o.Routing = RoutingGateway
	o.GatewayClass = "hyperbola-local"
	o.GatewaySourceCIDRs = DefaultGatewaySourceCIDRs()
}

// gatewayClient is the Gateway API's client of the local cluster cs belongs to (nil for
// another).
func gatewayClient(t *testing.T, cs kubernetes.Interface) gateway.Interface {
	t.Helper()
	if env == nil || env.Kube == nil || cs != env.Kube.Client {
		return nil
	}
	gw, err := gateway.NewForConfig(env.Kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	return gw
}

func newWorkspace(t *testing.T) session.Workspace {
	t.Helper()
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	ws := testWorkspace()
	ws.ID = id
	ws.Labels = maps.Clone(ws.Labels)
	return ws
}

// eventually polls cond every 20 ms until it holds, and returns how long that took.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < timeout {
		ok, err := cond()
		if ok && err == nil {
			return time.Since(start)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not after %v (last error: %v)", what, timeout, last)
	return 0
}

func observe(t *testing.T, c *Cluster, id string) *session.Observed {
	t.Helper()
	obs, err := c.Observe(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

// labelled lists every object of the session by label, as "Kind/name", sorted.
func labelled(t *testing.T, cs kubernetes.Interface, ns, id string) []string {
	t.Helper()
	ctx := t.Context()
	sel, err := SessionSelector(id)
	if err != nil {
		t.Fatal(err)
	}
	lo := metav1.ListOptions{LabelSelector: sel}
	var out []string
	add := func(kind string, items []metav1.Object, err error) {
		if err != nil {
			t.Fatalf("listing %s: %v", kind, err)
		}
		for _, m := range items {
			out = append(out, kind+"/"+m.GetName())
		}
	}
	if l, err := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, lo); err != nil {
		add("PersistentVolumeClaim", nil, err)
	} else {
		add("PersistentVolumeClaim", ptrs(l.Items), nil)
	}
	if l, err := cs.AppsV1().Deployments(ns).List(ctx, lo); err != nil {
		add("Deployment", nil, err)
	} else {
		add("Deployment", ptrs(l.Items), nil)
	}
	if l, err := cs.AppsV1().ReplicaSets(ns).List(ctx, lo); err != nil {
		add("ReplicaSet", nil, err)
	} else {
		add("ReplicaSet", ptrs(l.Items), nil)
	}
	if l, err := cs.CoreV1().Services(ns).List(ctx, lo); err != nil {
		add("Service", nil, err)
	} else {
		add("Service", ptrs(l.Items), nil)
	}
	if l, err := cs.NetworkingV1().Ingresses(ns).List(ctx, lo); err != nil {
		add("Ingress", nil, err)
	} else {
		add("Ingress", ptrs(l.Items), nil)
	}
	if l, err := cs.NetworkingV1().NetworkPolicies(ns).List(ctx, lo); err != nil {
		add("NetworkPolicy", nil, err)
	} else {
		add("NetworkPolicy", ptrs(l.Items), nil)
	}
	if l, err := cs.CoreV1().Secrets(ns).List(ctx, lo); err != nil {
		add("Secret", nil, err)
	} else {
		add("Secret", ptrs(l.Items), nil)
	}
	if l, err := cs.BatchV1().Jobs(ns).List(ctx, lo); err != nil {
		add("Job", nil, err)
	} else {
		add("Job", ptrs(l.Items), nil)
	}
	if l, err := cs.CoreV1().Pods(ns).List(ctx, lo); err != nil {
		add("Pod", nil, err)
	} else {
		add("Pod", ptrs(l.Items), nil)
	}
	if gw := gatewayClient(t, cs); gw != nil {
		if l, err := gw.GatewayV1().HTTPRoutes(ns).List(ctx, lo); err != nil {
			add("HTTPRoute", nil, err)
		} else {
			add("HTTPRoute", ptrs(l.Items), nil)
		}
	}
	slices.Sort(out)
	return out
}

func ptrs[T any, PT interface {
	*T
	metav1.Object
}](items []T) []metav1.Object {
	out := make([]metav1.Object, len(items))
	for i := range items {
		out[i] = PT(&items[i])
	}
	return out
}

func withoutPods(objs []string) []string {
	return slices.DeleteFunc(slices.Clone(objs), func(s string) bool {
		return strings.HasPrefix(s, "Pod/") || strings.HasPrefix(s, "ReplicaSet/")
	})
}

// resourceVersions are the resourceVersions of the workspace's six objects, its route the
// HTTPRoute when gateway, else the Ingress.
func resourceVersions(t *testing.T, cs kubernetes.Interface, ns string, n Names, gateway bool) map[session.ObjectKind]string {
	t.Helper()
	ctx, get := t.Context(), metav1.GetOptions{}
	rv := map[session.ObjectKind]string{}
	check := func(kind session.ObjectKind, m metav1.Object, err error) {
		if err != nil {
			t.Fatalf("get %s: %v", kind, err)
		}
		rv[kind] = m.GetResourceVersion()
	}
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, n.Data, get)
	check(session.ObjectPVC, pvc, err)
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, n.Workspace, get)
	check(session.ObjectDeployment, dep, err)
	svc, err := cs.CoreV1().Services(ns).Get(ctx, n.Workspace, get)
	check(session.ObjectService, svc, err)
	if gateway {
		r, err := gatewayClient(t, cs).GatewayV1().HTTPRoutes(ns).Get(ctx, n.Workspace, get)
		check(session.ObjectHTTPRoute, r, err)
	} else {
		ing, err := cs.NetworkingV1().Ingresses(ns).Get(ctx, n.Workspace, get)
		check(session.ObjectIngress, ing, err)
	}
	np, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, n.Workspace, get)
	check(session.ObjectNetworkPolicy, np, err)
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, n.Auth, get)
	check(session.ObjectSecret, sec, err)
	return rv
}

// The whole life of a workspace: apply → Ready, re-apply, sleep, wake, grow, relabel, delete;
// in each routing mode.
func TestIntegrationWorkspaceLifecycle(t *testing.T) {
	t.Run("ingress", func(t *testing.T) { testWorkspaceLifecycle(t) })
	t.Run("gateway", func(t *testing.T) { testWorkspaceLifecycle(t, inGateway) })
}

func testWorkspaceLifecycle(t *testing.T, mode ...func(*Options)) {
	c, cs := newCluster(t, mode...)
	ns := c.Options().Namespace
	ctx := t.Context()
	ws := newWorkspace(t)
	n, _ := NamesFor(ws.ID)
	gw := c.Options().gateway()
	route, kinds := "Ingress/"+n.Workspace, session.WorkspaceKinds
	if gw {
		route, kinds = "HTTPRoute/"+n.Workspace, session.GatewayWorkspaceKinds
	}

	start := time.Now()
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	applied := time.Since(start)

	// Exactly the six objects, with our labels, accepted by the API server.
	want := []string{
		"Deployment/" + n.Workspace, route, "NetworkPolicy/" + n.Workspace,
		"PersistentVolumeClaim/" + n.Data, "Secret/" + n.Auth, "Service/" + n.Workspace,
	}
	slices.Sort(want)
	if got := withoutPods(labelled(t, cs, ns, ws.ID)); !slices.Equal(got, want) {
		t.Fatalf("labelled objects = %v, want %v", got, want)
	}

	readyIn := eventually(t, 30*time.Second, "workspace Ready", func() (bool, error) {
		return observe(t, c, ws.ID).Ready, nil
	})
	t.Logf("timing: Apply (6 objects in parallel) %v; Apply → Observe.Ready %v", applied.Round(time.Millisecond), (applied + readyIn).Round(time.Millisecond))

	obs := observe(t, c, ws.ID)
	if !obs.Complete || obs.Reroute || !slices.Equal(obs.Kinds, kinds) {
		t.Errorf("kinds %v complete %v reroute %v", obs.Kinds, obs.Complete, obs.Reroute)
	}
	if obs.UserID != ws.UserID || !obs.Created.Equal(ws.CreatedAt) || obs.IdleTimeout != ws.IdleTimeout ||
		!maps.Equal(obs.Labels, ws.Labels) {
		t.Errorf("metadata: owner %q created %v idle %v labels %v", obs.UserID, obs.Created, obs.IdleTimeout, obs.Labels)
	}
	if obs.PVCPhase != "Bound" || obs.Storage != "5Gi" || obs.Image != ws.Image || obs.CPU != "250m" || obs.Memory != "256Mi" ||
		obs.DesiredReplicas != 1 || obs.ReadyReplicas != 1 || obs.Pods != 1 || obs.PodProblem != "" {
		t.Errorf("observed %+v", obs)
	}
	if pw, err := c.Password(ctx, ws.ID); err != nil || pw != ws.Password {
		t.Errorf("password = %q, %v", pw, err)
	}

	// Apply again, with another password: nothing changes, the password is kept.
	before := resourceVersions(t, cs, ns, n, gw)
	again := ws
	again.Password = "another-password"
	if err := c.Apply(ctx, again); err != nil {
		t.Fatal(err)
	}
	if after := resourceVersions(t, cs, ns, n, gw); !maps.Equal(before, after) {
		t.Errorf("a repeated Apply changed objects: resourceVersions %v → %v", before, after)
	}
	if pw, _ := c.Password(ctx, ws.ID); pw != ws.Password {
		t.Errorf("the password was replaced: %q", pw)
	}
	// Without a password, an existing Secret is fine.
	again.Password = ""
	if err := c.Apply(ctx, again); err != nil {
		t.Errorf("Apply without a password: %v", err)
	}

	// Sleep: no pods, the claim stays bound, the host goes to the activator.
	start = time.Now()
	if err := c.Scale(ctx, ws.ID, 0); err != nil {
		t.Fatal(err)
	}
	asleep := ws
	asleep.Password, asleep.Replicas, asleep.Activator = "", 0, true
	if err := c.Route(ctx, asleep); err != nil {
		t.Fatal(err)
	}
	if b := routedTo(t, cs, ns, n, gw); b != "hyperbola-activator" {
		t.Errorf("asleep: routed to %s, want the activator", b)
	}
	eventually(t, 30*time.Second, "no pods after Scale(0)", func() (bool, error) {
		o := observe(t, c, ws.ID)
		return o.Pods == 0 && o.DesiredReplicas == 0, nil
	})
	t.Logf("timing: Scale(0) → no pods %v", time.Since(start).Round(time.Millisecond))
	obs = observe(t, c, ws.ID)
	if obs.Ready || obs.PVCPhase != "Bound" || !obs.Complete {
		t.Errorf("asleep: %+v", obs)
	}
	if err := c.Scale(ctx, ws.ID, 0); err != nil {
		t.Errorf("a repeated Scale(0): %v", err)
	}

	// Wake.
	start = time.Now()
	if err := c.Scale(ctx, ws.ID, 1); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "Ready after Scale(1)", func() (bool, error) { return observe(t, c, ws.ID).Ready, nil })
	if err := c.Route(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if b := routedTo(t, cs, ns, n, gw); b != n.Workspace {
		t.Errorf("awake: routed to %s, want the workspace", b)
	}
	t.Logf("timing: Scale(1) → Observe.Ready %v", time.Since(start).Round(time.Millisecond))

	// A grown claim is applied in place; a shrunk one is refused, naming the field.
	ws.Storage = "10Gi"
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatalf("growing the claim: %v", err)
	}
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, n.Data, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "10Gi" {
		t.Errorf("claim size = %s, want 10Gi", q.String())
	}
	if obs := observe(t, c, ws.ID); obs.Storage != "10Gi" {
		t.Errorf("observed storage %s", obs.Storage)
	}
	shrunk := ws
	shrunk.Storage = "1Gi"
	if err := c.Apply(ctx, shrunk); session.FieldOf(err) != "storage" {
		t.Errorf("shrinking the claim: err = %v, want invalid storage", err)
	}

	// Relabel: a removed user label leaves every object, the Secret included.
	ws.Labels = map[string]string{"team": "api"}
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, n.Auth, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if UserLabels(sec.Labels)["team"] != "api" || len(UserLabels(sec.Labels)) != 1 {
		t.Errorf("secret labels %v", sec.Labels)
	}
	if obs := observe(t, c, ws.ID); !maps.Equal(obs.Labels, ws.Labels) {
		t.Errorf("observed labels %v", obs.Labels)
	}
	// The pod template changed (labels): the workspace is Ready again after the rollout.
	eventually(t, 30*time.Second, "Ready after a rollout", func() (bool, error) { return observe(t, c, ws.ID).Ready, nil })

	// Delete everything but the claim, then the claim.
	start = time.Now()
	if err := c.DeleteWorkspace(ctx, ws.ID, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "only the claim left", func() (bool, error) {
		got := labelled(t, cs, ns, ws.ID)
		return slices.Equal(got, []string{"PersistentVolumeClaim/" + n.Data}), nil
	})
	t.Logf("timing: DeleteWorkspace(keep PVC) → only the claim left %v", time.Since(start).Round(time.Millisecond))
	if obs := observe(t, c, ws.ID); !slices.Equal(obs.Kinds, []session.ObjectKind{session.ObjectPVC}) || obs.PVCPhase != "Bound" {
		t.Errorf("after delete: %+v", obs)
	}
	if err := c.DeleteWorkspace(ctx, ws.ID, false); err != nil {
		t.Errorf("a repeated DeleteWorkspace: %v", err)
	}
	if err := c.DeleteWorkspace(ctx, ws.ID, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "nothing labelled left", func() (bool, error) {
		return len(labelled(t, cs, ns, ws.ID)) == 0, nil
	})
	if obs := observe(t, c, ws.ID); obs.Exists() {
		t.Errorf("after deleting all: %+v", obs)
	}
}

// routedTo is the Service the workspace's route (its HTTPRoute when gateway, else its
// Ingress) sends its host to.
func routedTo(t *testing.T, cs kubernetes.Interface, ns string, n Names, gateway bool) string {
	t.Helper()
	if gateway {
		r, err := gatewayClient(t, cs).GatewayV1().HTTPRoutes(ns).Get(t.Context(), n.Workspace, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Spec.Rules[0].BackendRefs[0].Name)
	}
	ing, err := cs.NetworkingV1().Ingresses(ns).Get(t.Context(), n.Workspace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name
}

func TestIntegrationBackup(t *testing.T) {
	c, cs := newCluster(t)
	ns := c.Options().Namespace
	ctx := t.Context()
	ws := newWorkspace(t)
	ws.Replicas = 0 // a sleeping workspace: the claim is free for the Job
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "claim bound", func() (bool, error) { return observe(t, c, ws.ID).PVCPhase == "Bound", nil })

	if b, err := c.BackupStatus(ctx, ws.ID, 1); err != nil || b.Phase != session.BackupMissing {
		t.Fatalf("before: %+v, %v", b, err)
	}
	start := time.Now()
	b, err := c.StartBackup(ctx, ws.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "pvc://" + backupPVC + "/" + ws.ID + "/" + ws.ID + "-"
	if b.Phase != session.BackupRunning || !strings.HasPrefix(b.Location, prefix) || !strings.HasSuffix(b.Location, "Z.zip") {
		t.Fatalf("started: %+v", b)
	}
	eventually(t, 60*time.Second, "backup Job succeeded", func() (bool, error) {
		b, err = c.BackupStatus(ctx, ws.ID, 1)
		return err == nil && b.Phase == session.BackupSucceeded, err
	})
	t.Logf("timing: StartBackup → BackupSucceeded %v", time.Since(start).Round(time.Millisecond))
	if !strings.HasPrefix(b.Location, prefix) || b.Reason != "" {
		t.Errorf("succeeded: %+v", b)
	}
	// The same attempt again finds the same Job.
	again, err := c.StartBackup(ctx, ws.ID, 1)
	if err != nil || again.Phase != session.BackupSucceeded || again.Location != b.Location {
		t.Errorf("StartBackup again: %+v, %v (first %+v)", again, err, b)
	}
	// The Job carries our labels and the user's, and its pod the session's claim read-only.
	name, _ := BackupJobName(ws.ID, 1)
	job, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if job.Labels[LabelComponent] != ComponentBackup || job.Labels["team"] != "web" || job.Annotations[AnnotationUserID] != ws.UserID {
		t.Errorf("job metadata: %v %v", job.Labels, job.Annotations)
	}
	// Observe does not count backup pods as the workspace's.
	if obs := observe(t, c, ws.ID); obs.Pods != 0 {
		t.Errorf("observed %d workspace pods", obs.Pods)
	}

	// Deleting the claim removes the finished Job as well.
	if err := c.DeleteWorkspace(ctx, ws.ID, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "nothing labelled left", func() (bool, error) {
		left := labelled(t, cs, ns, ws.ID)
		if len(left) > 0 {
			return false, fmt.Errorf("left: %v", left)
		}
		return true, nil
	})
	if b, err := c.BackupStatus(ctx, ws.ID, 1); err != nil || b.Phase != session.BackupMissing {
		t.Errorf("after delete: %+v, %v", b, err)
	}
	// No claim, nothing to back up.
	if _, err := c.StartBackup(ctx, ws.ID, 2); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("StartBackup without a claim: %v", err)
	}
}

func TestIntegrationBackupFails(t *testing.T) {
	failing, cs := newCluster(t, func(o *Options) {
		o.BackupPodLabels = map[string]string{"hyperbola.dev/test-fail": "true"}
	})
	o := failing.Options()
	o.BackupPodLabels = nil
	healthy := NewCluster(cs, o)
	ctx := t.Context()
	ws := newWorkspace(t)
	ws.Replicas = 0
	if err := failing.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "claim bound", func() (bool, error) { return observe(t, failing, ws.ID).PVCPhase == "Bound", nil })

	start := time.Now()
	if _, err := failing.StartBackup(ctx, ws.ID, 1); err != nil {
		t.Fatal(err)
	}
	var b *session.Backup
	eventually(t, 60*time.Second, "backup Job failed", func() (bool, error) {
		var err error
		b, err = failing.BackupStatus(ctx, ws.ID, 1)
		return err == nil && b.Phase == session.BackupFailed, err
	})
	t.Logf("timing: StartBackup → BackupFailed %v; reason: %s", time.Since(start).Round(time.Millisecond), b.Reason)
	if !strings.Contains(b.Reason, "BackoffLimitExceeded") || !strings.Contains(b.Reason, "backup failed") {
		t.Errorf("reason = %q, want the Job's condition and the container's message", b.Reason)
	}
	// The claim is untouched.
	if obs := observe(t, failing, ws.ID); obs.PVCPhase != "Bound" || !obs.Complete {
		t.Errorf("after a failed backup: %+v", obs)
	}
	// Once the cause is gone, the next attempt succeeds.
	if _, err := healthy.StartBackup(ctx, ws.ID, 2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "second attempt succeeded", func() (bool, error) {
		b, err := healthy.BackupStatus(ctx, ws.ID, 2)
		return err == nil && b.Phase == session.BackupSucceeded, err
	})
	// The first attempt still reports its failure.
	if b, err := healthy.BackupStatus(ctx, ws.ID, 1); err != nil || b.Phase != session.BackupFailed {
		t.Errorf("attempt 1: %+v, %v", b, err)
	}
}

func TestIntegrationObserveAllAndProblems(t *testing.T) {
	c, _ := newCluster(t)
	ctx := t.Context()
	ok, stuck := newWorkspace(t), newWorkspace(t)
	stuck.CPU = "500" // more than the fake node has
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, ws := range []session.Workspace{ok, stuck} {
		wg.Go(func() { errs[i] = c.Apply(ctx, ws) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// The scheduler may first report the claim as not yet bound (the
	// provisioner races the first scheduling attempt); the problem this test
	// is about is the one that stays.
	eventually(t, 30*time.Second, "one Ready, one unschedulable for cpu", func() (bool, error) {
		return observe(t, c, ok.ID).Ready && strings.Contains(observe(t, c, stuck.ID).PodProblem, "Insufficient cpu"), nil
	})
	if p := observe(t, c, stuck.ID).PodProblem; !strings.Contains(p, "unschedulable") || !strings.Contains(p, "Insufficient cpu") {
		t.Errorf("pod problem = %q", p)
	}
	all, err := c.ObserveAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, o := range all {
		ids = append(ids, o.ID)
		if !o.Complete || o.UserID != ok.UserID {
			t.Errorf("ObserveAll: %+v", o)
		}
	}
	want := []string{ok.ID, stuck.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("ObserveAll ids = %v, want %v", ids, want)
	}
	if obs := observe(t, c, "zz000000"); obs.Exists() {
		t.Errorf("an unknown session: %+v", obs)
	}
}

// Concurrent Applies of a new session converge to one session and one password.
func TestIntegrationConcurrentApply(t *testing.T) {
	c, cs := newCluster(t)
	ctx := t.Context()
	ws := newWorkspace(t)
	const n = 5
	var wg sync.WaitGroup
	errs := make([]error, n)
	passwords := make([]string, n)
	start := time.Now()
	for i := range n {
		w := ws
		w.Password = "password-" + string(rune('a'+i))
		passwords[i] = w.Password
		wg.Go(func() { errs[i] = c.Apply(ctx, w) })
	}
	wg.Wait()
	t.Logf("timing: %d concurrent Applies of one new session %v", n, time.Since(start).Round(time.Millisecond))
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	pw, err := c.Password(ctx, ws.ID)
	if err != nil || !slices.Contains(passwords, pw) {
		t.Errorf("password %q, %v", pw, err)
	}
	names, _ := NamesFor(ws.ID)
	if got := withoutPods(labelled(t, cs, c.Options().Namespace, ws.ID)); len(got) != 6 {
		t.Errorf("objects %v (%s)", got, names.Workspace)
	}
	// No wait for Ready here: concurrent Applies of a claim that is being provisioned can
	// write it while the PV controller does, and the controller then retries only at its next
	// resync (15 s). The session layer serializes the transitions of one session.

	// A missing Secret is not recreated without a password.
	if err := cs.CoreV1().Secrets(c.Options().Namespace).Delete(ctx, names.Auth, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ws.Password = ""
	if err := c.Apply(ctx, ws); session.FieldOf(err) != "password" {
		t.Errorf("Apply without a password and without a Secret: %v", err)
	}
	if _, err := c.Password(ctx, ws.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("a Secret was created: %v", err)
	}
}

// The workspace passes the "restricted" Pod Security Standard (the API server's admission
// enforces it on the namespace); the backup Job, whose init container installs zip as root,
// needs "baseline".
func TestIntegrationPodSecurity(t *testing.T) {
	for _, level := range []string{"restricted", "baseline"} {
		t.Run(level, func(t *testing.T) {
			c, cs := newCluster(t)
			ctx := t.Context()
			ns := c.Options().Namespace
			patch := []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"` + level + `"}}}`)
			if _, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			ws := newWorkspace(t)
			if err := c.Apply(ctx, ws); err != nil {
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, "Ready under "+level, func() (bool, error) {
				o := observe(t, c, ws.ID)
				if o.PodProblem != "" {
					return false, errors.New(o.PodProblem)
				}
				return o.Ready, nil
			})
			if level == "restricted" {
				return
			}
			if err := c.Scale(ctx, ws.ID, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := c.StartBackup(ctx, ws.ID, 1); err != nil {
				t.Fatal(err)
			}
			eventually(t, 60*time.Second, "backup under "+level, func() (bool, error) {
				b, err := c.BackupStatus(ctx, ws.ID, 1)
				return err == nil && b.Phase == session.BackupSucceeded, err
			})
		})
	}
}

func TestIntegrationReadinessAgreesWithObserve(t *testing.T) {
	c, _ := newCluster(t)
	ctx := t.Context()
	ws := newWorkspace(t)
	if r, err := c.Readiness(ctx, ws.ID); err != nil || r.Exists() {
		t.Fatalf("before apply: %+v %v", r, err)
	}
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 30*time.Second, "Readiness and Observe both ready", func() (bool, error) {
		r, err := c.Readiness(ctx, ws.ID)
		if err != nil {
			return false, err
		}
		return r.Ready && observe(t, c, ws.ID).Ready, nil
	})
	t.Logf("ready after %s", took)
	if err := c.Scale(ctx, ws.ID, 0); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Readiness(ctx, ws.ID); err != nil || r.Ready || r.DesiredReplicas != 0 || !r.Has(session.ObjectDeployment) {
		t.Fatalf("scaled to zero: %+v %v", r, err)
	}
}

// A Secret made before Apply sent it whole (created with its data, then its metadata applied
// apart) keeps its password and loses a removed user label once the whole Secret is applied.
func TestIntegrationSecretMadeTheOldWay(t *testing.T) {
	c, cs := newCluster(t)
	ctx := t.Context()
	ns := c.Options().Namespace
	ws := newWorkspace(t)
	ws.Labels = map[string]string{"team": "web", "course": "cs101"}
	w, err := resolve(ws, c.Options())
	if err != nil {
		t.Fatal(err)
	}
	old := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: w.names.Auth, Namespace: ns, Labels: w.selector},
		Type:       corev1.SecretTypeOpaque, Immutable: new(true),
		Data: map[string][]byte{PasswordKey: []byte(ws.Password)},
	}
	secrets := cs.CoreV1().Secrets(ns)
	if _, err := secrets.Create(ctx, old, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
		t.Fatal(err)
	}
	meta := corev1ac.Secret(w.names.Auth, ns).WithLabels(w.labels).WithAnnotations(w.annotations)
	if _, err := secrets.Apply(ctx, meta, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		t.Fatal(err)
	}

	for _, pw := range []string{"another-password", ""} { // a re-apply with a fresh password, and an update
		ws.Password = pw
		ws.Labels = map[string]string{"team": "api"}
		if err := c.Apply(ctx, ws); err != nil {
			t.Fatalf("Apply (password %q): %v", pw, err)
		}
		sec, err := secrets.Get(ctx, w.names.Auth, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(sec.Data[PasswordKey]); got != w.Password {
			t.Errorf("password %q, want the Secret's own %q", got, w.Password)
		}
		if !maps.Equal(UserLabels(sec.Labels), ws.Labels) {
			t.Errorf("user labels %v, want %v", UserLabels(sec.Labels), ws.Labels)
		}
	}
}

// Wake on access turned off: a workspace put to sleep while it was on keeps its route on the
// activator. Route (now a switch that does not exist) writes nothing; Observe says the route
// wants applying (the reconcile's drift repair), and Apply puts it back on the workspace.
func TestIntegrationWakeOnAccessTurnedOff(t *testing.T) {
	for name, mode := range map[string][]func(*Options){"ingress": nil, "gateway": {inGateway}} {
		t.Run(name, func(t *testing.T) {
			on, cs := newCluster(t, mode...)
			o := on.Options()
			ns, gw := o.Namespace, o.gateway()
			ctx := t.Context()
			ws := newWorkspace(t)
			ws.Replicas, ws.Activator = 0, true // asleep
			n, _ := NamesFor(ws.ID)
			if err := on.Apply(ctx, ws); err != nil {
				t.Fatal(err)
			}
			if b := routedTo(t, cs, ns, n, gw); b != o.ActivatorService || observe(t, on, ws.ID).Reroute {
				t.Fatalf("asleep with wake on access: routed to %s, reroute %v", b, observe(t, on, ws.ID).Reroute)
			}

			o.ActivatorService = ""
			off := NewClusterFromClients(&Clients{Write: on.cs, Read: on.rd, Metadata: on.md, Gateway: on.gw, GatewayRead: on.gwrd, Dynamic: on.dyn}, o)
			kind := session.ObjectIngress
			if gw {
				kind = session.ObjectHTTPRoute
			}
			before := resourceVersions(t, cs, ns, n, gw)[kind] // the claim's may change: it binds
			awake := ws
			awake.Replicas, awake.Activator = 1, false
			if err := off.Route(ctx, awake); err != nil {
				t.Fatal(err)
			}
			if after := resourceVersions(t, cs, ns, n, gw)[kind]; before == "" || after != before {
				t.Errorf("Route without wake on access wrote the %s: resourceVersion %q → %q", kind, before, after)
			}
			if !observe(t, off, ws.ID).Reroute {
				t.Errorf("a route left on the activator without wake on access: Reroute false")
			}
			if err := off.Apply(ctx, awake); err != nil {
				t.Fatal(err)
			}
			if b := routedTo(t, cs, ns, n, gw); b != n.Workspace || observe(t, off, ws.ID).Reroute {
				t.Errorf("after Apply: routed to %s, reroute %v; want the workspace, false", b, observe(t, off, ws.ID).Reroute)
			}
		})
	}
}
