package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/store"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

var env *testenv.Env

// The cluster has the real node beside kwok's: the pod-IP probe's test runs the real
// code-server there (podprobe_integration_test.go); every other test's workspaces stay on the
// fake nodes, probed through stand-ins.
func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Cluster: true, Redis: true, RealNodeOnDemand: true})
}

// fixture is one test's control plane: its own namespace and Redis prefix on the package's
// cluster and redis-server, a controlled clock, and code-server stand-ins (real HTTP servers
// on 127.0.0.1) that the probes reach through the production URL template: only the name
// resolution is the test's, as cluster DNS would resolve vs-code-<id>.<ns>.svc.cluster.local.
type fixture struct {
	t      *testing.T
	ns     string
	kube   *testenv.Kube
	port   int32  // code-server's
	prefix string // of the Redis keys
	clk    *clock
	stack  *plane
	svc    *session.Service
	log    *slog.Logger

	mu     sync.Mutex
	routes map[string]string // host:port of a workspace → a stand-in's address
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	k, ns := env.Namespace(t)
	return newFixtureIn(t, k, ns)
}

// newFixtureIn is newFixture in namespace ns of cluster k (the real node's, for a test that
// needs a real code-server).
func newFixtureIn(t *testing.T, k *testenv.Kube, ns string) *fixture {
	t.Helper()
	_, prefix := env.RedisFor(t)
	ctx := context.Background()
	if err := k.CreateBackupPVC(ctx, ns, "hyperbola-backups"); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ns: ns, kube: k, port: 8080, prefix: prefix, routes: map[string]string{},
		clk: testenv.NewClock(time.Now().UTC().Truncate(time.Millisecond)),
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	f.stack = f.instance()
	f.svc = f.stack.Service
	return f
}

// plane is one control plane instance: the session core on the cluster adapter and the store.
type plane struct {
	Service *session.Service
	Store   *store.Store
	Cluster *kube.Cluster
}

// instance builds another control plane instance on the same namespace, Redis keys and clock,
// with the configuration's defaults (internal/stack builds the same parts in production).
func (f *fixture) instance() *plane { return f.instanceWith(nil) }

// instanceWith is instance with other settings of the cluster adapter and the Service (e.g.
// the real node's placement and image).
func (f *fixture) instanceWith(settings func(*kube.Options, *session.Options)) *plane {
	f.t.Helper()
	ko := kube.Options{Namespace: f.ns, Domain: domain, Port: f.port, IngressClass: "nginx", ClusterIssuer: "letsencrypt",
		IngressNamespace: "ingress-nginx",
		BackupPVC:        "hyperbola-backups", BackupImage: "localhost/hyperbola-backup:1",
		BackupDeadline: 30 * time.Minute}
	so := session.Options{Domain: domain, Now: f.clk.Now, Logger: f.log}
	if settings != nil {
		settings(&ko, &so)
	}
	if err := ko.Validate(); err != nil {
		f.t.Fatal(err)
	}
	st := store.New(env.Redis.Client(f.t), f.prefix, store.Options{TombstoneTTL: 24 * time.Hour, Now: f.clk.Now, Logger: f.log})
	cluster := kube.NewClusterWithMetadata(f.kube.Client, f.kube.Metadata(f.t), ko)
	return &plane{Service: session.NewService(cluster, st, so), Store: st, Cluster: cluster}
}

// domain is the workspaces' domain in these tests.
const domain = "ws.example.test"

// sweeper is the sweep on st as internal/stack builds it (the in-cluster probe URL), with
// the stand-ins' resolver.
func (f *fixture) sweeper(st *plane, opts sweep.Options) *sweep.Sweeper {
	f.t.Helper()
	base := sweep.Options{Namespace: f.ns, Port: f.port, Domain: domain}
	base.ProbeTimeout, base.Concurrency = opts.ProbeTimeout, opts.Concurrency
	p, err := sweep.NewHTTPProber(sweep.ProbeOptions{URLTemplate: sweep.DefaultProbeURL, Namespace: base.Namespace,
		Port: base.Port, Domain: base.Domain, DialContext: f.dial})
	if err != nil {
		f.t.Fatal(err)
	}
	s := sweep.New(sweep.Deps{Sessions: st.Service, Store: st.Store, Prober: p, Now: st.Service.Options().Now, Logger: f.log}, base)
	if s.Err() != nil {
		f.t.Fatal(s.Err())
	}
	return s
}

func (f *fixture) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	to, ok := f.routes[addr]
	f.mu.Unlock()
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, to)
}

// standIn is a code-server stand-in for session id: it answers /healthz with h.
type standIn struct {
	calls atomic.Int64
	beat  atomic.Int64 // lastHeartbeat, ms
}

func (f *fixture) standIn(id string, h func(s *standIn, w http.ResponseWriter, r *http.Request)) *standIn {
	f.t.Helper()
	s := &standIn{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if r.URL.RequestURI() != "/healthz" {
			http.NotFound(w, r)
			return
		}
		h(s, w, r)
	}))
	f.t.Cleanup(srv.Close)
	f.route(id, srv.Listener.Addr().String())
	return s
}

func (f *fixture) route(id, addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[fmt.Sprintf("vs-code-%s.%s.svc.cluster.local:%d", id, f.ns, f.port)] = addr
}

// heartbeat answers like code-server: the stand-in's lastHeartbeat.
func heartbeat(s *standIn, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"status":"expired","lastHeartbeat":%d}`, s.beat.Load())
}

func (f *fixture) create(user string) string {
	f.t.Helper()
	s, err := f.svc.Create(context.Background(), session.CreateRequest{UserID: user})
	if err != nil {
		f.t.Fatal(err)
	}
	return s.ID
}

// waitState polls Get (which drives pending steps) until the session is in want.
func (f *fixture) waitState(id string, want session.State) *session.Session {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last *session.Session
	for time.Now().Before(deadline) {
		s, err := f.svc.Get(context.Background(), id)
		if err != nil {
			f.t.Fatalf("get %s: %v", id, err)
		}
		if last = s; s.State == want && s.Pending == session.PendingNone {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("session %s: want %s, still %s (pending %q, reason %q)", id, want, last.State, last.Pending, last.Reason)
	return nil
}

// record reads the stored record without driving anything.
func (f *fixture) record(id string) *session.Session {
	f.t.Helper()
	s, err := f.stack.Store.Get(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) replicas(id string) int32 {
	f.t.Helper()
	d, err := f.kube.Client.AppsV1().Deployments(f.ns).Get(context.Background(), "vs-code-"+id, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// post runs a sweep through the HTTP handler, as Cloud Scheduler would.
func post(t *testing.T, h http.Handler, key string) *sweep.Report {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/sweep", nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var rep sweep.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /sweep: %d %v", resp.StatusCode, err)
	}
	return &rep
}

func run(t *testing.T, s *sweep.Sweeper) *sweep.Report {
	t.Helper()
	rep, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestIntegrationSweepSleepsTheIdleAndKeepsTheActive(t *testing.T) {
	f := newFixture(t)
	active, idle, pinged := f.create("ada@example.com"), f.create("grace@example.com"), f.create("linus@example.com")
	for _, id := range []string{active, idle, pinged} {
		f.waitState(id, session.StateRunning)
	}
	created := f.clk.Now()
	f.clk.Add(16 * time.Minute) // past the 15m idle timeout by API activity, for all three
	now := f.clk.Now()
	if _, err := f.svc.Touch(context.Background(), pinged); err != nil { // a client's activity ping
		t.Fatal(err)
	}
	tab := f.standIn(active, heartbeat) // an open tab: code-server beat 30s ago
	tab.beat.Store(now.Add(-30 * time.Second).UnixMilli())
	quiet := f.standIn(idle, heartbeat) // nobody since the pod started: lastHeartbeat 0
	ping := f.standIn(pinged, heartbeat)

	auth, err := sweep.NewAuth(sweep.AuthOptions{APIKeys: []string{"sweep-key"}, Logger: f.log})
	if err != nil {
		t.Fatal(err)
	}
	h := sweep.Handler(f.sweeper(f.stack, sweep.Options{}), auth)
	rep := post(t, h, "sweep-key")
	t.Logf("report %+v", rep)
	if rep.Skipped || rep.Candidates != 2 || rep.Probed != 2 || rep.Slept != 1 || rep.KeptActive != 1 ||
		rep.ProbeErrors != 0 || rep.Errors != 0 {
		t.Fatalf("report %+v", rep)
	}
	if quiet.calls.Load() != 1 || tab.calls.Load() != 1 || ping.calls.Load() != 0 {
		t.Fatalf("probes: idle %d, active %d, pinged %d (a session with recent activity is not a candidate)",
			quiet.calls.Load(), tab.calls.Load(), ping.calls.Load())
	}

	if s := f.record(idle); s.State != session.StateSleeping || f.replicas(idle) != 0 {
		t.Fatalf("idle workspace: %s with %d replicas, want sleeping with 0", s.State, f.replicas(idle))
	}
	a := f.record(active)
	if a.State != session.StateRunning || f.replicas(active) != 1 {
		t.Fatalf("active workspace: %s with %d replicas", a.State, f.replicas(active))
	}
	if !a.LastActivity.Before(now.Add(-time.Minute)) {
		t.Fatalf("the heartbeat was recorded as activity: %s (created %s): an open tab is not use", a.LastActivity, created)
	}
	if s := f.record(pinged); s.State != session.StateRunning {
		t.Fatalf("pinged workspace: %s", s.State)
	}

	// the next minute: the open tab deferred the active one's deadline, nothing is due
	f.clk.Add(time.Minute)
	if rep := run(t, f.sweeper(f.stack, sweep.Options{})); rep.Candidates != 0 || rep.Slept != 0 {
		t.Fatalf("second sweep %+v", rep)
	}
	// the tab is still open 15 minutes later: code-server keeps beating, the workspace stays
	f.clk.Add(15 * time.Minute)
	tab.beat.Store(f.clk.Now().Add(-20 * time.Second).UnixMilli())
	if rep := run(t, f.sweeper(f.stack, sweep.Options{})); rep.KeptActive != 1 || rep.Slept != 1 {
		// the pinged one (no heartbeat, no ping for 16m) sleeps now
		t.Fatalf("third sweep %+v", rep)
	}
	if f.record(active).State != session.StateRunning || f.record(pinged).State != session.StateSleeping {
		t.Fatalf("after the third sweep: active %s, pinged %s", f.record(active).State, f.record(pinged).State)
	}
}

// A tab left open without use (code-server beating every minute) keeps a workspace awake for
// its idle_connected_max from its last real use, and not a minute longer; use reported in the
// meantime starts the cap again. On the real store: the deferred deadline is the index's.
func TestIntegrationSweepConnectedCap(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	hour := session.Duration(time.Hour)
	s, err := f.svc.Create(ctx, session.CreateRequest{UserID: "ada@example.com", IdleConnectedMax: &hour})
	if err != nil {
		t.Fatal(err)
	}
	f.waitState(s.ID, session.StateRunning)
	tab := f.standIn(s.ID, heartbeat)
	used := f.record(s.ID).LastActivity
	sw := f.sweeper(f.stack, sweep.Options{})
	probes := func() int64 { return tab.calls.Load() }
	for _, step := range []struct {
		at     time.Duration // since the last use
		kept   bool
		probed bool
	}{
		{16 * time.Minute, true, true},  // past the idle timeout, the tab open: kept, deferred
		{17 * time.Minute, true, false}, // not due again yet
		{59 * time.Minute, true, true},  // due again (heartbeat + 15m), still under the cap
		{60 * time.Minute, false, true}, // the cap: asleep with the tab open
	} {
		f.clk.Set(used.Add(step.at))
		tab.beat.Store(f.clk.Now().Add(-30 * time.Second).UnixMilli())
		before := probes()
		rep := run(t, sw)
		if got := f.record(s.ID).State; (got == session.StateRunning) != step.kept || (probes() > before) != step.probed {
			t.Fatalf("at +%s: %s, probed %v; report %+v", step.at, got, probes() > before, rep)
		}
		if !step.kept && (rep.Slept != 1 || rep.SleptConnected != 1) {
			t.Fatalf("at the cap: report %+v", rep)
		}
	}
	if got := f.record(s.ID).LastActivity; !got.Equal(used) {
		t.Fatalf("the open tab moved the last activity to %s (last use %s)", got, used)
	}
}

func TestIntegrationSweepFailingProbesNeverSleep(t *testing.T) {
	f := newFixture(t)
	ids := map[string]string{}
	for _, kind := range []string{"500", "json", "timeout", "refused", "nohost"} {
		ids[kind] = f.create(kind + "@example.com")
	}
	for _, id := range ids {
		f.waitState(id, session.StateRunning)
	}
	f.standIn(ids["500"], func(_ *standIn, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "internal error", http.StatusInternalServerError)
	})
	f.standIn(ids["json"], func(_ *standIn, w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"alive","lastHeartbeat":`)) // cut short
	})
	f.standIn(ids["timeout"], func(_ *standIn, w http.ResponseWriter, r *http.Request) {
		select { // hangs past the probe timeout
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	f.route(ids["refused"], closed.Listener.Addr().String())
	closed.Close() // nothing listens there any more: connection refused
	// ids["nohost"] has no route at all: the name does not resolve

	f.clk.Add(time.Hour)
	s := f.sweeper(f.stack, sweep.Options{ProbeTimeout: 300 * time.Millisecond})
	want := map[string]int{sweep.ReasonStatus: 1, sweep.ReasonBadResponse: 1, sweep.ReasonTimeout: 1,
		sweep.ReasonRefused: 1, sweep.ReasonUnreachable: 1}
	check := func(name string, rep *sweep.Report) {
		t.Helper()
		t.Logf("%s: %+v", name, rep)
		if rep.Candidates != 5 || rep.Probed != 5 || rep.ProbeErrors != 5 || rep.Slept != 0 || rep.Errors != 0 {
			t.Fatalf("%s: %+v", name, rep)
		}
		if fmt.Sprint(rep.ProbeErrorsBy) != fmt.Sprint(want) {
			t.Fatalf("%s: probe errors by reason %v, want %v", name, rep.ProbeErrorsBy, want)
		}
	}
	check("first sweep", run(t, s))
	// a failed probe moves the idle deadline (not the activity) by the probe backoff: the
	// next sweeps leave these workspaces alone, awake
	f.clk.Add(time.Minute)
	if rep := run(t, s); rep.Candidates != 0 || rep.Probed != 0 || rep.Slept != 0 {
		t.Fatalf("sweep within the backoff: %+v", rep)
	}
	for _, id := range ids {
		if s := f.record(id); !s.LastActivity.Before(f.clk.Now().Add(-time.Hour)) {
			t.Fatalf("a failed probe must not count as activity: %s", s.LastActivity)
		}
	}
	// after the backoff they are probed again, fail again, and still never sleep
	f.clk.Add(s.Options().ProbeBackoff)
	check("sweep after the backoff", run(t, s))
	for kind, id := range ids {
		if s := f.record(id); s.State != session.StateRunning || f.replicas(id) != 1 {
			t.Errorf("%s probe: workspace %s with %d replicas, want running with 1", kind, s.State, f.replicas(id))
		}
	}
}

func TestIntegrationSweepDeletesExpiredWithBackupAndDrivesPendingSteps(t *testing.T) {
	f := newFixture(t)
	old := f.create("old@example.com")
	f.waitState(old, session.StateRunning)
	f.clk.Add(24*time.Hour + time.Minute) // past SESSION_TTL (24h)
	fresh := f.create("new@example.com")  // creating, its pod not ready yet: a pending step
	never := f.standIn(old, heartbeat)

	s := f.sweeper(f.stack, sweep.Options{})
	rep := run(t, s)
	t.Logf("first sweep %+v", rep)
	if rep.Expired != 1 || rep.Deleted != 1 || rep.Errors != 0 {
		t.Fatalf("first sweep %+v", rep)
	}
	if never.calls.Load() != 0 {
		t.Fatal("an expired session was probed instead of deleted")
	}
	// only sweeps from now on: no request touches either session
	deadline := time.Now().Add(90 * time.Second)
	advanced := rep.Advanced
	for {
		o, n := f.record(old), f.record(fresh)
		if o.State == session.StateDeleted && n.State == session.StateRunning && n.Pending == session.PendingNone {
			if o.BackupLocation == "" {
				t.Fatalf("deleted without a backup location: %+v", o)
			}
			t.Logf("expired session deleted, backup at %s; %d pending steps advanced", o.BackupLocation, advanced)
			break
		}
		if time.Now().After(deadline) {
			f.dump(old)
			t.Fatalf("sweeps did not finish: expired %s/%q (%s), new %s/%q", o.State, o.Pending, o.Reason, n.State, n.Pending)
		}
		time.Sleep(100 * time.Millisecond)
		rep := run(t, s)
		if rep.Errors != 0 {
			t.Fatalf("sweep %+v", rep)
		}
		advanced += rep.Advanced
	}
	if advanced == 0 {
		t.Fatal("no pending step was advanced by the sweeps")
	}
	sel := metav1.ListOptions{LabelSelector: "hyperbola.dev/session=" + old}
	if pvcs, err := f.kube.Client.CoreV1().PersistentVolumeClaims(f.ns).List(context.Background(), sel); err != nil || len(pvcs.Items) != 0 {
		t.Fatalf("the expired session's volume is still there: %v %v", pvcs, err)
	}
	if deps, err := f.kube.Client.AppsV1().Deployments(f.ns).List(context.Background(), sel); err != nil || len(deps.Items) != 0 {
		t.Fatalf("the expired session's deployment is still there: %v", err)
	}
}

func TestIntegrationTwoSweepsAtOnceActOnce(t *testing.T) {
	f := newFixture(t)
	id := f.create("once@example.com")
	f.waitState(id, session.StateRunning)
	f.clk.Add(time.Hour)
	stand := f.standIn(id, func(s *standIn, w http.ResponseWriter, r *http.Request) {
		time.Sleep(500 * time.Millisecond) // hold the first sweep while the second starts
		heartbeat(s, w, r)
	})
	sweepers := []*sweep.Sweeper{f.sweeper(f.stack, sweep.Options{}), f.sweeper(f.instance(), sweep.Options{})}
	reports := make([]*sweep.Report, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range sweepers {
		wg.Go(func() {
			<-start
			reports[i], errs[i] = s.Run(context.Background())
		})
	}
	close(start)
	wg.Wait()
	skipped, slept := 0, 0
	for i, rep := range reports {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Logf("instance %d: %+v", i, rep)
		if rep.Skipped {
			skipped++
		}
		slept += rep.Slept
	}
	if skipped != 1 || slept != 1 || stand.calls.Load() != 1 {
		t.Fatalf("%d skipped, %d slept, %d probes: want one sweep to act and one to skip", skipped, slept, stand.calls.Load())
	}
	if s := f.record(id); s.State != session.StateSleeping {
		t.Fatalf("state %s", s.State)
	}
	// the lease is released: the next sweep runs
	if rep := run(t, sweepers[1]); rep.Skipped {
		t.Fatal("the lease was not released")
	}
}

// dump logs what the cluster still holds for session id.
func (f *fixture) dump(id string) {
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: "hyperbola.dev/session=" + id}
	cs := f.kube.Client
	if l, err := cs.CoreV1().PersistentVolumeClaims(f.ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			f.t.Logf("PVC %s deleting=%v finalizers=%v phase=%s", o.Name, o.DeletionTimestamp, o.Finalizers, o.Status.Phase)
		}
	}
	if l, err := cs.AppsV1().Deployments(f.ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			f.t.Logf("Deployment %s deleting=%v finalizers=%v", o.Name, o.DeletionTimestamp, o.Finalizers)
		}
	}
	if l, err := cs.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, o := range l.Items {
			f.t.Logf("Pod %s labels=%v deleting=%v finalizers=%v phase=%s", o.Name, o.Labels, o.DeletionTimestamp, o.Finalizers, o.Status.Phase)
		}
	}
	if l, err := cs.CoreV1().Secrets(f.ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			f.t.Logf("Secret %s deleting=%v", o.Name, o.DeletionTimestamp)
		}
	}
	if l, err := cs.CoreV1().Services(f.ns).List(ctx, sel); err == nil {
		for _, o := range l.Items {
			f.t.Logf("Service %s deleting=%v", o.Name, o.DeletionTimestamp)
		}
	}
	if l, err := cs.BatchV1().Jobs(f.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, o := range l.Items {
			f.t.Logf("Job %s labels=%v conditions=%v", o.Name, o.Labels, o.Status.Conditions)
		}
	}
}
