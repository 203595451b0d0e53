package faults_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// patience bounds every wait: far above what a step takes on a loaded 2-core machine, so it
// only ends a test that would otherwise hang.
const patience = 5 * time.Minute

// maxSweeps bounds the sweeps a session may need to converge after a fault. A sweep runs once
// the cluster has done what the last one asked (plane.settle), so each one can make progress.
const maxSweeps = 10

// backupPVC is the shared backup claim's name in each test's namespace.
const backupPVC = "hyperbola-backups"

// quiet is the logger of the Services under test: their warnings about injected faults are
// expected, and would drown the test's own log.
var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// plane is one test's control plane: a namespace on the package's cluster (with its backup
// claim) and the cluster adapter's options. Sessions run on kwok's nodes, or on the real
// node (a namespace on the package's on-demand real-node cluster) when a backup must really run.
type plane struct {
	t    *testing.T
	ns   string
	kube *testenv.Kube
	opts kube.Options
	real bool
}

// planeOptions adjust a plane before its parts are built.
type planeOptions struct {
	// realNode places workspaces and backups on the real node (real files, real zips).
	realNode bool
	kube     func(*kube.Options)
}

func newPlane(t *testing.T, po planeOptions) *plane {
	t.Helper()
	namespace := env.Namespace
	if po.realNode {
		namespace = env.RealNodeNamespace
	}
	k, ns := namespace(t)
	p := &plane{t: t, ns: ns, kube: k, real: po.realNode}
	ctx := context.Background()
	p.opts = kube.Options{Namespace: ns, Domain: "ws.example.test", Port: 8080, IngressClass: "nginx",
		ClusterIssuer: "letsencrypt", IngressNamespace: "ingress-nginx", BackupPVC: backupPVC,
		BackupImage: "localhost/hyperbola-backup:1", BackupDeadline: 30 * time.Minute}
	if po.realNode {
		node := k.RealNode
		if err := k.CreateBackupPVCOn(ctx, ns, backupPVC, node.StorageClass); err != nil {
			t.Fatal(err)
		}
		p.opts.StorageClass, p.opts.BackupImage = node.StorageClass, node.BackupImage
		p.opts.NodeSelector, p.opts.Tolerations = node.NodeSelector(), []corev1.Toleration{node.Toleration()}
	} else if err := k.CreateBackupPVC(ctx, ns, backupPVC); err != nil {
		t.Fatal(err)
	}
	if po.kube != nil {
		po.kube(&p.opts)
	}
	if err := p.opts.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// redis returns a store on a key prefix of its own: each case's sessions are the only ones
// its sweeps see.
func (p *plane) redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	return env.RedisFor(t)
}

// newStore returns a store on rdb's keys under prefix (a fresh instance on the same data).
func newStore(rdb *redis.Client, prefix string) *store.Store {
	return store.New(rdb, prefix, store.Options{TombstoneTTL: 24 * time.Hour, Logger: quiet})
}

// cluster returns the cluster adapter on cs (the package's client when nil).
func (p *plane) cluster(cs kubernetes.Interface) *kube.Cluster {
	if cs == nil {
		cs = p.kube.Client
	}
	return kube.NewCluster(cs, p.opts)
}

// service returns a Service on c and st with the plane's defaults; so adjusts them.
func (p *plane) service(c session.Cluster, st session.Store, so session.Options) *session.Service {
	so.Domain, so.Logger = p.opts.Domain, quiet
	if p.real {
		so.Image, so.Storage = p.kube.RealNode.WorkspaceImage, "1Gi"
	}
	return session.NewService(c, st, so)
}

// waitState drives the session with Get until it is in want with nothing pending.
func (p *plane) waitState(t testing.TB, svc *session.Service, id string, want session.State) *session.Session {
	t.Helper()
	var last *session.Session
	var lastErr error
	ok := poll(func() bool {
		s, err := svc.Get(context.Background(), id)
		if err != nil {
			lastErr = err
			return false
		}
		last = s
		return s.State == want && s.Pending == session.PendingNone
	})
	if !ok {
		t.Fatalf("session %s: not %s after %s (last %+v, last error %v)", id, want, patience, last, lastErr)
	}
	return last
}

// poll calls done with a growing pause (10ms to 1s) until it reports true; false after patience.
func poll(done func() bool) bool {
	deadline := time.Now().Add(patience)
	pause := 10 * time.Millisecond
	for {
		if done() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, time.Second)
	}
}

// objects is what the cluster holds for one session.
type objects struct {
	kinds       map[session.ObjectKind]int // workspace objects by kind (Secrets: the auth one)
	replicas    int32                      // the Deployment's desired replicas (-1 without one)
	ready       int32
	pods        int
	jobs        []batchv1.Job
	terminating []string // objects on their way out
	unfinished  int      // backup Jobs not finished
	rolling     bool     // the Deployment has not caught up with its spec
}

// count is the number of workspace objects present.
func (o objects) count() int {
	n := 0
	for _, c := range o.kinds {
		n += c
	}
	return n
}

// objectsOf lists the session's labelled objects.
func (p *plane) objectsOf(ctx context.Context, id string) (objects, error) {
	cs := p.kube.Client
	sel := metav1.ListOptions{LabelSelector: kube.LabelSession + "=" + id}
	o := objects{kinds: map[session.ObjectKind]int{}, replicas: -1}
	gone := func(kind session.ObjectKind, m metav1.ObjectMeta) {
		o.kinds[kind]++
		if m.DeletionTimestamp != nil {
			o.terminating = append(o.terminating, string(kind)+"/"+m.Name)
		}
	}
	pvcs, err := cs.CoreV1().PersistentVolumeClaims(p.ns).List(ctx, sel)
	if err != nil {
		return o, err
	}
	for _, x := range pvcs.Items {
		gone(session.ObjectPVC, x.ObjectMeta)
	}
	deps, err := cs.AppsV1().Deployments(p.ns).List(ctx, sel)
	if err != nil {
		return o, err
	}
	for _, d := range deps.Items {
		gone(session.ObjectDeployment, d.ObjectMeta)
		if d.Spec.Replicas != nil {
			o.replicas = *d.Spec.Replicas
		}
		o.ready = d.Status.ReadyReplicas
		o.rolling = d.Status.ObservedGeneration != d.Generation || d.Status.Replicas != o.replicas ||
			d.Status.ReadyReplicas != o.replicas || d.Status.UpdatedReplicas != o.replicas
	}
	svcs, err := cs.CoreV1().Services(p.ns).List(ctx, sel)
	if err != nil {
		return o, err
	}
	for _, x := range svcs.Items {
		gone(session.ObjectService, x.ObjectMeta)
	}
	ings, err := cs.NetworkingV1().Ingresses(p.ns).List(ctx, sel)
	if err != nil {
		return o, err
	}
	for _, x := range ings.Items {
		gone(session.ObjectIngress, x.ObjectMeta)
	}
	nps, err := cs.NetworkingV1().NetworkPolicies(p.ns).List(ctx, sel)
	if err != nil {
		return o, err
	}
	for _, x := range nps.Items {
		gone(session.ObjectNetworkPolicy, x.ObjectMeta)
	}
	secs, err := cs.CoreV1().Secrets(p.ns).List(ctx, sel)
	if err != nil {
		return o, err
	}
	for _, x := range secs.Items {
		gone(session.ObjectSecret, x.ObjectMeta)
	}
	pods, err := cs.CoreV1().Pods(p.ns).List(ctx, metav1.ListOptions{
		LabelSelector: kube.LabelSession + "=" + id + "," + kube.LabelComponent + "=" + kube.ComponentWorkspace})
	if err != nil {
		return o, err
	}
	o.pods = len(pods.Items)
	for _, x := range pods.Items {
		if x.DeletionTimestamp != nil {
			o.terminating = append(o.terminating, "Pod/"+x.Name)
		}
	}
	jobs, err := cs.BatchV1().Jobs(p.ns).List(ctx, sel)
	if err != nil {
		return o, err
	}
	o.jobs = jobs.Items
	for _, j := range jobs.Items {
		if !jobFinished(&j) {
			o.unfinished++
		}
		if j.DeletionTimestamp != nil {
			o.terminating = append(o.terminating, "Job/"+j.Name)
		}
	}
	return o, nil
}

func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func jobSucceeded(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// settle waits until the cluster has done what was asked of the session's objects: no
// object on its way out, the Deployment rolled out at its replicas, every backup Job
// finished. A sweep after it can make progress; one before it could only wait.
func (p *plane) settle(t testing.TB, id string) objects {
	t.Helper()
	var o objects
	var lastErr error
	ok := poll(func() bool {
		var err error
		if o, err = p.objectsOf(context.Background(), id); err != nil {
			lastErr = err
			return false
		}
		return len(o.terminating) == 0 && !o.rolling && o.unfinished == 0
	})
	if !ok {
		t.Fatalf("session %s: the cluster did not settle in %s (%+v, last error %v)", id, patience, o, lastErr)
	}
	return o
}

// converge drives the session with sweeps (Store.Pending, then Service.Advance on each) until
// its record has nothing pending, at most maxSweeps of them; after each sweep a client's Get
// must not answer NotFound while the record exists. It returns the record (nil when there
// is none: a create cut before its record was stored) and the cluster's objects.
func (p *plane) converge(t testing.TB, svc *session.Service, st *store.Store, id string) (*session.Session, objects) {
	t.Helper()
	ctx := context.Background()
	for sweep := 0; sweep <= maxSweeps; sweep++ {
		o := p.settle(t, id)
		rec, err := st.Get(ctx, id)
		switch {
		case errors.Is(err, session.ErrNotFound):
			if _, err := svc.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("session %s: no record, but Get answers %v", id, err)
			}
			return nil, o
		case err != nil:
			t.Fatalf("reading session %s: %v", id, err)
		}
		if rec.Pending == session.PendingNone {
			if sweep > 0 {
				t.Logf("session %s converged to %s after %d sweeps", id, rec.State, sweep)
			}
			return rec, o
		}
		if sweep == maxSweeps {
			break
		}
		ids, err := st.Pending(ctx, 100)
		if err != nil {
			t.Fatalf("sweep %d: pending: %v", sweep+1, err)
		}
		for _, pid := range ids {
			if err := svc.Advance(ctx, pid); err != nil {
				t.Logf("sweep %d: advancing %s: %v", sweep+1, pid, err)
			}
		}
		if _, err := svc.Get(ctx, id); errors.Is(err, session.ErrNotFound) {
			if _, rerr := st.Get(ctx, id); rerr == nil {
				t.Fatalf("sweep %d: Get answers NotFound while session %s's record exists: %v", sweep+1, id, err)
			}
		}
	}
	rec, _ := st.Get(ctx, id)
	t.Fatalf("session %s did not converge in %d sweeps: %+v", id, maxSweeps, rec)
	return nil, objects{}
}

// checkObjects fails t when the cluster's objects do not match the session's state: six
// objects while it lives (its Deployment at the replicas the state implies), none after a
// delete, the volume kept by a failed one.
func checkObjects(t testing.TB, id string, rec *session.Session, o objects) {
	t.Helper()
	state := session.State("none")
	if rec != nil {
		state = rec.State
	}
	switch state {
	case "none", session.StateDeleted:
		if o.count() != 0 || len(o.jobs) != 0 || o.pods != 0 {
			t.Errorf("session %s is %s but the cluster holds %v, %d pods, %d jobs (orphans)", id, state, o.kinds, o.pods, len(o.jobs))
		}
	case session.StateRunning, session.StateSleeping:
		want := int32(1)
		if state == session.StateSleeping {
			want = 0
		}
		if o.count() != 6 || len(o.kinds) != 6 {
			t.Errorf("session %s is %s with %d objects %v, want six", id, state, o.count(), o.kinds)
		}
		if o.replicas != want || o.ready != want || o.pods != int(want) {
			t.Errorf("session %s is %s but its Deployment wants %d replicas (%d ready, %d pods), want %d",
				id, state, o.replicas, o.ready, o.pods, want)
		}
	case session.StateFailed:
		if rec.Reason == "" {
			t.Errorf("session %s failed without a reason", id)
		}
		if o.kinds[session.ObjectPVC] != 1 {
			t.Errorf("session %s failed and its volume is gone: %v", id, o.kinds)
		}
	default:
		t.Errorf("session %s ended %s (pending %q): not a resting state", id, state, rec.Pending)
	}
}

// volumeOrder watches a namespace's backup Jobs and data claims, and tells for each session
// when (in etcd's order: resource versions of one etcd) a backup Job first succeeded and its
// volume was first on its way out.
type volumeOrder struct {
	mu      sync.Mutex
	jobDone map[string]int64
	pvcGone map[string]int64
}

// watchVolumes starts a volumeOrder on the plane's namespace, stopped when t ends.
func (p *plane) watchVolumes(t testing.TB) *volumeOrder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v := &volumeOrder{jobDone: map[string]int64{}, pvcGone: map[string]int64{}}
	note := func(m map[string]int64, meta metav1.ObjectMeta) {
		id := meta.Labels[kube.LabelSession]
		rv, err := strconv.ParseInt(meta.ResourceVersion, 10, 64)
		if id == "" || err != nil {
			return
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		if _, seen := m[id]; !seen {
			m[id] = rv
		}
	}
	cs := p.kube.Client
	jw, err := cs.BatchV1().Jobs(p.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pw, err := cs.CoreV1().PersistentVolumeClaims(p.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range jw.ResultChan() {
			if j, ok := ev.Object.(*batchv1.Job); ok && jobSucceeded(j) {
				note(v.jobDone, j.ObjectMeta)
			}
		}
	}()
	go func() {
		for ev := range pw.ResultChan() {
			if c, ok := ev.Object.(*corev1.PersistentVolumeClaim); ok && (ev.Type == watch.Deleted || c.DeletionTimestamp != nil) {
				if c.Labels[kube.LabelComponent] != kube.ComponentBackup {
					note(v.pvcGone, c.ObjectMeta)
				}
			}
		}
	}()
	return v
}

// checkBackedUp fails t when the session's volume went before a backup of it succeeded.
func (v *volumeOrder) checkBackedUp(t testing.TB, id string) {
	t.Helper()
	v.mu.Lock()
	done, gone := v.jobDone[id], v.pvcGone[id]
	v.mu.Unlock()
	switch {
	case gone == 0:
		t.Errorf("session %s: its volume's removal was never seen", id)
	case done == 0:
		t.Errorf("session %s: its volume was removed (resource version %d) and no backup Job succeeded", id, gone)
	case done > gone:
		t.Errorf("session %s: its volume was removed (resource version %d) before its backup succeeded (%d)", id, gone, done)
	}
}

// crash is a control plane instance that dies at a step boundary: call number at (counting
// every Cluster and Store call from 1) and every later one fail without doing anything, and
// the instance's context is cancelled, as when the process is killed there. Its session lock
// is neither extended nor released: it expires, as a dead process's does.
type crash struct {
	mu     sync.Mutex
	at     int // 0: never
	calls  []string
	cut    bool
	cancel context.CancelFunc
	id     string // the session the instance worked on (from its first lock)
}

var errCrashed = errors.New("the control plane instance crashed here")

// step is one call of the instance: errCrashed when it has died.
func (c *crash) step(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return errCrashed
	}
	c.calls = append(c.calls, name)
	if c.at > 0 && len(c.calls) >= c.at {
		c.cut = true
		c.cancel()
		counts.faults.Add(1)
		return fmt.Errorf("%s: %w", name, errCrashed)
	}
	return nil
}

func (c *crash) dead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// trace returns the calls made, the cut one last.
func (c *crash) trace() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// crashCluster is a session.Cluster that dies with its crash.
type crashCluster struct {
	c     *crash
	inner session.Cluster
}

var _ session.Cluster = (*crashCluster)(nil)

func (x *crashCluster) Apply(ctx context.Context, ws session.Workspace) error {
	if err := x.c.step("Apply"); err != nil {
		return err
	}
	return x.inner.Apply(ctx, ws)
}

func (x *crashCluster) Route(ctx context.Context, ws session.Workspace) error {
	if err := x.c.step("Route"); err != nil {
		return err
	}
	return x.inner.Route(ctx, ws)
}

func (x *crashCluster) Scale(ctx context.Context, id string, replicas int32) error {
	if err := x.c.step(fmt.Sprintf("Scale(%d)", replicas)); err != nil {
		return err
	}
	return x.inner.Scale(ctx, id, replicas)
}

func (x *crashCluster) Observe(ctx context.Context, id string) (*session.Observed, error) {
	if err := x.c.step("Observe"); err != nil {
		return nil, err
	}
	return x.inner.Observe(ctx, id)
}

func (x *crashCluster) Readiness(ctx context.Context, id string) (*session.Observed, error) {
	if err := x.c.step("Readiness"); err != nil {
		return nil, err
	}
	return x.inner.Readiness(ctx, id)
}

func (x *crashCluster) ObserveAll(ctx context.Context) ([]*session.Observed, error) {
	if err := x.c.step("ObserveAll"); err != nil {
		return nil, err
	}
	return x.inner.ObserveAll(ctx)
}

func (x *crashCluster) Password(ctx context.Context, id string) (string, error) {
	if err := x.c.step("Password"); err != nil {
		return "", err
	}
	return x.inner.Password(ctx, id)
}

func (x *crashCluster) StartBackup(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	if err := x.c.step("StartBackup"); err != nil {
		return nil, err
	}
	return x.inner.StartBackup(ctx, id, attempt)
}

func (x *crashCluster) StartRestore(ctx context.Context, id string, attempt int, location string) (*session.Backup, error) {
	if err := x.c.step("StartRestore"); err != nil {
		return nil, err
	}
	return x.inner.StartRestore(ctx, id, attempt, location)
}

func (x *crashCluster) RestoreStatus(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	if err := x.c.step("RestoreStatus"); err != nil {
		return nil, err
	}
	return x.inner.RestoreStatus(ctx, id, attempt)
}

func (x *crashCluster) CheckArchive(ctx context.Context, location string) (*session.Archive, error) {
	if err := x.c.step("CheckArchive"); err != nil {
		return nil, err
	}
	return x.inner.CheckArchive(ctx, location)
}

func (x *crashCluster) RemoveArchives(ctx context.Context, name string, locations []string) (*session.Backup, error) {
	if err := x.c.step("RemoveArchives"); err != nil {
		return nil, err
	}
	return x.inner.RemoveArchives(ctx, name, locations)
}

func (x *crashCluster) BackupStatus(ctx context.Context, id string, attempt int) (*session.Backup, error) {
	if err := x.c.step("BackupStatus"); err != nil {
		return nil, err
	}
	return x.inner.BackupStatus(ctx, id, attempt)
}

func (x *crashCluster) DeleteWorkspace(ctx context.Context, id string, deletePVC bool) error {
	if err := x.c.step(fmt.Sprintf("DeleteWorkspace(pvc=%t)", deletePVC)); err != nil {
		return err
	}
	return x.inner.DeleteWorkspace(ctx, id, deletePVC)
}

// crashStore is a session.Store that dies with its crash.
type crashStore struct {
	c     *crash
	inner session.Store
}

var _ session.Store = (*crashStore)(nil)

// crashLock is a lock held by a crashing instance: once it died, it is neither extended nor
// released.
type crashLock struct {
	c     *crash
	inner session.Lock
}

func (l *crashLock) Extend(ctx context.Context, ttl time.Duration) (bool, error) {
	if l.c.dead() {
		return false, errCrashed
	}
	return l.inner.Extend(ctx, ttl)
}

func (l *crashLock) Release(ctx context.Context) error {
	if l.c.dead() {
		return errCrashed
	}
	return l.inner.Release(ctx)
}

// unwrap returns the store's own lock (its writes are fenced with it).
func unwrap(l session.Lock) session.Lock {
	if cl, ok := l.(*crashLock); ok {
		return cl.inner
	}
	return l
}

func (x *crashStore) Reserve(ctx context.Context, lock session.Lock, s *session.Session) (bool, error) {
	if err := x.c.step("Reserve"); err != nil {
		return false, err
	}
	return x.inner.Reserve(ctx, unwrap(lock), s)
}

func (x *crashStore) Get(ctx context.Context, id string) (*session.Session, error) {
	if err := x.c.step("Get"); err != nil {
		return nil, err
	}
	return x.inner.Get(ctx, id)
}

func (x *crashStore) Put(ctx context.Context, lock session.Lock, s *session.Session) error {
	if err := x.c.step(fmt.Sprintf("Put(%s,%s)", s.State, orNone(string(s.Pending)))); err != nil {
		return err
	}
	return x.inner.Put(ctx, unwrap(lock), s)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (x *crashStore) Remove(ctx context.Context, id string) error {
	if err := x.c.step("Remove"); err != nil {
		return err
	}
	return x.inner.Remove(ctx, id)
}

func (x *crashStore) List(ctx context.Context, opts session.ListOptions) (*session.ListResult, error) {
	if err := x.c.step("List"); err != nil {
		return nil, err
	}
	return x.inner.List(ctx, opts)
}

func (x *crashStore) PutBackup(ctx context.Context, b *session.BackupRecord) error {
	if err := x.c.step("PutBackup(" + string(b.State) + ")"); err != nil {
		return err
	}
	return x.inner.PutBackup(ctx, b)
}

func (x *crashStore) GetBackup(ctx context.Context, id string) (*session.BackupRecord, error) {
	if err := x.c.step("GetBackup"); err != nil {
		return nil, err
	}
	return x.inner.GetBackup(ctx, id)
}

func (x *crashStore) ListBackups(ctx context.Context, opts session.BackupListOptions) (*session.BackupList, error) {
	if err := x.c.step("ListBackups"); err != nil {
		return nil, err
	}
	return x.inner.ListBackups(ctx, opts)
}

func (x *crashStore) RemoveBackup(ctx context.Context, id string) error {
	if err := x.c.step("RemoveBackup"); err != nil {
		return err
	}
	return x.inner.RemoveBackup(ctx, id)
}

func (x *crashStore) ExpiredBackups(ctx context.Context, now time.Time, limit int) ([]*session.BackupRecord, error) {
	if err := x.c.step("ExpiredBackups"); err != nil {
		return nil, err
	}
	return x.inner.ExpiredBackups(ctx, now, limit)
}

func (x *crashStore) RemovingBackups(ctx context.Context, limit int) ([]*session.BackupRecord, error) {
	if err := x.c.step("RemovingBackups"); err != nil {
		return nil, err
	}
	return x.inner.RemovingBackups(ctx, limit)
}

func (x *crashStore) Touch(ctx context.Context, id string, t time.Time) error {
	if err := x.c.step("Touch"); err != nil {
		return err
	}
	return x.inner.Touch(ctx, id, t)
}

func (x *crashStore) Lock(ctx context.Context, id string, ttl, wait time.Duration) (session.Lock, error) {
	x.c.mu.Lock()
	if x.c.id == "" {
		x.c.id = id
	}
	x.c.mu.Unlock()
	if err := x.c.step("Lock"); err != nil {
		return nil, err
	}
	l, err := x.inner.Lock(ctx, id, ttl, wait)
	if err != nil {
		return nil, err
	}
	return &crashLock{c: x.c, inner: l}, nil
}

func (x *crashStore) ClaimRequest(ctx context.Context, key, id string, ttl time.Duration) (string, error) {
	if err := x.c.step("ClaimRequest"); err != nil {
		return "", err
	}
	return x.inner.ClaimRequest(ctx, key, id, ttl)
}

func (x *crashStore) Ping(ctx context.Context) error {
	if err := x.c.step("Ping"); err != nil {
		return err
	}
	return x.inner.Ping(ctx)
}

// waitLockFree waits until session id's lock can be taken (a crashed instance's expired),
// and lets it go again.
func waitLockFree(t testing.TB, st *store.Store, id string) {
	t.Helper()
	ctx := context.Background()
	l, err := st.Lock(ctx, id, 5*time.Second, patience)
	if err != nil {
		t.Fatalf("session %s's lock: %v", id, err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("releasing session %s's lock: %v", id, err)
	}
}
