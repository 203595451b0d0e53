package reconcile

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// The integration tests run against the real local control plane (kwok nodes: pods become
// Ready, Job pods complete, or fail with hyperbola.dev/test-fail=true), a real redis-server
// and the Firestore emulator. `go test -short` skips them and runs the unit tests only.

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Cluster: true, Redis: true, Firestore: true})
}

const (
	backupPVC = "hyperbola-backups"
	domain    = "example.test"
)

// world is everything a test works on, in its own namespace, Redis prefix and Firestore project.
type world struct {
	ns       string
	cs       kubernetes.Interface
	cluster  *kube.Cluster
	rdb      *redis.Client
	store    *store.Store
	recorder *events.Recorder
	svc      *session.Service
}

func newWorld(t *testing.T, mutate ...func(*kube.Options)) *world {
	t.Helper()
	k, ns := env.Namespace(t)
	o := kube.Options{
		Namespace: ns, Domain: domain, Port: 8080, IngressClass: "nginx", ClusterIssuer: "letsencrypt",
		IngressNamespace: "ingress-nginx",
		BackupPVC:        backupPVC, BackupImage: "alpine:3.20",
	}
	for _, m := range mutate {
		m(&o)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := k.CreateBackupPVC(t.Context(), ns, backupPVC); err != nil {
		t.Fatal(err)
	}
	rdb, prefix := env.RedisFor(t)
	fs, err := firestore.NewClient(context.Background(), env.FirestoreProject(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fs.Close() })
	w := &world{ns: ns, cs: k.Client, cluster: kube.NewClusterWithMetadata(k.Client, k.Metadata(t), o), rdb: rdb,
		store: store.New(rdb, prefix, store.Options{})}
	// The emulator's first transaction takes ~10 s on a cold JVM: a generous attempt.
	w.recorder = events.New(fs, events.Options{Redis: rdb, Prefix: prefix, AttemptTimeout: 30 * time.Second})
	w.svc = session.NewService(w.cluster, w.store, session.Options{Domain: domain, Recorder: w.recorder})
	return w
}

func (w *world) reconcile(t *testing.T, opts Options) *Report {
	t.Helper()
	opts.Domain = domain
	rep, err := Reconcile(t.Context(), Deps{Cluster: w.cluster, Store: w.store, Records: w.recorder}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) > 0 {
		t.Logf("reconcile errors: %+v", rep.Errors)
	}
	return rep
}

// eventually polls cond every 50 ms until it holds.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	start := time.Now()
	var last error
	for time.Since(start) < timeout {
		ok, err := cond()
		if ok && err == nil {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not after %v (last error: %v)", what, timeout, last)
}

func (w *world) waitState(t *testing.T, id string, want session.State) {
	t.Helper()
	eventually(t, 60*time.Second, id+" "+string(want), func() (bool, error) {
		s, err := w.svc.Get(t.Context(), id)
		if err != nil {
			return false, err
		}
		return s.State == want && s.Pending == session.PendingNone, nil
	})
}

// After FLUSHALL on Redis, one reconcile brings every session back with its correct state,
// owner and spec, and the Service carries on with them as if nothing happened.
func TestIntegrationReconcileAfterRedisFlushAll(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()

	create := func(user string, req session.CreateRequest) *session.Session {
		req.UserID = user
		s, err := w.svc.Create(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	running := create("alice", session.CreateRequest{Labels: map[string]string{"team": "a"}})
	slept := create("bob", session.CreateRequest{Image: "codercom/code-server:4.95.0"})
	asleep := create("carol", session.CreateRequest{State: session.StateSleeping, Storage: "7Gi"})
	deleting := create("dave", session.CreateRequest{})
	w.waitState(t, running.ID, session.StateRunning)
	w.waitState(t, slept.ID, session.StateRunning)
	w.waitState(t, deleting.ID, session.StateRunning)
	if _, err := w.svc.Sleep(ctx, slept.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Delete(ctx, deleting.ID, session.DeleteOptions{}); err != nil { // backup Job started
		t.Fatal(err)
	}
	before := map[string]*session.Session{}
	for _, id := range []string{running.ID, slept.ID, asleep.ID, deleting.ID} {
		s, err := w.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		before[id] = s
	}
	if before[deleting.ID].State != session.StateDeleting || before[deleting.ID].Pending != session.PendingBackup {
		t.Fatalf("the deleted session is %s/%s before the flush, want deleting/await-backup", before[deleting.ID].State, before[deleting.ID].Pending)
	}

	if err := w.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Get(ctx, running.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("after FLUSHALL: %v", err)
	}

	start := time.Now()
	rep := w.reconcile(t, Options{})
	t.Logf("reconcile after FLUSHALL: %d observed, rebuilt %v in %v", rep.Observed, ids(rep.Rebuilt), time.Since(start).Round(time.Millisecond))
	if got := ids(rep.Rebuilt); len(got) != 4 || len(rep.Adopted)+len(rep.Removed)+len(rep.BackupsStarted) != 0 || len(rep.Errors) != 0 {
		t.Fatalf("report: %+v", rep)
	}
	want := map[string]session.State{running.ID: session.StateRunning, slept.ID: session.StateSleeping,
		asleep.ID: session.StateSleeping, deleting.ID: session.StateDeleting}
	for id, st := range want {
		got, err := w.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b := before[id]
		// Firestore keeps microseconds.
		us := func(t time.Time) time.Time { return t.Truncate(time.Microsecond) }
		if got.State != st || got.UserID != b.UserID || got.Image != b.Image || got.Storage != b.Storage ||
			!got.CreatedAt.Equal(us(b.CreatedAt)) || got.WorkspaceURL != b.WorkspaceURL || got.IdleTimeout != b.IdleTimeout ||
			!got.ExpiresAt.Equal(us(b.ExpiresAt)) || got.Labels["team"] != b.Labels["team"] || got.BackupLocation != b.BackupLocation {
			t.Errorf("%s rebuilt as %+v\nwas %+v", id, got, b)
		}
	}
	if d, _ := w.store.Get(ctx, deleting.ID); d.Pending != session.PendingBackup || d.Attempt != 1 {
		t.Errorf("deleting session rebuilt with %q attempt %d, want await-backup attempt 1", d.Pending, d.Attempt)
	}
	// The rebuilt sessions work: the sleeping one wakes, the deleting one finishes its delete
	// (backup first), and the user's list is back.
	if _, err := w.svc.Wake(ctx, slept.ID); err != nil {
		t.Fatal(err)
	}
	w.waitState(t, slept.ID, session.StateRunning)
	w.waitState(t, deleting.ID, session.StateDeleted)
	if d, _ := w.store.Get(ctx, deleting.ID); d.BackupLocation == "" {
		t.Errorf("deleted without a backup location: %+v", d)
	}
	list, err := w.svc.List(ctx, session.ListOptions{UserID: "alice"})
	if err != nil || len(list.Sessions) != 1 || list.Sessions[0].ID != running.ID {
		t.Errorf("alice's list: %+v, %v", list, err)
	}
	evs, err := w.recorder.Events(ctx, running.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Type != "rebuilt" || last.Actor != Actor {
		t.Errorf("last event of %s: %+v", running.ID, last)
	}

	// A second run finds nothing to do.
	if rep := w.reconcile(t, Options{}); rep.Changed() {
		t.Errorf("second run: %+v", rep)
	}
}

// old is a creation time well past the grace period, written in the created-at annotation
// (which Observe prefers to the objects' own creation time).
func oldWorkspace(t *testing.T, user string, replicas int32, created time.Time) session.Workspace {
	t.Helper()
	id, err := session.NewID()
	if err != nil {
		t.Fatal(err)
	}
	return session.Workspace{ID: id, UserID: user, Image: "codercom/code-server:4.96.4", Storage: "5Gi", CPU: "250m",
		Memory: "256Mi", Replicas: replicas, Password: "pw-" + id, CreatedAt: created, IdleTimeout: 20 * time.Minute,
		Labels: map[string]string{"origin": "kubectl"}}
}

// labelledPVC creates a claim with Hyperbola's labels directly, as someone with kubectl would.
func (w *world) labelledPVC(t *testing.T, id string, created time.Time) {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "vs-code-" + id + "-data",
			Labels:      map[string]string{kube.LabelManagedBy: kube.ManagedByValue, kube.LabelSession: id},
			Annotations: map[string]string{kube.AnnotationCreatedAt: created.UTC().Format(time.RFC3339), kube.AnnotationUserID: "stray"}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if _, err := w.cs.CoreV1().PersistentVolumeClaims(w.ns).Create(t.Context(), pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// labelledService creates a Service with Hyperbola's labels directly.
func (w *world) labelledService(t *testing.T, id string, created time.Time) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "vs-code-" + id,
			Labels:      map[string]string{kube.LabelManagedBy: kube.ManagedByValue, kube.LabelSession: id},
			Annotations: map[string]string{kube.AnnotationCreatedAt: created.UTC().Format(time.RFC3339)}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 8080}}},
	}
	if _, err := w.cs.CoreV1().Services(w.ns).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (w *world) observe(t *testing.T, id string) *session.Observed {
	t.Helper()
	o, err := w.cluster.Observe(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Objects made directly in the cluster with Hyperbola's labels: complete sets older than the
// grace period are adopted, young ones left alone, incomplete ones removed — a volume only
// after its backup succeeded.
func TestIntegrationOrphansAreAdoptedOrRemoved(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	longAgo := time.Now().Add(-time.Hour).Truncate(time.Second)

	adoptRunning := oldWorkspace(t, "erin", 1, longAgo)
	adoptAsleep := oldWorkspace(t, "frank", 0, longAgo)
	young := oldWorkspace(t, "gina", 1, time.Now())
	for _, ws := range []session.Workspace{adoptRunning, adoptAsleep, young} {
		if err := w.cluster.Apply(ctx, ws); err != nil {
			t.Fatal(err)
		}
	}
	withVolume, _ := session.NewID()
	w.labelledPVC(t, withVolume, longAgo)
	noVolume, _ := session.NewID()
	w.labelledService(t, noVolume, longAgo)
	// A half-deleted workspace with a running pod: PVC and Deployment left, the rest gone.
	halfGone := oldWorkspace(t, "hank", 1, longAgo)
	if err := w.cluster.Apply(ctx, halfGone); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "pods ready", func() (bool, error) {
		return w.observe(t, adoptRunning.ID).Ready && w.observe(t, halfGone.ID).Ready, nil
	})
	for _, name := range []string{"vs-code-" + halfGone.ID} {
		_ = w.cs.CoreV1().Services(w.ns).Delete(ctx, name, metav1.DeleteOptions{})
		_ = w.cs.NetworkingV1().Ingresses(w.ns).Delete(ctx, name, metav1.DeleteOptions{})
		_ = w.cs.NetworkingV1().NetworkPolicies(w.ns).Delete(ctx, name, metav1.DeleteOptions{})
	}
	_ = w.cs.CoreV1().Secrets(w.ns).Delete(ctx, "vs-code-"+halfGone.ID+"-auth", metav1.DeleteOptions{})
	eventually(t, 30*time.Second, "claims bound", func() (bool, error) {
		return w.observe(t, withVolume).PVCPhase == "Bound" && w.observe(t, halfGone.ID).PVCPhase == "Bound", nil
	})

	// A dry run says what it would do and does nothing.
	dry := w.reconcile(t, Options{DryRun: true})
	if len(dry.Adopted) != 2 || len(dry.Removed) != 3 || len(dry.BackupsStarted) != 0 {
		t.Errorf("dry run: %+v", dry)
	}
	if _, err := w.store.Get(ctx, adoptRunning.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("the dry run adopted: %v", err)
	}

	rep := w.reconcile(t, Options{})
	if got, want := ids(rep.Adopted), sorted(adoptRunning.ID, adoptAsleep.ID); !slices.Equal(got, want) {
		t.Errorf("adopted %v, want %v", got, want)
	}
	if got := ids(rep.Skipped); !slices.Equal(got, []string{young.ID}) {
		t.Errorf("skipped %v, want the young set %s", got, young.ID)
	}
	if got := ids(rep.Removed); !slices.Equal(got, []string{noVolume}) {
		t.Errorf("removed %v, want only the volume-less %s", got, noVolume)
	}
	if got, want := ids(rep.BackupsStarted), sorted(withVolume, halfGone.ID); !slices.Equal(got, want) {
		t.Errorf("backups started %v, want %v", got, want)
	}
	for id, st := range map[string]session.State{adoptRunning.ID: session.StateRunning, adoptAsleep.ID: session.StateSleeping} {
		s, err := w.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.State != st || !s.CreatedAt.Equal(longAgo) || s.IdleTimeout.D() != 20*time.Minute || s.Labels["origin"] != "kubectl" ||
			s.WorkspaceURL != "https://vs-code-"+id+"."+domain {
			t.Errorf("adopted %s: %+v", id, s)
		}
		if d, err := w.recorder.Get(ctx, id); err != nil || d.LastEvent != "adopted" || d.Session.State != st {
			t.Errorf("durable record of %s: %+v, %v", id, d, err)
		}
	}
	if s, _ := w.store.Get(ctx, adoptRunning.ID); s.UserID != "erin" {
		t.Errorf("adopted owner: %q", s.UserID)
	}
	// The volumes are still there, the half-gone workspace scaled to zero for its backup.
	if !w.observe(t, withVolume).Has("PersistentVolumeClaim") || !w.observe(t, halfGone.ID).Has("PersistentVolumeClaim") {
		t.Fatal("a volume was removed before its backup")
	}
	if o := w.observe(t, halfGone.ID); o.DesiredReplicas != 0 {
		t.Errorf("half-gone workspace at %d replicas during its backup", o.DesiredReplicas)
	}
	eventually(t, 10*time.Second, "volume-less set gone", func() (bool, error) { return !w.observe(t, noVolume).Exists(), nil })

	// Later runs: pending while the backup runs, removed once it succeeded — and at that
	// moment the backup had succeeded.
	removed := map[string]bool{}
	eventually(t, 60*time.Second, "orphaned volumes removed after their backups", func() (bool, error) {
		rep := w.reconcile(t, Options{})
		for _, it := range rep.Removed {
			b, err := w.cluster.BackupStatus(ctx, it.ID, OrphanBackupAttempt)
			if err != nil {
				return false, err
			}
			// DeleteWorkspace removes finished backup Jobs with the volume: missing is fine, a
			// running or failed one is not.
			if b.Phase == session.BackupRunning || b.Phase == session.BackupFailed {
				t.Errorf("%s removed while its backup is %s", it.ID, b.Phase)
			}
			removed[it.ID] = true
		}
		return removed[withVolume] && removed[halfGone.ID], nil
	})
	for _, id := range []string{withVolume, halfGone.ID} {
		d, err := w.recorder.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Session.State != session.StateDeleted || d.Session.BackupLocation == "" || d.LastEvent != "orphan_removed" {
			t.Errorf("durable record of removed %s: %+v %+v", id, d, d.Session)
		}
		eventually(t, 30*time.Second, id+" gone", func() (bool, error) { return !w.observe(t, id).Exists(), nil })
	}
	if d, _ := w.recorder.Get(ctx, withVolume); d.Session.UserID != "stray" {
		t.Errorf("owner from the annotation: %q", d.Session.UserID)
	}
}

// A volume whose backup fails is never removed; every run says so.
func TestIntegrationOrphanVolumeKeptWhenItsBackupFails(t *testing.T) {
	w := newWorld(t, func(o *kube.Options) { o.BackupPodLabels = map[string]string{"hyperbola.dev/test-fail": "true"} })
	id, _ := session.NewID()
	w.labelledPVC(t, id, time.Now().Add(-time.Hour))
	eventually(t, 30*time.Second, "claim bound", func() (bool, error) { return w.observe(t, id).PVCPhase == "Bound", nil })

	rep := w.reconcile(t, Options{})
	if len(rep.BackupsStarted) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	eventually(t, 60*time.Second, "backup failed and reported", func() (bool, error) {
		rep := w.reconcile(t, Options{})
		return len(rep.Errors) == 1 && rep.Errors[0].ID == id, nil
	})
	for range 3 {
		rep := w.reconcile(t, Options{})
		if len(rep.Removed) != 0 || len(rep.Errors) != 1 {
			t.Errorf("after a failed backup: %+v", rep)
		}
	}
	if o := w.observe(t, id); !o.Has("PersistentVolumeClaim") {
		t.Error("the volume was removed although its backup failed")
	}
	if _, err := w.recorder.Get(t.Context(), id); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("a removal was recorded: %v", err)
	}
}

func sorted(ids ...string) []string { slices.Sort(ids); return ids }
