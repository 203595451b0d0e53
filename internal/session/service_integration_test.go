package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Cluster: true, Redis: true})
}

// fixture is one test's control plane: its own namespace and Redis prefix on the package's
// cluster and redis-server, the parts built as internal/stack builds them with the
// configuration's defaults.
type fixture struct {
	t       *testing.T
	ns      string
	kube    *testenv.Kube
	rdb     *redis.Client
	prefix  string
	opts    kube.Options // the cluster adapter's
	cluster *kube.Cluster
	store   *store.Store
	svc     *session.Service
}

// parts are what a test changes in a control plane instance; zero ones keep the fixture's.
type parts struct {
	kube kubernetes.Interface
	now  func() time.Time
	// options adjusts the cluster adapter's options.
	options func(*kube.Options)
	// service adjusts the Service's options.
	service func(*session.Options)
}

func newFixture(t *testing.T, p parts) *fixture {
	t.Helper()
	k, ns := env.Namespace(t)
	rdb, prefix := env.RedisFor(t)
	if err := k.CreateBackupPVC(context.Background(), ns, "hyperbola-backups"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ns: ns, kube: k, rdb: rdb, prefix: prefix, opts: kube.Options{
		Namespace: ns, Domain: "ws.example.test", Port: 8080, IngressClass: "nginx", ClusterIssuer: "letsencrypt",
		IngressNamespace: "ingress-nginx",
		BackupPVC:        "hyperbola-backups", BackupImage: "localhost/hyperbola-backup:1",
		BackupDeadline: 30 * time.Minute,
	}}
	if p.options != nil {
		p.options(&f.opts)
		p.options = nil
	}
	f.cluster, f.store, f.svc = f.instance(p)
	return f
}

// with returns another Service on the same namespace and Redis keys (another instance of the
// control plane), built with different parts.
func (f *fixture) with(p parts) *session.Service {
	f.t.Helper()
	_, _, svc := f.instance(p)
	return svc
}

// instance builds a control plane instance's cluster adapter, store and Service on the
// fixture's namespace and Redis keys.
func (f *fixture) instance(p parts) (*kube.Cluster, *store.Store, *session.Service) {
	f.t.Helper()
	ko := f.opts
	if p.options != nil {
		p.options(&ko)
	}
	if err := ko.Validate(); err != nil {
		f.t.Fatal(err)
	}
	if p.kube == nil {
		p.kube = f.kube.Client
	}
	c := kube.NewCluster(p.kube, ko)
	st := store.New(f.rdb, f.prefix, store.Options{TombstoneTTL: 24 * time.Hour, Now: p.now})
	so := session.Options{Domain: ko.Domain, Now: p.now}
	if p.service != nil {
		p.service(&so)
	}
	return c, st, session.NewService(c, st, so)
}

// waitState polls Get (which drives pending steps) until the session is in want.
func waitState(t *testing.T, m session.Manager, id string, want session.State) *session.Session {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	var last *session.Session
	for time.Since(start) < 60*time.Second {
		s, err := m.Get(ctx, id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		last = s
		if s.State == want && s.Pending == session.PendingNone {
			t.Logf("%s %s after %s", id, want, time.Since(start).Round(time.Millisecond))
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("session %s: want %s, still %s (pending %q, reason %q)%s", id, want, last.State, last.Pending, last.Reason, describe(id))
	return nil
}

// labelled lists the kinds of objects carrying the session's label.
func (f *fixture) labelled(id string) map[string][]string {
	f.t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: "hyperbola.dev/session=" + id}
	cs := f.kube.Client
	out := map[string][]string{}
	add := func(kind string, names ...string) {
		if len(names) > 0 {
			out[kind] = append(out[kind], names...)
		}
	}
	must := func(err error) {
		if err != nil {
			f.t.Fatal(err)
		}
	}
	pvcs, err := cs.CoreV1().PersistentVolumeClaims(f.ns).List(ctx, sel)
	must(err)
	for _, o := range pvcs.Items {
		add("PersistentVolumeClaim", o.Name)
	}
	deps, err := cs.AppsV1().Deployments(f.ns).List(ctx, sel)
	must(err)
	for _, o := range deps.Items {
		add("Deployment", o.Name)
	}
	svcs, err := cs.CoreV1().Services(f.ns).List(ctx, sel)
	must(err)
	for _, o := range svcs.Items {
		add("Service", o.Name)
	}
	ings, err := cs.NetworkingV1().Ingresses(f.ns).List(ctx, sel)
	must(err)
	for _, o := range ings.Items {
		add("Ingress", o.Name)
	}
	nps, err := cs.NetworkingV1().NetworkPolicies(f.ns).List(ctx, sel)
	must(err)
	for _, o := range nps.Items {
		add("NetworkPolicy", o.Name)
	}
	secs, err := cs.CoreV1().Secrets(f.ns).List(ctx, sel)
	must(err)
	for _, o := range secs.Items {
		add("Secret", o.Name)
	}
	return out
}

func (f *fixture) deployment(id string) *appsv1.Deployment {
	f.t.Helper()
	d, err := f.kube.Client.AppsV1().Deployments(f.ns).Get(context.Background(), "vs-code-"+id, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) pods(id string) []corev1.Pod {
	f.t.Helper()
	p, err := f.kube.Client.CoreV1().Pods(f.ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: "hyperbola.dev/session=" + id + ",app.kubernetes.io/component=workspace"})
	if err != nil {
		f.t.Fatal(err)
	}
	return p.Items
}

func (f *fixture) pvcPhase(id string) corev1.PersistentVolumeClaimPhase {
	f.t.Helper()
	p, err := f.kube.Client.CoreV1().PersistentVolumeClaims(f.ns).Get(context.Background(), "vs-code-"+id+"-data", metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return p.Status.Phase
}

func TestIntegrationCreateMakesEveryObjectAndRuns(t *testing.T) {
	f := newFixture(t, parts{})
	ctx := context.Background()
	s, err := f.svc.Create(ctx, session.CreateRequest{UserID: "ada@example.com", Labels: map[string]string{"team": "data"}})
	if err != nil {
		t.Fatal(err)
	}
	if !session.ValidID(s.ID) || s.Password == "" || s.WorkspaceURL != "https://vs-code-"+s.ID+".ws.example.test" {
		t.Fatalf("create returned %+v", s)
	}
	got := f.labelled(s.ID)
	want := map[string][]string{
		"PersistentVolumeClaim": {"vs-code-" + s.ID + "-data"},
		"Deployment":            {"vs-code-" + s.ID},
		"Service":               {"vs-code-" + s.ID},
		"Ingress":               {"vs-code-" + s.ID},
		"NetworkPolicy":         {"vs-code-" + s.ID},
		"Secret":                {"vs-code-" + s.ID + "-auth"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("objects:\n got %v\nwant %v", got, want)
	}
	d := f.deployment(s.ID)
	if d.Labels["app.kubernetes.io/managed-by"] != "hyperbola" || d.Labels["team"] != "data" ||
		d.Annotations["hyperbola.dev/user-id"] != "ada@example.com" {
		t.Fatalf("deployment labels %v annotations %v", d.Labels, d.Annotations)
	}
	running := waitState(t, f.svc, s.ID, session.StateRunning)
	if running.Password != "" {
		t.Fatal("Get must never return the password")
	}
	if pw, err := f.cluster.Password(ctx, s.ID); err != nil || pw != s.Password {
		t.Fatalf("the Secret holds %q (%v), create returned %q", pw, err, s.Password)
	}
	list, err := f.svc.List(ctx, session.ListOptions{UserID: "ada@example.com"})
	if err != nil || len(list.Sessions) != 1 || list.Sessions[0].ID != s.ID {
		t.Fatalf("list by user: %+v %v", list, err)
	}
}

func TestIntegrationSleepWake(t *testing.T) {
	f := newFixture(t, parts{})
	ctx := context.Background()
	s, err := f.svc.Create(ctx, session.CreateRequest{UserID: "grace@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, f.svc, s.ID, session.StateRunning)
	for i := range 2 { // the second sleep is a no-op success
		slept, err := f.svc.Sleep(ctx, s.ID)
		if err != nil || slept.State != session.StateSleeping {
			t.Fatalf("sleep #%d: %+v %v", i+1, slept, err)
		}
	}
	if r := f.deployment(s.ID).Spec.Replicas; r == nil || *r != 0 {
		t.Fatalf("replicas after sleep: %v", r)
	}
	waitFor(t, "no pods", func() bool { return len(f.pods(s.ID)) == 0 })
	if ph := f.pvcPhase(s.ID); ph != corev1.ClaimBound {
		t.Fatalf("PVC phase while sleeping: %s", ph)
	}
	for i := range 2 {
		woke, err := f.svc.Wake(ctx, s.ID)
		if err != nil || (woke.State != session.StateWaking && woke.State != session.StateRunning) {
			t.Fatalf("wake #%d: %+v %v", i+1, woke, err)
		}
	}
	waitState(t, f.svc, s.ID, session.StateRunning)
	if r := f.deployment(s.ID).Spec.Replicas; r == nil || *r != 1 {
		t.Fatalf("replicas after wake: %v", r)
	}
	if len(f.pods(s.ID)) != 1 {
		t.Fatalf("pods after wake: %d", len(f.pods(s.ID)))
	}
}

// ingressRoute reads the workspace Ingress's backend ("<service>:<port>") and its
// upstream-vhost annotation.
func (f *fixture) ingressRoute(id string) (backend, vhost string) {
	f.t.Helper()
	ing, err := f.kube.Client.NetworkingV1().Ingresses(f.ns).Get(context.Background(), "vs-code-"+id, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	b := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
	port := b.Port.Name
	if port == "" {
		port = fmt.Sprint(b.Port.Number)
	}
	return b.Name + ":" + port, ing.Annotations["nginx.ingress.kubernetes.io/upstream-vhost"]
}

// With wake on access on, the host of a workspace that is not running goes to the activator:
// from creation until the pod is ready, at sleep, and through a wake until the pod is ready
// again. The route is back on the workspace before the session reports running.
func TestIntegrationIngressFollowsTheState(t *testing.T) {
	const host = "session-api-1.example.run.app"
	f := newFixture(t, parts{options: func(o *kube.Options) { // wake on access on
		o.ActivatorService, o.ActivatorHost, o.ActivatorPort = "hyperbola-activator", host, 443
	}})
	ctx := context.Background()
	s, err := f.svc.Create(ctx, session.CreateRequest{UserID: "barbara@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	workspace, activator := "vs-code-"+s.ID+":http", "hyperbola-activator:443"
	check := func(when, wantBackend string) {
		t.Helper()
		backend, vhost := f.ingressRoute(s.ID)
		wantVhost := ""
		if wantBackend == activator {
			wantVhost = host
		}
		if backend != wantBackend || vhost != wantVhost {
			t.Fatalf("%s: the Ingress goes to %s (upstream-vhost %q), want %s (%q)", when, backend, vhost, wantBackend, wantVhost)
		}
	}
	check("creating", activator)
	waitState(t, f.svc, s.ID, session.StateRunning)
	check("running", workspace)

	start := time.Now()
	if _, err := f.svc.Sleep(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("sleep (scale and route) took %s", time.Since(start).Round(time.Millisecond))
	check("asleep", activator)
	if r := f.deployment(s.ID).Spec.Replicas; r == nil || *r != 0 {
		t.Fatalf("replicas asleep: %v", r)
	}

	// a hand-made change of the route is repaired by sleeping again
	if err := f.cluster.Route(ctx, session.Workspace{ID: s.ID, UserID: s.UserID, Labels: s.Labels, CreatedAt: s.CreatedAt,
		Image: s.Image, Storage: s.Storage, CPU: s.CPU, Memory: s.Memory}); err != nil {
		t.Fatal(err)
	}
	check("routed by hand", workspace)
	if _, err := f.svc.Sleep(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	check("asleep again", activator)

	woke, err := f.svc.Wake(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if woke.State == session.StateWaking {
		check("waking", activator)
	}
	waitState(t, f.svc, s.ID, session.StateRunning)
	check("running again", workspace)
	// server-side apply removed the activator's annotations with the route
	ing, err := f.kube.Client.NetworkingV1().Ingresses(f.ns).Get(ctx, "vs-code-"+s.ID, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := ing.Annotations["nginx.ingress.kubernetes.io/backend-protocol"]; ok {
		t.Fatalf("backend-protocol %q left on a running workspace's Ingress", p)
	}
}

// Without the wake secret wake on access is off: the Ingress never leaves the workspace.
func TestIntegrationIngressStaysWithoutWakeOnAccess(t *testing.T) {
	f := newFixture(t, parts{})
	ctx := context.Background()
	s, err := f.svc.Create(ctx, session.CreateRequest{UserID: "edsger@example.com", State: session.StateSleeping})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := f.ingressRoute(s.ID); b != "vs-code-"+s.ID+":http" {
		t.Fatalf("asleep without wake on access, the Ingress goes to %s", b)
	}
}

func TestIntegrationDeleteBacksUpThenRemoves(t *testing.T) {
	f := newFixture(t, parts{})
	ctx := context.Background()
	s, err := f.svc.Create(ctx, session.CreateRequest{UserID: "linus@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, f.svc, s.ID, session.StateRunning)
	d, err := f.svc.Delete(ctx, s.ID, session.DeleteOptions{})
	if err != nil || (d.State != session.StateDeleting && d.State != session.StateDeleted) {
		t.Fatalf("delete: %+v %v", d, err)
	}
	// while the backup runs, sleep and wake are refused
	if d.State == session.StateDeleting {
		if _, err := f.svc.Wake(ctx, s.ID); err != nil && !errors.Is(err, session.ErrConflict) {
			t.Fatalf("wake while deleting: %v, want conflict", err)
		}
	}
	done := waitState(t, f.svc, s.ID, session.StateDeleted)
	if done.BackupLocation == "" {
		t.Fatal("no backup location recorded")
	}
	t.Logf("backup at %s", done.BackupLocation)
	if got := f.labelled(s.ID); len(got) != 0 {
		t.Fatalf("objects left after delete: %v", got)
	}
	again, err := f.svc.Delete(ctx, s.ID, session.DeleteOptions{})
	if err != nil || again.State != session.StateDeleted {
		t.Fatalf("repeated delete: %+v %v", again, err)
	}
}

func TestIntegrationFailedBackupKeepsTheVolume(t *testing.T) {
	f := newFixture(t, parts{})
	failing := f.with(parts{options: func(o *kube.Options) {
		o.BackupPodLabels = map[string]string{"hyperbola.dev/test-fail": "true"}
	}})
	ctx := context.Background()
	s, err := f.svc.Create(ctx, session.CreateRequest{UserID: "margaret@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, f.svc, s.ID, session.StateRunning)
	if _, err := failing.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	failed := waitState(t, failing, s.ID, session.StateFailed)
	if failed.Reason == "" {
		t.Fatal("a failed backup must say why")
	}
	t.Logf("reason: %s", failed.Reason)
	if ph := f.pvcPhase(s.ID); ph != corev1.ClaimBound {
		t.Fatalf("the PVC must stay after a failed backup: %s", ph)
	}
	// the cause removed (a service without the failing label), a second delete succeeds
	if _, err := f.svc.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	done := waitState(t, f.svc, s.ID, session.StateDeleted)
	if done.BackupLocation == "" || done.Attempt != 2 {
		t.Fatalf("second delete: %+v", done)
	}
	if got := f.labelled(s.ID); len(got) != 0 {
		t.Fatalf("objects left: %v", got)
	}
}

func TestIntegrationConcurrentTransitionsKeepRecordsAndObjectsInStep(t *testing.T) {
	f := newFixture(t, parts{})
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		s, err := f.svc.Create(ctx, session.CreateRequest{UserID: fmt.Sprintf("u%d@example.com", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	// a second instance of the control plane shares the Redis keys and the namespace
	other := f.with(parts{})
	var wg sync.WaitGroup
	var ops, conflicts, busy atomic.Int64
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			m := f.svc
			if g%2 == 1 {
				m = other
			}
			for range 6 {
				id := ids[r.IntN(len(ids))]
				var err error
				switch n := r.IntN(10); {
				case n < 4:
					_, err = m.Sleep(ctx, id)
				case n < 8:
					_, err = m.Wake(ctx, id)
				default:
					_, err = m.Delete(ctx, id, session.DeleteOptions{})
				}
				ops.Add(1)
				switch {
				case err == nil:
				case errors.Is(err, session.ErrConflict):
					conflicts.Add(1)
				case errors.Is(err, session.ErrBusy):
					busy.Add(1)
				default:
					t.Errorf("%s: %v", id, err)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d operations, %d conflicts (transition on a deleting session), %d busy", ops.Load(), conflicts.Load(), busy.Load())
	// let every pending step finish, then compare each record with its objects
	for _, id := range ids {
		settle(t, f.svc, id)
	}
	recorded := map[string]bool{}
	for _, id := range ids {
		s, err := f.svc.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		objs := f.labelled(id)
		switch s.State {
		case session.StateDeleted:
			if len(objs) != 0 {
				t.Errorf("%s deleted but objects remain: %v", id, objs)
			}
		case session.StateRunning, session.StateSleeping:
			recorded[id] = true
			if len(objs) != 6 {
				t.Errorf("%s %s with objects %v", id, s.State, objs)
				continue
			}
			want := int32(1)
			if s.State == session.StateSleeping {
				want = 0
			}
			if r := f.deployment(id).Spec.Replicas; r == nil || *r != want {
				t.Errorf("%s %s but replicas %v", id, s.State, r)
			}
		default:
			t.Errorf("%s settled in %s (%s)", id, s.State, s.Reason)
		}
	}
	// no labelled object without a live record
	all, err := f.cluster.ObserveAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range all {
		if !recorded[o.ID] {
			t.Errorf("labelled objects of %s (%v) have no live record", o.ID, o.Kinds)
		}
	}
}

// settle drives a session until it has no pending step.
func settle(t *testing.T, m session.Manager, id string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		s, err := m.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Pending == session.PendingNone {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("session %s never settled", id)
}

// cancelAfter is a transport that cancels the request context after n requests went through:
// a crash between object writes.
type cancelAfter struct {
	base   http.RoundTripper
	n      int64
	seen   atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if c.seen.Add(1) == c.n {
		c.cancel()
	}
	return resp, err
}

func TestIntegrationCreateCancelledBetweenWritesConverges(t *testing.T) {
	f := newFixture(t, parts{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := rest.CopyConfig(f.kube.Config)
	cut := &cancelAfter{n: 1, cancel: cancel}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { cut.base = rt; return cut })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	crashing := f.with(parts{kube: cs})
	req := session.CreateRequest{UserID: "retry@example.com", RequestID: "req-" + testenv.UniqueName("x")}
	if _, err := crashing.Create(ctx, req); err == nil {
		t.Fatal("the cut create succeeded; the test did not cut it")
	} else {
		t.Logf("first attempt: %v", err)
	}
	// retried (on a healthy instance) with the same request id: one complete session
	s, err := f.svc.Create(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if s.Password == "" {
		t.Fatal("the retried create must return the password")
	}
	waitState(t, f.svc, s.ID, session.StateRunning)
	if got := f.labelled(s.ID); len(got) != 6 {
		t.Fatalf("objects after retry: %v", got)
	}
	list, err := f.svc.List(context.Background(), session.ListOptions{UserID: req.UserID})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Sessions) != 1 {
		var ids []string
		for _, s := range list.Sessions {
			ids = append(ids, s.ID)
		}
		sort.Strings(ids)
		t.Fatalf("want one session for the user, got %v", ids)
	}
}

// describe reports what the package's cluster holds for session id, for failure messages.
func describe(id string) string {
	ctx := context.Background()
	cs := env.Kube.Client
	sel := metav1.ListOptions{LabelSelector: "hyperbola.dev/session=" + id}
	out := "\nlabelled objects:"
	nss, _ := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	for _, ns := range nss.Items {
		if p, err := cs.CoreV1().PersistentVolumeClaims(ns.Name).List(ctx, sel); err == nil {
			for _, o := range p.Items {
				out += fmt.Sprintf("\n  pvc %s/%s phase=%s deleting=%v finalizers=%v", ns.Name, o.Name, o.Status.Phase, o.DeletionTimestamp != nil, o.Finalizers)
			}
		}
		if p, err := cs.CoreV1().Pods(ns.Name).List(ctx, sel); err == nil {
			for _, o := range p.Items {
				out += fmt.Sprintf("\n  pod %s/%s phase=%s deleting=%v finalizers=%v", ns.Name, o.Name, o.Status.Phase, o.DeletionTimestamp != nil, o.Finalizers)
			}
		}
		if p, err := cs.BatchV1().Jobs(ns.Name).List(ctx, sel); err == nil {
			for _, o := range p.Items {
				out += fmt.Sprintf("\n  job %s/%s deleting=%v finalizers=%v", ns.Name, o.Name, o.DeletionTimestamp != nil, o.Finalizers)
			}
		}
		if p, err := cs.AppsV1().Deployments(ns.Name).List(ctx, sel); err == nil {
			for _, o := range p.Items {
				out += fmt.Sprintf("\n  deployment %s/%s deleting=%v", ns.Name, o.Name, o.DeletionTimestamp != nil)
			}
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestIntegrationTTL: a session created with ttl 0 never expires (the store's expires index
// never returns it, however late the sweep looks); one with ttl 2h is expired 2h after its
// creation and not before; an update sets the lifetime anew from the creation, or clears it.
func TestIntegrationTTL(t *testing.T) {
	clock := testenv.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	f := newFixture(t, parts{now: clock.Now})
	ctx := context.Background()
	ttl := func(d time.Duration) *session.Duration { v := session.Duration(d); return &v }
	created := clock.Now()

	forever, err := f.svc.Create(ctx, session.CreateRequest{UserID: "ada@example.com", TTL: ttl(0)})
	if err != nil {
		t.Fatal(err)
	}
	short, err := f.svc.Create(ctx, session.CreateRequest{UserID: "ada@example.com", TTL: ttl(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	def, err := f.svc.Create(ctx, session.CreateRequest{UserID: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !forever.ExpiresAt.IsZero() || !short.ExpiresAt.Equal(created.Add(2*time.Hour)) ||
		!def.ExpiresAt.Equal(created.Add(f.svc.Options().SessionTTL)) {
		t.Fatalf("expires_at: ttl 0 %v, ttl 2h %v, default %v (created %v)", forever.ExpiresAt, short.ExpiresAt, def.ExpiresAt, created)
	}
	if _, err := f.svc.Create(ctx, session.CreateRequest{UserID: "ada@example.com", TTL: ttl(30 * time.Minute)}); !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), "ttl") {
		t.Fatalf("create with ttl 30m: %v, want invalid naming ttl", err)
	}

	expired := func(after time.Duration) []string {
		t.Helper()
		ids, err := f.store.Expired(ctx, created.Add(after), 100)
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(ids)
		return ids
	}
	want := func(ids ...string) []string { sort.Strings(ids); return ids }

	clock.Add(2*time.Hour - time.Millisecond)
	if got := expired(2*time.Hour - time.Millisecond); len(got) != 0 {
		t.Fatalf("expired just before 2h: %v", got)
	}
	clock.Add(time.Millisecond)
	if got := expired(2 * time.Hour); fmt.Sprint(got) != fmt.Sprint(want(short.ID)) {
		t.Fatalf("expired at 2h: %v, want [%s]", got, short.ID)
	}
	if got := expired(100 * 365 * 24 * time.Hour); fmt.Sprint(got) != fmt.Sprint(want(short.ID, def.ID)) {
		t.Fatalf("expired in a hundred years: %v, want %s and %s (never %s)", got, short.ID, def.ID, forever.ID)
	}

	// Updates: the default one never expires now; the forever one gets 3h from its creation.
	up, err := f.svc.Update(ctx, def.ID, session.UpdateRequest{TTL: ttl(0)})
	if err != nil || !up.ExpiresAt.IsZero() {
		t.Fatalf("update ttl 0: %+v, %v", up, err)
	}
	up, err = f.svc.Update(ctx, forever.ID, session.UpdateRequest{TTL: ttl(3 * time.Hour)})
	if err != nil || !up.ExpiresAt.Equal(created.Add(3*time.Hour)) {
		t.Fatalf("update ttl 3h: %+v, %v", up, err)
	}
	if _, err := f.svc.Update(ctx, short.ID, session.UpdateRequest{TTL: ttl(-time.Hour)}); !errors.Is(err, session.ErrInvalid) || !strings.Contains(err.Error(), "ttl") {
		t.Fatalf("update with ttl -1h: %v, want invalid naming ttl", err)
	}
	if got := expired(100 * 365 * 24 * time.Hour); fmt.Sprint(got) != fmt.Sprint(want(short.ID, forever.ID)) {
		t.Fatalf("expired in a hundred years after the updates: %v, want %s and %s", got, short.ID, forever.ID)
	}
	if got, err := f.svc.Get(ctx, def.ID); err != nil || !got.ExpiresAt.IsZero() {
		t.Fatalf("get after clearing the ttl: %+v, %v", got, err)
	}
}

// failDeletes is a transport that answers 500 to every DELETE whose path contains part, as an
// API server that refuses one object would.
type failDeletes struct {
	base http.RoundTripper
	part string
	hits atomic.Int64
}

func (f *failDeletes) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodDelete || !strings.Contains(r.URL.Path, f.part) {
		return f.base.RoundTrip(r)
	}
	f.hits.Add(1)
	body := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected: the TLS Secret cannot be deleted now","reason":"InternalError","code":500}`
	return &http.Response{
		StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Request: r,
		Header: http.Header{"Content-Type": []string{"application/json"}},
		Body:   io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
	}, nil
}

// A delete that fails half-way (the backup done, the volume and the Job gone, the TLS Secret
// refused) does not wedge the session: the next touch resumes the removal and the session ends
// deleted, never a 404 for a session whose record exists.
func TestIntegrationDeleteInterruptedAfterTheVolumeWentConverges(t *testing.T) {
	f := newFixture(t, parts{})
	ctx := context.Background()
	cfg := rest.CopyConfig(f.kube.Config)
	refuse := &failDeletes{part: "-tls"}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { refuse.base = rt; return refuse })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	flaky := f.with(parts{kube: cs})
	s, err := f.svc.Create(ctx, session.CreateRequest{UserID: "half@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, f.svc, s.ID, session.StateRunning)
	if _, err := flaky.Delete(ctx, s.ID, session.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// drive the delete on the flaky instance until its removal is refused
	deadline := time.Now().Add(2 * time.Minute)
	for refuse.hits.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the removal never reached the TLS Secret")
		}
		if _, err := flaky.Get(ctx, s.ID); err != nil && !strings.Contains(err.Error(), "injected") {
			t.Fatalf("get on the flaky instance: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, err := f.svc.Get(ctx, s.ID)
	if err != nil {
		t.Fatalf("the session answers %v after a half-failed delete", err)
	}
	if got.Pending != session.PendingRemoval && got.State != session.StateDeleted {
		t.Fatalf("after a half-failed delete: state %s, pending %q, want the removal recorded", got.State, got.Pending)
	}
	done := waitState(t, f.svc, s.ID, session.StateDeleted)
	if done.BackupLocation == "" {
		t.Fatal("deleted without its backup location")
	}
	if left := f.labelled(s.ID); len(left) != 0 {
		t.Fatalf("objects left: %v", left)
	}
}

// stallScale holds the scale requests of one Deployment until released, or until the client
// gives up on them (then they never reach the API server), as a network that stalls does.
type stallScale struct {
	base     http.RoundTripper
	path     string
	entered  chan struct{}
	released chan struct{}
}

func (s *stallScale) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && strings.HasSuffix(req.URL.Path, s.path) {
		select {
		case s.entered <- struct{}{}:
		default:
		}
		select {
		case <-s.released:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	return s.base.RoundTrip(req)
}

// On the real parts: a transition whose Kubernetes call stalls keeps its lock alive in Redis
// (extended while it waits, far past the lock's TTL); when the lock passes to another holder,
// the transition gives up its call (which never reaches the API server) and writes nothing
// after the intent it recorded first, which the next touch finishes.
func TestIntegrationLockKeptWhileWorkRunsAndLostLockStopsIt(t *testing.T) {
	f := newFixture(t, parts{})
	ctx := context.Background()
	s, err := f.svc.Create(ctx, session.CreateRequest{UserID: "lock@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, f.svc, s.ID, session.StateRunning)

	cfg := rest.CopyConfig(f.kube.Config)
	stall := &stallScale{path: "/deployments/vs-code-" + s.ID + "/scale", entered: make(chan struct{}, 1), released: make(chan struct{})}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { stall.base = rt; return stall })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const ttl = time.Second
	slow := f.with(parts{kube: cs, service: func(o *session.Options) { o.LockTTL, o.TransitionTimeout = ttl, time.Minute }})
	done := make(chan error, 1)
	go func() { _, err := slow.Sleep(ctx, s.ID); done <- err }()
	select {
	case <-stall.entered:
	case err := <-done:
		t.Fatalf("sleep ended before its scale call: %v", err)
	}
	lockKey := f.prefix + "lock:" + s.ID
	token, err := f.rdb.Get(ctx, lockKey).Result()
	if err != nil {
		t.Fatalf("the lock while the call stalls: %v", err)
	}
	// Three TTLs later the same holder still has it: it was extended in Redis.
	time.Sleep(3 * ttl)
	if now, err := f.rdb.Get(ctx, lockKey).Result(); err != nil || now != token {
		t.Fatalf("after 3 TTLs the lock is %q, %v; want the stalled holder's, extended", now, err)
	}
	// The lock passes to someone else (as if it had expired): the stalled sleep stops.
	if err := f.rdb.Set(ctx, lockKey, "another-instance", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	var serr error
	select {
	case serr = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the stalled sleep went on after its lock was lost")
	}
	if !errors.Is(serr, session.ErrBusy) {
		t.Fatalf("sleep that lost its lock = %v, want busy", serr)
	}
	if err := f.rdb.Del(ctx, lockKey).Err(); err != nil {
		t.Fatal(err)
	}
	// The sleep's intent was recorded under the lock, before the call; nothing after it was.
	if got, err := f.store.Get(ctx, s.ID); err != nil || got.State != session.StateSleeping || got.Pending != session.PendingApply {
		t.Fatalf("record after the lost sleep: %+v, %v; want its intent (sleeping, await-apply)", got, err)
	}
	if d := f.deployment(s.ID); d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Fatalf("the given-up scale reached the API server: replicas %v", d.Spec.Replicas)
	}
	close(stall.released)
	// The next touch, by a healthy instance, finishes what the intent says.
	waitState(t, f.svc, s.ID, session.StateSleeping)
	if d := f.deployment(s.ID); d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
		t.Fatalf("after the intent was finished: replicas %v", d.Spec.Replicas)
	}
}
