package kube

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

const testInterval = 100 * time.Millisecond

// roundsCluster is a Cluster on a fake clientset whose readiness rounds keep the time of clk.
func roundsCluster(t *testing.T) (*Cluster, *fake.Clientset, *testingclock.FakeClock) {
	t.Helper()
	cs := fake.NewClientset()
	c := NewCluster(cs, testOptions())
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c.rounds = newReadinessRounds(testInterval, clk, c.readinessRound)
	return c, cs, clk
}

// seed creates session id's workspace Deployment (rolled out, one replica) and its pod, Ready
// or not.
func seed(t *testing.T, cs *fake.Clientset, id string, ready bool) {
	t.Helper()
	ctx := context.Background()
	ns := testOptions().Namespace
	l, err := Labels(id, ComponentWorkspace, nil)
	if err != nil {
		t.Fatal(err)
	}
	readyReplicas := int32(0)
	podReady := corev1.ConditionFalse
	if ready {
		podReady = corev1.ConditionTrue
	}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "vs-code-" + id, Namespace: ns, Labels: l},
		Spec:   appsv1.DeploymentSpec{Replicas: ptr.To[int32](1)},
		Status: appsv1.DeploymentStatus{UpdatedReplicas: 1, ReadyReplicas: readyReplicas}}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "vs-code-" + id + "-abc", Namespace: ns, Labels: l},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: podReady}}}}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func ids(t *testing.T, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		id, err := session.NewID()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = id
	}
	return out
}

// lists returns the list actions cs has seen on resource, in order.
func lists(cs *fake.Clientset, resource string) []k8stesting.ListActionImpl {
	var out []k8stesting.ListActionImpl
	for _, a := range cs.Actions() {
		if l, ok := a.(k8stesting.ListActionImpl); ok && a.GetResource().Resource == resource {
			out = append(out, l)
		}
	}
	return out
}

// waiting is how many callers wait in the pending round.
func (b *readinessRounds) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	if b.pending != nil {
		for _, k := range b.pending.ids {
			n += k
		}
	}
	return n
}

// waitFor waits until cond holds, checking it as often as the scheduler lets it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type answer struct {
	obs *session.Observed
	err error
}

// ask calls Readiness for each id at once, each in a goroutine; the answers arrive on the
// returned channels, in ids' order.
func ask(ctx context.Context, c *Cluster, ids ...string) []chan answer {
	out := make([]chan answer, len(ids))
	for i, id := range ids {
		out[i] = make(chan answer, 1)
		go func() {
			obs, err := c.Readiness(ctx, id)
			out[i] <- answer{obs, err}
		}()
	}
	return out
}

// Fifty concurrent callers (ready, not ready, and one with no workspace at all) are answered
// by one round of two lists, each exactly as a read of its own would answer it.
func TestReadinessRoundsCoalesceCallers(t *testing.T) {
	c, cs, clk := roundsCluster(t)
	ctx := context.Background()
	all := ids(t, 51)
	for i, id := range all[:50] {
		seed(t, cs, id, i%2 == 0)
	}
	// A lone caller is answered at once, by a round of its own.
	if obs, err := c.Readiness(ctx, all[0]); err != nil || !obs.Ready {
		t.Fatalf("first call: %+v %v", obs, err)
	}
	if d, p := len(lists(cs, "deployments")), len(lists(cs, "pods")); d != 1 || p != 1 {
		t.Fatalf("first round: %d Deployment and %d pod lists, want 1 and 1", d, p)
	}
	// Those arriving within the interval wait for the next round, together.
	answers := ask(ctx, c, all...)
	waitFor(t, "every caller joined", func() bool { return c.rounds.waiting() == len(all) })
	clk.Step(testInterval)
	got := map[string]*session.Observed{}
	for i, ch := range answers {
		a := <-ch
		if a.err != nil {
			t.Fatalf("%s: %v", all[i], a.err)
		}
		got[all[i]] = a.obs
	}
	deps, pods := lists(cs, "deployments"), lists(cs, "pods")
	if len(deps) != 2 || len(pods) != 2 {
		t.Fatalf("%d Deployment and %d pod lists, want 2 and 2", len(deps), len(pods))
	}
	sel := deps[1].GetListRestrictions().Labels.String()
	if !strings.Contains(sel, LabelSession+" in (") || !strings.Contains(sel, LabelComponent+"="+ComponentWorkspace) {
		t.Errorf("selector %q: want the workspace component and a set of sessions", sel)
	}
	for _, id := range all {
		want, err := c.readinessDirect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[id], want) {
			t.Errorf("%s: round answered %+v, a read of its own %+v", id, got[id], want)
		}
	}
	if got[all[50]].Exists() || !got[all[0]].Ready || got[all[1]].Ready || got[all[1]].Pods != 1 {
		t.Errorf("answers: missing %+v, ready %+v, not ready %+v", got[all[50]], got[all[0]], got[all[1]])
	}
}

// A caller that joins while a round's lists are under way is not answered by that round (it
// read the cluster before the call) but by the next, which sees what changed meanwhile.
func TestReadinessRoundsAnswerOnlyCallersThatJoinedBefore(t *testing.T) {
	c, cs, clk := roundsCluster(t)
	ctx := context.Background()
	id := ids(t, 1)[0]
	seed(t, cs, id, false)
	listed, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	// The first round reads, then is held (the fake clientset holds its lock in a reactor).
	c.rounds = newReadinessRounds(testInterval, clk, func(ctx context.Context, ids []string) (map[string]*session.Observed, error) {
		out, err := c.readinessRound(ctx, ids)
		once.Do(func() { close(listed); <-release })
		return out, err
	})
	first := ask(ctx, c, id)[0]
	<-listed
	// The pod becomes Ready after the first round read the Deployment, before the second caller.
	ns := testOptions().Namespace
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, "vs-code-"+id+"-abc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Conditions[0].Status = corev1.ConditionTrue
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	second := ask(ctx, c, id)[0]
	waitFor(t, "the second caller joined", func() bool { return c.rounds.waiting() == 1 })
	close(release)
	if a := <-first; a.err != nil || a.obs.Ready {
		t.Fatalf("first caller: %+v %v, want not ready (its round read before the pod was)", a.obs, a.err)
	}
	select {
	case a := <-second:
		t.Fatalf("the second caller was answered by the round under way when it came: %+v %v", a.obs, a.err)
	default:
	}
	clk.Step(testInterval)
	if a := <-second; a.err != nil || !a.obs.Ready {
		t.Fatalf("second caller: %+v %v, want ready", a.obs, a.err)
	}
	if d := len(lists(cs, "deployments")); d != 2 {
		t.Errorf("%d Deployment lists, want 2 (a round each)", d)
	}
}

// A waiting caller whose context ends leaves with its error; the others are answered, and
// the round lists only the sessions still asked for.
func TestReadinessRoundsWaiterCancelled(t *testing.T) {
	c, cs, clk := roundsCluster(t)
	ctx := context.Background()
	s := ids(t, 3)
	for _, id := range s {
		seed(t, cs, id, true)
	}
	if _, err := c.Readiness(ctx, s[0]); err != nil { // the rounds' clock starts
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	leaving := ask(gone, c, s[1])[0]
	staying := ask(ctx, c, s[2])[0]
	waitFor(t, "both joined", func() bool { return c.rounds.waiting() == 2 })
	cancel()
	if a := <-leaving; !errors.Is(a.err, context.Canceled) || a.obs != nil {
		t.Fatalf("cancelled caller: %+v %v, want context.Canceled", a.obs, a.err)
	}
	clk.Step(testInterval)
	if a := <-staying; a.err != nil || !a.obs.Ready {
		t.Fatalf("other caller: %+v %v", a.obs, a.err)
	}
	deps := lists(cs, "deployments")
	if sel := deps[len(deps)-1].GetListRestrictions().Labels.String(); strings.Contains(sel, s[1]) || !strings.Contains(sel, s[2]) {
		t.Errorf("the round's selector %q: want %s and not the cancelled %s", sel, s[2], s[1])
	}
}

type caller struct{}

// When the caller running a round gives up mid-read, another of the round's callers runs it
// again and every remaining caller is answered.
func TestReadinessRoundsRunnerCancelled(t *testing.T) {
	c, cs, clk := roundsCluster(t)
	ctx := context.Background()
	s := ids(t, 3)
	for _, id := range s {
		seed(t, cs, id, true)
	}
	runners := make(chan string, 4)
	release := make(chan struct{})
	var reads int
	c.rounds = newReadinessRounds(testInterval, clk, func(ctx context.Context, ids []string) (map[string]*session.Observed, error) {
		reads++
		if reads == 2 { // the round both callers joined: hold it until its runner is cancelled
			runners <- ctx.Value(caller{}).(string)
			<-release
			if ctx.Err() != nil {
				return nil, fmt.Errorf("listing: %w", ctx.Err())
			}
		}
		return c.readinessRound(ctx, ids)
	})
	if _, err := c.Readiness(context.WithValue(ctx, caller{}, "primer"), s[0]); err != nil {
		t.Fatal(err)
	}
	ctxs, cancels := map[string]context.Context{}, map[string]context.CancelFunc{}
	for _, name := range []string{s[1], s[2]} {
		ctxs[name], cancels[name] = context.WithCancel(context.WithValue(ctx, caller{}, name))
	}
	answers := map[string]chan answer{s[1]: ask(ctxs[s[1]], c, s[1])[0], s[2]: ask(ctxs[s[2]], c, s[2])[0]}
	waitFor(t, "both joined", func() bool { return c.rounds.waiting() == 2 })
	clk.Step(testInterval)
	runner := <-runners
	other := s[1]
	if runner == s[1] {
		other = s[2]
	}
	cancels[runner]()
	close(release)
	if a := <-answers[runner]; !errors.Is(a.err, context.Canceled) {
		t.Fatalf("the cancelled runner: %+v %v, want context.Canceled", a.obs, a.err)
	}
	clk.Step(testInterval) // the round runs again no sooner than the interval after its start
	if a := <-answers[other]; a.err != nil || !a.obs.Ready || a.obs.ID != other {
		t.Fatalf("the other caller: %+v %v", a.obs, a.err)
	}
	if reads != 3 {
		t.Errorf("%d reads, want 3 (the first, the abandoned one, its rerun)", reads)
	}
	for _, cancel := range cancels {
		cancel()
	}
}

// A round that fails gives its error to every caller, as the cluster adapter's errors are
// (an unavailable API server is session.KindUnavailable), naming none of the sessions: each
// caller may learn only of its own.
func TestReadinessRoundsErrorReachesEveryCaller(t *testing.T) {
	c, cs, clk := roundsCluster(t)
	ctx := context.Background()
	s := ids(t, 2)
	for _, id := range s {
		seed(t, cs, id, true)
	}
	if _, err := c.Readiness(ctx, s[0]); err != nil {
		t.Fatal(err)
	}
	cs.PrependReactor("list", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewInternalError(errors.New("etcd is away"))
	})
	answers := ask(ctx, c, s...)
	waitFor(t, "both joined", func() bool { return c.rounds.waiting() == 2 })
	clk.Step(testInterval)
	for _, ch := range answers {
		a := <-ch
		if a.obs != nil || !apierrors.IsInternalError(a.err) || session.KindOf(a.err) != session.KindUnavailable {
			t.Fatalf("answer %+v %v: want the API server's error, KindUnavailable", a.obs, a.err)
		}
		var se *session.Error
		if !errors.As(a.err, &se) || strings.Contains(se.Message, s[0]) || strings.Contains(se.Message, s[1]) {
			t.Errorf("message %q names a session", se.Message)
		}
	}
	if p := len(lists(cs, "pods")); p > 2 {
		t.Errorf("%d pod lists, want at most 2 (one a round)", p)
	}
}

// A round of many sessions lists them a hundred ids a selector, their Deployments and their
// pods at once (so pods of every id asked, with or without a Deployment).
func TestReadinessRoundChunks(t *testing.T) {
	c, cs, _ := roundsCluster(t)
	ctx := context.Background()
	s := ids(t, 250)
	for i, id := range s {
		if i%2 == 0 {
			seed(t, cs, id, i%4 == 0)
		}
	}
	got, err := c.readinessRound(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	deps, pods := lists(cs, "deployments"), lists(cs, "pods")
	if len(deps) != 3 || len(pods) != 3 {
		t.Errorf("%d Deployment and %d pod lists, want 3 and 3", len(deps), len(pods))
	}
	for _, l := range append(deps, pods...) {
		if n := strings.Count(l.GetListRestrictions().Labels.String(), ","); n > readinessChunk+3 {
			t.Errorf("a selector of %d terms", n)
		}
	}
	for i, id := range s {
		obs := got[id]
		switch {
		case obs == nil || obs.ID != id:
			t.Fatalf("%s: %+v", id, obs)
		case i%2 == 1 && obs.Exists():
			t.Errorf("%s has no Deployment: %+v", id, obs)
		case i%2 == 0 && (obs.Ready != (i%4 == 0) || obs.Pods != 1):
			t.Errorf("%s: %+v", id, obs)
		}
	}
}

// With a negative interval every call reads for itself: a GET and a list.
func TestReadinessDirectWhenOff(t *testing.T) {
	cs := fake.NewClientset()
	o := testOptions()
	o.ReadinessInterval = -1
	c := NewCluster(cs, o)
	if c.rounds != nil {
		t.Fatal("rounds with a negative interval")
	}
	id := ids(t, 1)[0]
	seed(t, cs, id, true)
	cs.ClearActions()
	if obs, err := c.Readiness(context.Background(), id); err != nil || !obs.Ready {
		t.Fatalf("%+v %v", obs, err)
	}
	var verbs []string
	for _, a := range cs.Actions() {
		verbs = append(verbs, a.GetVerb()+" "+a.GetResource().Resource)
	}
	if want := []string{"get deployments", "list pods"}; !reflect.DeepEqual(verbs, want) {
		t.Errorf("calls %v, want %v", verbs, want)
	}
}
