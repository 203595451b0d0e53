package faults_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// The load's shape. The real sessions run real code-server on real volumes (never more than
// four pods at once: each session's steps run one after the other, and its backup starts only
// once its pod is gone); the others run on kwok's fake nodes.
const (
	loadRealSessions = 4
	loadKwokSessions = 16
	loadOps          = 100
	loadKwokWorkers  = 4
	// loadMaxSweeps bounds the convergence after the load.
	loadMaxSweeps = 15
	// loadPatience bounds every wait: far above what a step takes on a loaded 2-core machine, so
	// it only ends a run that would otherwise hang.
	loadPatience = 4 * time.Minute

	// lockTTL is the session locks' TTL, far below the default minute, so that the stalls
	// and outages push transitions past their deadline (three quarters of it) and the
	// fencing of record writes by the lock is exercised, not only its happy path.
	loadLockTTL = 10 * time.Second

	loadRealBackupPVC = "hyperbola-backups"
	loadKwokBackupPVC = "hyperbola-backups-kwok"
	loadDomain        = "ws.example.test"
)

// loadRealScripts are the steps of the real sessions, one script each: "write" writes a new tree
// when the session is running. Their ends cover every final state with data: deleted with a
// backup after a sleep and a wake, running, deleted right away, sleeping.
var loadRealScripts = [loadRealSessions][]string{
	{"create", "write", "sleep", "wake", "write", "delete"},
	{"create", "write", "sleep", "wake", "write"},
	{"create", "write", "delete"},
	{"create", "write", "sleep"},
}

// loadPlane is one control plane on its own Redis prefix: the real sessions' (workspaces and
// backups on the real node) or the kwok sessions'. Its Service's client goes through the
// fault proxy; direct reads the cluster without it, for the checks.
type loadPlane struct {
	name   string
	opts   kube.Options
	svc    *session.Service
	store  *store.Store
	direct *kube.Cluster
	sweep  *sweep.Sweeper
}

// loadSession is one session of the load, as the test knows it.
type loadSession struct {
	n     int
	real  bool
	p     *loadPlane
	reqID string

	mu sync.Mutex // a real session's steps (and its tree writes) run one at a time
	id string     // set once a create returned it: from then on its record exists
	// last is the last tree written while the session was running, lastVersion its number
	// (0: none yet).
	last        loadTree
	lastVersion int
}

func (s *loadSession) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// loadRun is the run's bookkeeping.
type loadRun struct {
	t     *testing.T
	k     *testenv.Kube
	ns    string
	proxy *testenv.KubeProxy
	fs    *loadGate
	rec   *events.Recorder
	all   []*loadSession

	ops      atomic.Int64
	faults   atomic.Int64
	mu       sync.Mutex
	outcomes map[string]int    // "op kind" -> count
	samples  map[string]string // "op kind" -> the first such error's message
	notFound []string          // NotFound answers while the record existed
	fsCut    bool
	bg       sync.WaitGroup // the fault started in the background (the Redis restart)
}

// TestLoadWithFaults runs 100 concurrent creates, sleeps, wakes and deletes over 20 sessions
// (4 on the real node with real files, 16 on kwok) while the kube-apiserver answers ~5% of
// writes with 500 and stalls some scale and Job calls, Redis restarts once and Firestore is
// unreachable for a part of the run. Then, with no more faults, the sweep and Get drive every
// session to rest, and the test checks that each converged, never vanished, kept its files
// (by checksum, in its volume or in its backup's zip), and left no orphan behind.
func TestLoadWithFaults(t *testing.T) {
	k, ns := env.RealNodeNamespace(t) // with Nodes kwok nodes beside the real one
	ctx := context.Background()
	start := time.Now()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	// The namespace goes without waiting when the test ends: its real pods are stopped first,
	// so the next test on the real node does not share it with them.
	t.Cleanup(func() { loadStopRealPods(t, k, ns) })
	if err := k.CreateBackupPVCOn(ctx, ns, loadRealBackupPVC, k.RealNode.StorageClass); err != nil {
		t.Fatal(err)
	}
	if err := k.CreateBackupPVC(ctx, ns, loadKwokBackupPVC); err != nil {
		t.Fatal(err)
	}
	proxy, proxied := testenv.StartKubeProxy(t, k.Config)
	pcs, err := kubernetes.NewForConfig(proxied)
	if err != nil {
		t.Fatal(err)
	}

	// Durable events through a gate to the emulator, queued in Redis while it is cut.
	fsGate := loadStartGate(t, env.Firestore.Host)
	fs := loadFirestoreThrough(t, fsGate.Addr(), env.FirestoreProject(t))
	loadWarmFirestore(t, fs)
	rdb := env.Redis.Client(t)
	rec := events.New(fs, events.Options{Redis: rdb, Prefix: testenv.UniqueName("ev") + ":", Attempts: 2,
		Backoff: 50 * time.Millisecond, AttemptTimeout: 2 * time.Second, Cooldown: 10 * time.Second, Logger: log})

	node := k.RealNode
	realOpts := kube.Options{Namespace: ns, Domain: loadDomain, Port: 8080, StorageClass: node.StorageClass,
		IngressClass: "nginx", ClusterIssuer: "letsencrypt", IngressNamespace: "ingress-nginx",
		NodeSelector: node.NodeSelector(), Tolerations: []corev1.Toleration{node.Toleration()},
		BackupPVC: loadRealBackupPVC, BackupImage: node.BackupImage, BackupDeadline: 10 * time.Minute}
	kwokOpts := kube.Options{Namespace: ns, Domain: loadDomain, Port: 8080, IngressClass: "nginx",
		ClusterIssuer: "letsencrypt", IngressNamespace: "ingress-nginx",
		BackupPVC: loadKwokBackupPVC, BackupImage: node.BackupImage, BackupDeadline: 10 * time.Minute}
	mkPlane := func(name string, ko kube.Options, image string) *loadPlane {
		if err := ko.Validate(); err != nil {
			t.Fatal(err)
		}
		st := store.New(rdb, testenv.UniqueName("t-"+name)+":", store.Options{TombstoneTTL: 24 * time.Hour, Logger: log})
		svc := session.NewService(kube.NewCluster(pcs, ko), st, session.Options{Domain: loadDomain, Image: image,
			Storage: "1Gi", LockTTL: loadLockTTL, LockWait: 5 * time.Second, Recorder: rec, Logger: log})
		sw := sweep.New(sweep.Deps{Sessions: svc, Store: st, Flusher: rec, Logger: log,
			Prober: sweep.ProberFunc(func(context.Context, string) (sweep.Heartbeat, error) {
				return sweep.Heartbeat{}, errors.New("this test probes no workspace")
			})}, sweep.Options{})
		if sw.Err() != nil {
			t.Fatal(sw.Err())
		}
		return &loadPlane{name: name, opts: ko, svc: svc, store: st, direct: kube.NewCluster(k.Client, ko), sweep: sw}
	}
	realPlane := mkPlane("real", realOpts, node.WorkspaceImage)
	kwokPlane := mkPlane("kwok", kwokOpts, "")

	var all []*loadSession
	for i := range loadRealSessions + loadKwokSessions {
		s := &loadSession{n: i, real: i < loadRealSessions, p: kwokPlane, reqID: testenv.UniqueName(fmt.Sprintf("load-%d", i))}
		if s.real {
			s.p = realPlane
		}
		all = append(all, s)
	}
	l := &loadRun{t: t, k: k, ns: ns, proxy: proxy, fs: fsGate, rec: rec, all: all,
		outcomes: map[string]int{}, samples: map[string]string{}}

	// The faults of the whole load: ~5% of writes fail, and some scale and Job calls stall.
	removes := []func(){
		proxy.Add(testenv.FaultRule{Name: "write-500", Verbs: []string{"POST", "PUT", "PATCH", "DELETE"}, Status: 500, Probability: 0.05}),
		proxy.Add(testenv.FaultRule{Name: "stall-scale", PathContains: "/scale", Stall: 5 * time.Second, Every: 4, Limit: 6}),
		proxy.Add(testenv.FaultRule{Name: "stall-jobs", PathContains: "/jobs", Stall: 3 * time.Second, Every: 5, Limit: 6}),
	}

	// Every data volume that goes must go after its backup succeeded; a real one, with its
	// archive complete on the backup volume at that moment.
	guardCtx, stopGuard := context.WithCancel(ctx)
	defer stopGuard()
	guard := loadGuardVolumes(guardCtx, t, k.Client, ns, func(id string) string {
		if s := l.find(id); s == nil || !s.real {
			return ""
		}
		root, err := k.VolumeHostPath(ctx, ns, loadRealBackupPVC)
		if err != nil {
			return fmt.Sprintf("the backup volume: %v", err)
		}
		return loadArchiveProblem(filepath.Join(root, id))
	})

	// The load: the real sessions' scripts and the kwok sessions' random operations at once.
	loadStart := time.Now()
	var wg sync.WaitGroup
	for _, s := range all[:loadRealSessions] {
		wg.Go(func() { l.runScript(ctx, s, loadRealScripts[s.n], seed) })
	}
	kwok := all[loadRealSessions:]
	randomOps := loadOps - len(all)
	for _, sc := range loadRealScripts {
		randomOps -= len(sc) - 1 - strings.Count(strings.Join(sc, " "), "write")
	}
	plan := make(chan func(), randomOps+len(kwok))
	for _, s := range kwok {
		plan <- func() { l.create(ctx, s) }
	}
	kinds := []string{"sleep", "sleep", "wake", "wake", "wake", "delete"}
	for left := randomOps; left > 0; {
		s := kwok[rng.IntN(len(kwok))]
		// one in four is a pair of operations on the same session at once: they contend for
		// its lock (busy, or one after the other)
		batch := []string{kinds[rng.IntN(len(kinds))]}
		if left > 1 && rng.IntN(4) == 0 {
			batch = append(batch, kinds[rng.IntN(len(kinds))])
		}
		left -= len(batch)
		getAfter := rng.IntN(3) == 0
		plan <- func() {
			if s.ID() == "" {
				l.create(ctx, s)
			}
			var pair sync.WaitGroup
			for _, kind := range batch {
				pair.Go(func() { _ = l.op(ctx, s, kind) })
			}
			pair.Wait()
			if getAfter {
				_, _ = l.get(ctx, s)
			}
		}
	}
	close(plan)
	for w := range loadKwokWorkers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(100+w)))
			for f := range plan {
				f()
				// spread the operations over the real sessions' slower steps, so the faults
				// that follow the operation count land while those run
				loadSleep(ctx, time.Duration(500+r.IntN(2500))*time.Millisecond)
			}
		})
	}
	wg.Wait()
	l.bg.Wait()
	loadTook := time.Since(loadStart)

	// No more faults: the load is over, Redis runs, Firestore comes back.
	for _, rm := range removes {
		rm()
	}
	l.restoreFirestore()
	counts.faults.Add(int64(proxy.Total()) + l.faults.Load())
	counts.operations.Add(l.ops.Load())
	t.Logf("load: %d operations in %s; outcomes %v; faults injected by the proxy %v, other faults %d",
		l.ops.Load(), loadTook.Round(time.Millisecond), l.outcomesSnapshot(), proxy.Injected(), l.faults.Load())
	l.mu.Lock()
	for _, k := range slices.Sorted(maps.Keys(l.samples)) {
		t.Logf("  first %s: %s", k, l.samples[k])
	}
	l.mu.Unlock()

	// Convergence: sweeps (which also flush the queued events) and Gets, bounded.
	final := l.converge(ctx, all, []*loadPlane{realPlane, kwokPlane})

	// The checks.
	l.checkSessions(ctx, all, final)
	l.checkOrphans(ctx, all, []*loadPlane{realPlane, kwokPlane})
	l.checkBackupVolume(ctx)
	stopGuard()
	gone, problems, broken := guard.problems()
	switch {
	case broken != nil:
		t.Logf("the order of backups and volume removals is unknown (%v); seen: %d volumes gone, problems: %v", broken, gone, problems)
	case len(problems) > 0:
		for _, p := range problems {
			t.Errorf("a volume removed without a complete archive: %s", p)
		}
	default:
		t.Logf("%d volumes went, each after its backup succeeded (and, on the real node, with its zip complete)", gone)
	}
	l.checkEvents(ctx, all, final)
	l.mu.Lock()
	for _, nf := range l.notFound {
		t.Errorf("NotFound while the record existed: %s", nf)
	}
	l.mu.Unlock()
	t.Logf("done in %s", time.Since(start).Round(time.Millisecond))
}

// find returns the tracked session with id, nil when none has it (yet).
func (l *loadRun) find(id string) *loadSession {
	for _, s := range l.all {
		if s.ID() == id {
			return s
		}
	}
	return nil
}

// countOp counts an attempted operation and starts the faults that follow the count: Firestore
// is cut at the 15th operation and back at the 80th; Redis restarts at the 50th.
func (l *loadRun) countOp(ctx context.Context) {
	switch l.ops.Add(1) {
	case 15:
		l.cutFirestore()
	case 50:
		l.faults.Add(1)
		l.bg.Go(func() {
			l.t.Logf("fault: restarting redis (operation 50)")
			if err := env.Redis.Restart(ctx); err != nil {
				l.t.Errorf("restarting redis: %v", err)
			}
		})
	case 80:
		l.restoreFirestore()
	}
}

func (l *loadRun) cutFirestore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("fault: firestore unreachable (operation %d)", l.ops.Load())
	l.fs.Cut()
	l.fsCut = true
	l.faults.Add(1)
}

func (l *loadRun) restoreFirestore() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fsCut {
		l.t.Logf("firestore reachable again (operation %d)", l.ops.Load())
		l.fs.Restore()
		l.fsCut = false
	}
}

// note counts an operation's outcome by its error's kind; a NotFound on a session whose
// record exists is a failure, kept for the end.
func (l *loadRun) note(kind string, s *loadSession, err error) {
	outcome := "ok"
	if err != nil {
		outcome = string(session.KindOf(err))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes[kind+" "+outcome]++
	if _, ok := l.samples[kind+" "+outcome]; err != nil && !ok {
		l.samples[kind+" "+outcome] = err.Error()
	}
	if errors.Is(err, session.ErrNotFound) && s.ID() != "" {
		l.notFound = append(l.notFound, fmt.Sprintf("%s of session %s (#%d): %v", kind, s.ID(), s.n, err))
	}
}

func (l *loadRun) outcomesSnapshot() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.outcomes))
	for k, v := range l.outcomes {
		out[k] = v
	}
	return out
}

// create creates the session, retrying with the same request id (so a retry completes the
// same session, never a second one) until a call returns it; each attempt is an operation.
func (l *loadRun) create(ctx context.Context, s *loadSession) {
	for attempt := range 8 {
		l.countOp(ctx)
		got, err := s.p.svc.Create(ctx, session.CreateRequest{UserID: fmt.Sprintf("user%d@example.com", s.n), RequestID: s.reqID})
		l.note("create", s, err)
		if err == nil {
			s.mu.Lock()
			if s.id != "" && s.id != got.ID {
				l.t.Errorf("session #%d: a retried create (same request id) made %s beside %s", s.n, got.ID, s.id)
			}
			s.id = got.ID
			s.mu.Unlock()
			return
		}
		loadSleep(ctx, loadRetryWait(attempt, 3*time.Second))
	}
	l.t.Logf("session #%d: no create succeeded (the sweep's check finds any record it left)", s.n)
}

// op runs one sleep, wake or delete, counted, its error classified.
func (l *loadRun) op(ctx context.Context, s *loadSession, kind string) error {
	id := s.ID()
	if id == "" {
		return errors.New("not created")
	}
	l.countOp(ctx)
	var err error
	switch kind {
	case "sleep":
		_, err = s.p.svc.Sleep(ctx, id)
	case "wake":
		_, err = s.p.svc.Wake(ctx, id)
	case "delete":
		_, err = s.p.svc.Delete(ctx, id, session.DeleteOptions{})
	default:
		panic("unknown operation " + kind)
	}
	l.note(kind, s, err)
	return err
}

// get reads the session (driving its pending step), for the NotFound check; not an operation.
func (l *loadRun) get(ctx context.Context, s *loadSession) (*session.Session, error) {
	id := s.ID()
	if id == "" {
		return nil, errors.New("not created")
	}
	got, err := s.p.svc.Get(ctx, id)
	if errors.Is(err, session.ErrNotFound) {
		l.note("get", s, err)
	}
	return got, err
}

// runScript runs a real session's steps one after the other. An operation that fails is
// tried again (each attempt counted) a few times; after each, the session is driven with Get
// until it rests, and a "write" writes a new tree only when it rests running.
func (l *loadRun) runScript(ctx context.Context, s *loadSession, steps []string, seed uint64) {
	for _, step := range steps {
		switch step {
		case "create":
			l.create(ctx, s)
		case "write":
			l.write(ctx, s, seed)
			continue
		default:
			for attempt := range 4 {
				err := l.op(ctx, s, step)
				if err == nil || errors.Is(err, session.ErrConflict) || errors.Is(err, session.ErrNotFound) {
					break
				}
				loadSleep(ctx, loadRetryWait(attempt, 3*time.Second))
			}
		}
		l.settle(ctx, s)
	}
}

// settle drives the session with Get until it has no pending step (or the patience runs out:
// the convergence after the load carries on from there).
func (l *loadRun) settle(ctx context.Context, s *loadSession) *session.Session {
	if s.ID() == "" {
		return nil
	}
	deadline := time.Now().Add(loadPatience)
	for n := 0; time.Now().Before(deadline); n++ {
		got, err := l.get(ctx, s)
		if err == nil && got.Pending == session.PendingNone {
			return got
		}
		loadSleep(ctx, loadRetryWait(n, 2*time.Second))
	}
	l.t.Logf("session %s (#%d) still pending after %s; left to the convergence", s.ID(), s.n, loadPatience)
	return nil
}

// write writes a new tree into a running real session's volume, through its host path, and
// keeps its checksums as the tree the session must hold from now on.
func (l *loadRun) write(ctx context.Context, s *loadSession, seed uint64) {
	got := l.settle(ctx, s)
	if got == nil || got.State != session.StateRunning {
		state := "unknown"
		if got != nil {
			state = string(got.State)
		}
		l.t.Logf("session %s (#%d) is %s, not running: no tree written", s.ID(), s.n, state)
		return
	}
	dir, err := l.volumeDir(ctx, s.ID())
	if err != nil {
		l.t.Errorf("session %s: %v", s.ID(), err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.lastVersion + 1
	tr, err := loadWriteTree(dir, seed+uint64(s.n), v)
	if err != nil {
		l.t.Errorf("session %s: writing tree %d: %v", s.id, v, err)
		return
	}
	s.last, s.lastVersion = tr, v
	l.t.Logf("session %s (#%d): tree %d written (%d files, %d bytes)", s.id, s.n, v, len(tr), tr.bytes())
}

// volumeDir is the host directory of the session's data volume on the real node.
func (l *loadRun) volumeDir(ctx context.Context, id string) (string, error) {
	n, err := kube.NamesFor(id)
	if err != nil {
		return "", err
	}
	dir, err := l.k.VolumeHostPath(ctx, l.ns, n.Data)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(l.k.RealNode.VolumesDir, dir); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("the volume of %s is at %s, not under the real node's %s", id, dir, l.k.RealNode.VolumesDir)
	}
	return dir, nil
}

// converged reports whether a session is at rest: running, sleeping or deleted with nothing
// pending, or failed with a reason.
func loadAtRest(s *session.Session) bool {
	if s == nil || s.Pending != session.PendingNone {
		return false
	}
	switch s.State {
	case session.StateRunning, session.StateSleeping, session.StateDeleted:
		return true
	case session.StateFailed:
		return s.Reason != ""
	}
	return false
}

// converge runs up to loadMaxSweeps sweeps of both planes, reading every session after each, until
// all are at rest; between sweeps it waits for the namespace to change (a pod ready, a Job
// done, an object gone). It returns the last answer of each session.
func (l *loadRun) converge(ctx context.Context, all []*loadSession, planes []*loadPlane) map[*loadSession]*session.Session {
	ctx, cancel := context.WithTimeout(ctx, loadPatience)
	defer cancel()
	changed := testenv.Changes(ctx, l.t, l.k.Client, l.ns)
	final := map[*loadSession]*session.Session{}
	start := time.Now()
	for round := 1; round <= loadMaxSweeps; round++ {
		for _, p := range planes {
			r, err := p.sweep.Run(ctx)
			if err != nil {
				l.t.Logf("sweep %d (%s): %v", round, p.name, err)
			} else if r.Errors > 0 || r.Advanced > 0 || r.FlushedEvents > 0 {
				l.t.Logf("sweep %d (%s): pending %d, advanced %d, errors %d, events flushed %d",
					round, p.name, r.Pending, r.Advanced, r.Errors, r.FlushedEvents)
			}
		}
		resting := 0
		for _, s := range all {
			if s.ID() == "" {
				continue
			}
			got, err := l.get(ctx, s)
			if err != nil {
				l.t.Logf("round %d: get %s: %v", round, s.ID(), err)
				continue
			}
			final[s] = got
			if loadAtRest(got) {
				resting++
			}
		}
		l.t.Logf("convergence round %d: %d of %d sessions at rest (%s)", round, resting, len(all), time.Since(start).Round(time.Millisecond))
		if resting == len(all) {
			return final
		}
		// wait for something to change, then let the burst of changes settle a moment
		select {
		case <-ctx.Done():
			l.t.Errorf("convergence: out of loadPatience (%s) after %d sweeps", loadPatience, round)
			return final
		case <-changed:
		case <-time.After(10 * time.Second):
		}
		loadSleep(ctx, time.Second)
	}
	return final
}

// checkSessions checks every session at rest: converged, its objects (all six alive, none
// deleted), and for the real ones their files: in the volume while it lives, in the backup's
// zip once deleted.
func (l *loadRun) checkSessions(ctx context.Context, all []*loadSession, final map[*loadSession]*session.Session) {
	t := l.t
	var lostTotal int64
	for _, s := range all {
		id := s.ID()
		if id == "" {
			t.Errorf("session #%d: never created in %d attempts", s.n, 8)
			continue
		}
		got := final[s]
		if !loadAtRest(got) {
			t.Errorf("session %s (#%d) did not converge: %+v", id, s.n, got)
			continue
		}
		counts.converged.Add(1)
		obs, err := s.p.direct.Observe(ctx, id)
		if err != nil {
			t.Errorf("observing %s: %v", id, err)
			continue
		}
		if got.State == session.StateDeleted {
			if obs.Exists() {
				t.Errorf("deleted session %s (#%d) left objects behind: %v", id, s.n, obs.Kinds)
			}
			if got.BackupLocation == "" {
				t.Errorf("deleted session %s (#%d) has no backup: its volume went without an archive", id, s.n)
			}
		} else if !obs.Complete {
			t.Errorf("%s session %s (#%d) lacks objects: has %v", got.State, id, s.n, obs.Kinds)
		}
		if s.real {
			lostTotal += l.checkFiles(ctx, s, got)
		}
	}
	counts.bytesLost.Add(lostTotal)
	if lostTotal != 0 {
		t.Errorf("%d bytes lost", lostTotal)
	}
}

// checkFiles compares a real session's last written tree with its volume (alive) or with its
// backup's zip (deleted), and returns the bytes lost.
func (l *loadRun) checkFiles(ctx context.Context, s *loadSession, got *session.Session) int64 {
	t := l.t
	s.mu.Lock()
	want, version := s.last, s.lastVersion
	s.mu.Unlock()
	if want == nil {
		want = loadTree{}
	}
	var where, dir string
	switch got.State {
	case session.StateDeleted:
		rel, ok := strings.CutPrefix(got.BackupLocation, "pvc://"+loadRealBackupPVC+"/")
		if !ok {
			t.Errorf("session %s: backup location %q is not on %s", s.id, got.BackupLocation, loadRealBackupPVC)
			return want.bytes()
		}
		root, err := l.k.VolumeHostPath(ctx, l.ns, loadRealBackupPVC)
		if err != nil {
			t.Errorf("session %s: the backup volume: %v", s.id, err)
			return want.bytes()
		}
		out, err := loadUnzip(t, filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Errorf("session %s: its backup does not extract: %v", s.id, err)
			return want.bytes()
		}
		where, dir = "the zip "+got.BackupLocation, filepath.Join(out, loadTreeDir)
	default:
		root, err := l.volumeDir(ctx, s.id)
		if err != nil {
			t.Errorf("%s session %s: its volume: %v (a volume removed without an archive?)", got.State, s.id, err)
			return want.bytes()
		}
		where, dir = "its volume", filepath.Join(root, loadTreeDir)
	}
	have, err := loadReadTree(dir)
	if err != nil {
		t.Errorf("session %s: reading %s: %v", s.id, where, err)
		return want.bytes()
	}
	counts.files.Add(int64(len(want)))
	lost, diffs := loadCompareTrees(want, have)
	if len(diffs) > 0 {
		t.Errorf("%s session %s (#%d): %s differs from tree %d (%d bytes lost):\n%s",
			got.State, s.id, s.n, where, version, lost, strings.Join(diffs, "\n"))
	} else {
		t.Logf("%s session %s (#%d): %s holds tree %d: %d files, %d bytes", got.State, s.id, s.n, where, version, len(want), want.bytes())
	}
	return lost
}

// checkOrphans checks that the cluster holds objects only of live sessions the test knows,
// and that the stores hold no record it does not know.
func (l *loadRun) checkOrphans(ctx context.Context, all []*loadSession, planes []*loadPlane) {
	t := l.t
	known := map[string]bool{}
	for _, s := range all {
		if id := s.ID(); id != "" {
			known[id] = true
		}
	}
	observed, err := planes[0].direct.ObserveAll(ctx)
	if err != nil {
		t.Errorf("observing every session: %v", err)
	}
	for _, o := range observed {
		if !known[o.ID] {
			t.Errorf("orphaned objects of an unknown session %s: %v", o.ID, o.Kinds)
		}
	}
	for _, p := range planes {
		cursor := ""
		for {
			page, err := p.store.List(ctx, session.ListOptions{Limit: 100, Cursor: cursor})
			if err != nil {
				t.Errorf("listing the %s store: %v", p.name, err)
				break
			}
			for _, r := range page.Sessions {
				if !known[r.ID] {
					t.Errorf("a record the test never got back from a create: %s (%s, %s)", r.ID, r.State, r.Pending)
				}
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
	}
}

// checkBackupVolume checks that no backup left its temporary files on the real backup volume.
func (l *loadRun) checkBackupVolume(ctx context.Context) {
	t := l.t
	pvc, err := l.k.Client.CoreV1().PersistentVolumeClaims(l.ns).Get(ctx, loadRealBackupPVC, metav1.GetOptions{})
	if err != nil || pvc.Spec.VolumeName == "" {
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("the backup claim: %v", err)
		}
		return // never bound: nothing was ever written to it
	}
	root, err := l.k.VolumeHostPath(ctx, l.ns, loadRealBackupPVC)
	if err != nil {
		t.Errorf("the backup volume: %v", err)
		return
	}
	var leftovers []string
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".partial-") || (strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp"))) {
			leftovers = append(leftovers, strings.TrimPrefix(path, root+"/"))
		}
		return nil
	})
	if err != nil {
		t.Errorf("walking the backup volume: %v", err)
	}
	sort.Strings(leftovers)
	if len(leftovers) > 0 {
		t.Errorf("temporary files left on the backup volume: %v", leftovers)
	}
}

// checkEvents checks that the events queued while Firestore was unreachable were all written
// once it came back, and reports durable records that disagree with the store (an event that
// found both Firestore and Redis down is lost to the queue: a reconcile repairs the record).
func (l *loadRun) checkEvents(ctx context.Context, all []*loadSession, final map[*loadSession]*session.Session) {
	t := l.t
	// The Firestore client reconnects after its own backoff (gRPC's, up to two minutes after
	// a long outage): flush until the queue is empty, within the patience.
	start := time.Now()
	var info *events.PendingInfo
	var lastErr error
	for n := 0; ; n++ {
		_, lastErr = l.rec.Flush(ctx)
		var err error
		if info, err = l.rec.Pending(ctx); err != nil {
			lastErr = err
		} else if info.Events == 0 {
			break
		}
		if time.Since(start) > loadPatience {
			break
		}
		loadSleep(ctx, loadRetryWait(n, 5*time.Second))
	}
	switch {
	case info == nil:
		t.Errorf("reading the event queue: %v", lastErr)
	case info.Events > 0 || info.Dead > 0:
		t.Errorf("events left %s after Firestore came back: %d queued, %d dead (last error: %v)",
			time.Since(start).Round(time.Second), info.Events, info.Dead, lastErr)
	default:
		t.Logf("event queue empty %s after the load", time.Since(start).Round(time.Millisecond))
	}
	behind := 0
	for _, s := range all {
		got := final[s]
		if got == nil {
			continue
		}
		durable, err := l.rec.Session(ctx, got.ID)
		if err != nil {
			behind++
			t.Logf("durable record of %s: %v", got.ID, err)
			continue
		}
		if durable.State != got.State {
			behind++
			t.Logf("durable record of %s says %s, the store %s", got.ID, durable.State, got.State)
		}
	}
	t.Logf("durable records: %d of %d agree with the store", len(final)-behind, len(final))
}

// loadStopRealPods deletes the namespace's Deployments and Jobs and waits (within the patience)
// until none of its pods is left on the real node.
func loadStopRealPods(t *testing.T, k *testenv.Kube, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), loadPatience)
	defer cancel()
	bg := metav1.DeletePropagationBackground
	del := metav1.DeleteOptions{PropagationPolicy: &bg}
	if err := k.Client.AppsV1().Deployments(ns).DeleteCollection(ctx, del, metav1.ListOptions{}); err != nil {
		t.Logf("stopping the real pods: %v", err)
	}
	if err := k.Client.BatchV1().Jobs(ns).DeleteCollection(ctx, del, metav1.ListOptions{}); err != nil {
		t.Logf("stopping the real pods: %v", err)
	}
	changed := testenv.Changes(ctx, t, k.Client, ns)
	for {
		pods, err := k.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + k.RealNode.NodeName})
		if err == nil && len(pods.Items) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Logf("real pods still there after %s: %v", loadPatience, err)
			return
		case <-changed:
		case <-time.After(5 * time.Second):
		}
	}
}
