package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/testenv"
)

// The samples of one level, per phase (create, wake): raw is start → pod Ready and raw call
// start → its applies (or scale patch) returned; hyperbola's
// total is start → Get reports running, call is start → Create or Wake returned, pod is
// start → pod Ready and gap is pod Ready → Get reports running.
const (
	rawSample = "raw"
	rawCall   = "raw call"
	rawRouted = "raw+route"
	hbTotal   = "hyperbola"
	hbCall    = "hyperbola call"
	hbPod     = "hyperbola pod"
	hbGap     = "hyperbola gap"
)

type samples struct {
	mu sync.Mutex
	d  map[string][]time.Duration // "<phase> <kind>"
	// Hyperbola's requests to the API server, its Kubernetes clients' all through the level:
	// reads (GET, list included), watches and writes.
	reads, watches, writes atomic.Int64
	trace                  io.Writer // BENCH_TRACE=1: every request of Hyperbola's and each session's times, as they happen
}

// traceTime is how trace lines print an instant: seconds and milliseconds in the minute.
const traceTime = "05.000"

// countRequests wraps the REST config's transport to count s's requests.
func (s *samples) countRequests(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			switch {
			case req.Method == http.MethodGet && req.URL.Query().Get("watch") == "true":
				s.watches.Add(1)
			case req.Method == http.MethodGet:
				s.reads.Add(1)
			default:
				s.writes.Add(1)
			}
			start := time.Now()
			resp, err := next.RoundTrip(req)
			if s.trace != nil {
				fmt.Fprintf(s.trace, "trace %s %s %s?%s took %s\n", start.Format(traceTime), req.Method, req.URL.Path, req.URL.RawQuery, time.Since(start))
			}
			return resp, err
		})
	})
	return cfg
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (s *samples) add(phase, kind string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d[phase+" "+kind] = append(s.d[phase+" "+kind], d)
}

func (s *samples) get(phase, kind string) []time.Duration { return s.d[phase+" "+kind] }

// bench holds what every level shares.
type bench struct {
	only  string // "raw" or "hyperbola": that mode alone; "" both
	turns bool   // the modes take turns (raw, hyperbola, hyperbola, raw) instead of side by side
	pairs bool   // the modes alternate in batches of c sessions within one pass (see pairedLevel)
	trace io.Writer
	env   *testenv.Env
	pods  *podWatch
	poll  time.Duration // how often a polling waiter asks the core once the pod is Ready
	await bool          // waiters ask with a wait (Service.Await) instead of polling
	wait  time.Duration // how long one session may take to become Ready (or its pod to go)
	// sessions, when above 0, is how many workspaces each mode makes at every level (-sessions)
	sessions int
	// wakeSecret, when set, turns Hyperbola's wake on access on: its ready step then switches
	// the route back from the activator (one more write than raw's)
	wakeSecret string
	// rawClient is raw's clientset: protobuf, as the core's typed clients (kube.Protobuf),
	// on the test cluster's budget
	rawClient kubernetes.Interface
}

// levelSessions is how many workspaces each mode makes at concurrency c (before -pairs rounds
// it up: pairedBatches): -sessions, or by default max(c, 20).
func (b *bench) levelSessions(c int) int {
	if b.sessions > 0 {
		return b.sessions
	}
	return max(c, 20)
}

// level runs one concurrency level: n = b.levelSessions(c) workspaces by each mode, on c workers per
// mode, in passes (see pass). By default both modes run side by side in one pass, so both meet
// the same cluster; with -turns they take turns, raw, Hyperbola, Hyperbola, raw, each pass alone
// on a quiet cluster, so neither queues behind the other's burst and the order evens out; with
// -pairs one pass alternates them in batches (pairedLevel).
func (b *bench) level(ctx context.Context, c int) (*samples, error) {
	n := b.levelSessions(c)
	s := &samples{d: map[string][]time.Duration{}, trace: b.trace}
	passes := [][]string{{modeRaw, modeHyperbola}}
	switch {
	case b.only != "":
		passes = [][]string{{b.only}}
	case b.turns:
		passes = [][]string{{modeRaw}, {modeHyperbola}, {modeHyperbola}, {modeRaw}}
	}
	for _, modes := range passes {
		if err := b.pass(ctx, c, n, s, modes); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// The modes.
const (
	modeRaw       = "raw"
	modeHyperbola = "hyperbola"
)

// pass runs n workspaces by each of modes, each mode in its own fresh namespace, on c workers
// per mode: at once, or with -pairs (both modes) alternating in batches; both namespaces are
// deleted before it returns, so the next pass starts on a quiet cluster.
func (b *bench) pass(ctx context.Context, c, n int, s *samples, modes []string) error {
	rawNS, hbNS := testenv.UniqueName("bench-raw"), testenv.UniqueName("bench")
	defer func() {
		for _, ns := range []string{rawNS, hbNS} {
			if err := deleteNamespace(context.WithoutCancel(ctx), b.env.Kube.Client, ns, 3*time.Minute); err != nil {
				slog.Warn("the next level may share the cluster with this one's leftovers", "err", err)
			}
		}
	}()
	// By hand, the route switches as Hyperbola's does (raw.route) when wake on access is on.
	rawCfg, err := namespaceConfig(rawNS, b.wakeSecret)
	if err != nil {
		return err
	}
	hbCfg, err := namespaceConfig(hbNS, b.wakeSecret)
	if err != nil {
		return err
	}
	for _, ns := range []string{rawNS, hbNS} {
		if err := b.env.Kube.CreateNamespace(ctx, ns); err != nil {
			return err
		}
	}
	if err := b.env.Kube.CreateBackupPVC(ctx, hbNS, "hyperbola-backups"); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: b.env.Redis.Addr, PoolSize: 200})
	defer rdb.Close()
	if b.trace != nil {
		rdb.AddHook(redisTrace{b.trace})
	}
	st, err := stack.New(ctx, hbCfg, stack.Parts{Redis: rdb, RESTConfig: s.countRequests(b.env.Kube.Config)}) // the deployed budgets (kube.NewClients), not the test client's
	if err != nil {
		return err
	}
	defer st.Close()
	ko, err := stack.KubeOptions(rawCfg)
	if err != nil {
		return err
	}
	r := &raw{cs: b.rawClient, opts: ko, defaults: st.Service.Options(), routes: b.wakeSecret != "", made: map[string]session.Workspace{}}
	runners := map[string]runner{
		modeRaw:       rawRunner{b: b, r: r, s: s},
		modeHyperbola: hyperbolaRunner{b: b, svc: st.Service, s: s},
	}
	if b.pairs && len(modes) == 2 {
		warm := rawRunner{b: b, r: r, s: &samples{d: map[string][]time.Duration{}}} // not kept
		return pairedLevel(ctx, runners[modeRaw], runners[modeHyperbola], warm, c, n)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, m := range modes {
		g.Go(func() error { return modeLevel(gctx, runners[m], c, n) })
	}
	return g.Wait()
}

// runner is one mode's way to create, sleep and wake one workspace; create and wake record
// their samples.
type runner interface {
	create(ctx context.Context, i int) (id string, err error)
	sleep(ctx context.Context, id string) error
	wake(ctx context.Context, id string) error
}

// modeLevel creates n workspaces on c workers, puts them all to sleep and, once their pods are
// gone, wakes them.
func modeLevel(ctx context.Context, m runner, c, n int) error {
	ids := make([]string, n)
	err := parallel(n, c, func(i int) error {
		var err error
		ids[i], err = m.create(ctx, i)
		return err
	})
	if err != nil {
		return err
	}
	if err := parallel(n, c, func(i int) error { return m.sleep(ctx, ids[i]) }); err != nil {
		return err
	}
	return parallel(n, c, func(i int) error { return m.wake(ctx, ids[i]) })
}

// pairedLevel is modeLevel for raw and Hyperbola together, in batches of c workspaces that
// alternate, raw, Hyperbola, Hyperbola, raw, raw, ..., each batch alone: the two modes' samples
// are seconds apart on the same cluster instead of a pass apart (-turns), so what drifts
// between passes (the API server's and etcd's state, the shared machine) weighs on both alike.
// n rounds up to whole pairs of batches: four batches a mode at least, and 100 sessions.
//
// A batch of warm-up workspaces (by warm, its samples not kept) goes first in each phase.
// The batch that opens a phase meets a cluster with nothing of its own to finish, where every
// later one meets the last batch's status updates and endpoints still in flight: at c=10 and
// c=100, with two batches a mode and no warm-up, the mode that opened went up to 50% faster,
// whichever it was.
func pairedLevel(ctx context.Context, rawM, hb, warm runner, c, n int) error {
	batches := pairedBatches(c, n)
	modes := [2]runner{rawM, hb}
	ids := [2][]string{make([]string, batches*c), make([]string, batches*c)}
	warmIDs := make([]string, c)
	// inTurn runs the warm-up batch's phase (warmPhase(i)), then phase(j, i) for workspace i of
	// mode j, batch by batch, the modes in turn.
	inTurn := func(warmPhase func(i int) error, phase func(j, i int) error) error {
		if err := parallel(c, c, warmPhase); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		for k := range batches {
			order := [2]int{0, 1}
			if k%2 == 1 {
				order = [2]int{1, 0}
			}
			for _, j := range order {
				if err := parallel(c, c, func(i int) error { return phase(j, k*c+i) }); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := inTurn(func(i int) error {
		var err error
		warmIDs[i], err = warm.create(ctx, i)
		return err
	}, func(j, i int) error {
		var err error
		ids[j][i], err = modes[j].create(ctx, i)
		return err
	})
	if err != nil {
		return err
	}
	if err := parallel(c, c, func(i int) error { return warm.sleep(ctx, warmIDs[i]) }); err != nil {
		return err
	}
	for j, m := range modes {
		if err := parallel(len(ids[j]), c, func(i int) error { return m.sleep(ctx, ids[j][i]) }); err != nil {
			return err
		}
	}
	return inTurn(func(i int) error { return warm.wake(ctx, warmIDs[i]) },
		func(j, i int) error { return modes[j].wake(ctx, ids[j][i]) })
}

// pairedBatches is how many batches of c sessions each mode makes at a -pairs level of n:
// four at least, and a hundred sessions where batches are small (a batch's samples move
// together: at c=10 one batch's p50 ranged 125-248 ms within a run), an even number.
func pairedBatches(c, n int) int {
	b := max(4, (n+c-1)/c, 100/c)
	return b + b%2
}

// namespaceConfig is the deployment's configuration in namespace ns: the defaults, with the
// client budgets (HYPERBOLA_KUBE_*) and the readiness interval taken from the environment, so
// a run can try other ones. A wake secret turns wake on access on (the default activator
// Service: the route of a workspace that does not run goes to it, and back when it runs).
func namespaceConfig(ns, wakeSecret string) (*config.Config, error) {
	return config.FromLookup(func(k string) (string, bool) {
		if strings.HasPrefix(k, "HYPERBOLA_KUBE_") || k == "HYPERBOLA_READINESS_INTERVAL" {
			return os.LookupEnv(k)
		}
		v, ok := map[string]string{"HYPERBOLA_NAMESPACE": ns, "HYPERBOLA_REDIS_PREFIX": ns + ":", "HYPERBOLA_WAKE_SECRET": wakeSecret}[k]
		return v, ok && v != ""
	})
}

func user(i int) string { return fmt.Sprintf("bench-%d@example.com", i) }

// rawRunner makes workspaces by hand; Ready is the pod watch's.
type rawRunner struct {
	b *bench
	r *raw
	s *samples
}

func (m rawRunner) create(ctx context.Context, i int) (string, error) {
	ws, err := m.r.workspace(user(i))
	if err != nil {
		return "", err
	}
	start := time.Now()
	if err := m.r.create(ctx, ws); err != nil {
		return "", err
	}
	m.s.add("create", rawCall, time.Since(start))
	return ws.ID, m.ready(ctx, "create", ws.ID, start)
}

func (m rawRunner) sleep(ctx context.Context, id string) error {
	if err := m.r.scale(ctx, id, 0); err != nil {
		return err
	}
	if err := m.r.route(ctx, id, true); err != nil {
		return err
	}
	return m.b.podGone(ctx, id)
}

func (m rawRunner) wake(ctx context.Context, id string) error {
	start := time.Now()
	if err := m.r.scale(ctx, id, 1); err != nil {
		return err
	}
	m.s.add("wake", rawCall, time.Since(start))
	return m.ready(ctx, "wake", id, start)
}

// ready stamps the pod Ready, then, with wake on access, switches the route back to the
// workspace and records start → that switch's end (rawRouted): the floor of the same work as
// Hyperbola's ready step.
func (m rawRunner) ready(ctx context.Context, phase, id string, start time.Time) error {
	if err := m.b.stampReady(ctx, m.s, phase, id, start); err != nil {
		return err
	}
	if !m.r.routes {
		return nil
	}
	if err := m.r.route(ctx, id, false); err != nil {
		return err
	}
	m.s.add(phase, rawRouted, time.Since(start))
	return nil
}

// stampReady records start → the pod watch saw session id's pod Ready, for raw.
func (b *bench) stampReady(ctx context.Context, s *samples, phase, id string, start time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	at, err := b.pods.readyAfter(ctx, id, start)
	if err != nil {
		return fmt.Errorf("raw %s: %w", phase, err)
	}
	s.add(phase, rawSample, at.Sub(start))
	if s.trace != nil {
		fmt.Fprintf(s.trace, "trace raw %s %s start %s podready %s\n", phase, id, start.Format(traceTime), at.Format(traceTime))
	}
	return nil
}

func (b *bench) podGone(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	return b.pods.gone(ctx, id)
}

// hyperbolaRunner makes sessions through the core; a session is Ready when the core reports
// it running.
type hyperbolaRunner struct {
	b   *bench
	svc *session.Service
	s   *samples
}

func (m hyperbolaRunner) create(ctx context.Context, i int) (string, error) {
	start := time.Now()
	sess, err := m.svc.Create(ctx, session.CreateRequest{UserID: user(i)})
	if err != nil {
		return "", err
	}
	m.s.add("create", hbCall, time.Since(start))
	return sess.ID, m.b.awaitRunning(ctx, m.svc, m.s, "create", sess.ID, start)
}

func (m hyperbolaRunner) sleep(ctx context.Context, id string) error {
	if _, err := m.svc.Sleep(ctx, id); err != nil {
		return err
	}
	return m.b.podGone(ctx, id)
}

func (m hyperbolaRunner) wake(ctx context.Context, id string) error {
	start := time.Now()
	if _, err := m.svc.Wake(ctx, id); err != nil {
		return err
	}
	m.s.add("wake", hbCall, time.Since(start))
	return m.b.awaitRunning(ctx, m.svc, m.s, "wake", id, start)
}

// awaitRunning asks the core for session id until it reports running, and records the times.
// The waiter is a client that knows when to ask: once a second until the pod watch sees the
// pod Ready, then every b.poll. A client that asked blindly every few milliseconds would load
// the cluster with its own reads (at c=100, thousands a second) and measure its interval.
//
// With -await (the default) the waiter is a client of the status route's wait instead: it asks
// once with session.MaxAwait and again only if that passes, as the provider and the waking
// page do, and needs no hint from the watch.
func (b *bench) awaitRunning(ctx context.Context, svc *session.Service, s *samples, phase, id string, start time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	for {
		var sess *session.Session
		var err error
		if b.await {
			sess, err = svc.Await(ctx, id, session.MaxAwait)
		} else {
			sess, err = svc.Get(ctx, id)
		}
		if err != nil {
			return err
		}
		switch sess.State {
		case session.StateRunning:
			running := time.Now()
			pod, err := b.pods.readyAfter(ctx, id, start) // the watch may lag the core's own read
			if err != nil {
				return err
			}
			if s.trace != nil {
				fmt.Fprintf(s.trace, "trace hyperbola %s %s start %s podready %s running %s\n", phase, id,
					start.Format(traceTime), pod.Format(traceTime), running.Format(traceTime))
			}
			s.add(phase, hbTotal, running.Sub(start))
			s.add(phase, hbPod, pod.Sub(start))
			s.add(phase, hbGap, running.Sub(pod))
			return nil
		case session.StateFailed:
			return fmt.Errorf("session %s failed: %s", id, sess.Reason)
		}
		if b.await {
			continue
		}
		if _, ok := b.pods.readySince(id, start); ok {
			t := time.NewTimer(b.poll)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("session %s not running: %w", id, context.Cause(ctx))
			case <-t.C:
			}
			continue
		}
		tctx, tcancel := context.WithTimeout(ctx, time.Second)
		_, _ = b.pods.readyAfter(tctx, id, start)
		tcancel()
		if ctx.Err() != nil {
			return fmt.Errorf("session %s not running: %w", id, context.Cause(ctx))
		}
	}
}

// parallel runs fn(0..n-1) on c workers and returns the first error.
func parallel(n, c int, fn func(i int) error) error {
	next := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

// deleteNamespace deletes ns and waits (up to timeout) until it is gone, from a watch.
func deleteNamespace(ctx context.Context, cs kubernetes.Interface, ns string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nss := cs.CoreV1().Namespaces()
	if err := nss.Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting namespace %s: %w", ns, err)
	}
	for {
		got, err := nss.Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		w, err := nss.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", ns).String(),
			ResourceVersion: got.ResourceVersion,
		})
		if err != nil {
			return fmt.Errorf("watching namespace %s: %w", ns, err)
		}
		for ev := range w.ResultChan() {
			if _, ok := ev.Object.(*corev1.Namespace); ok && ev.Type == watch.Deleted {
				w.Stop()
				return nil
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			return fmt.Errorf("namespace %s still there after %s: %w", ns, timeout, context.Cause(ctx))
		}
	}
}
