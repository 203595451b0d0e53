package kube

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// A watch the API server ends is started again, and every waiter is told (a change may have
// fallen between the two); a pod's change reaches only its own session's waiters, and only when
// it is one they need (turned Ready, shows a problem other than a claim still binding, or
// gone); what the watch saw Ready is forgotten when it starts again or when its session's last
// waiter leaves.
func TestPodWatchStartsAgainAndTellsEveryone(t *testing.T) {
	cs := fake.NewClientset()
	var mu sync.Mutex
	var watchers []*watch.FakeWatcher
	started := make(chan struct{}, 4)
	cs.PrependWatchReactor("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		mu.Lock()
		defer mu.Unlock()
		w := watch.NewFake()
		watchers = append(watchers, w)
		started <- struct{}{}
		return true, w, nil
	})
	pw := newPodWatch(cs, "ws")
	pw.retry = time.Millisecond
	a, stopA, err := pw.subscribe(t.Context(), "aaaa1111")
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	b, stopB, err := pw.subscribe(t.Context(), "bbbb2222")
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	<-started
	current := func() *watch.FakeWatcher {
		mu.Lock()
		defer mu.Unlock()
		return watchers[len(watchers)-1]
	}
	current().Stop() // the server ends the watch
	<-started
	for name, ch := range map[string]<-chan struct{}{"a": a, "b": b} {
		select {
		case <-ch:
		case <-time.After(time.Minute):
			t.Fatalf("%s was not told the watch started again", name)
		}
	}
	pod := func(ready bool, stamp string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ws",
			Labels: map[string]string{LabelSession: "bbbb2222"}, Annotations: map[string]string{AnnotationTemplate: stamp}}}
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		return p
	}
	told := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		case <-time.After(time.Minute):
			return false
		}
	}
	// quiet: nothing came within a moment (a slow machine can only make it pass, never fail).
	quiet := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return false
		case <-time.After(100 * time.Millisecond):
			return true
		}
	}
	current().Add(pod(false, "t1")) // a new pod, not ready: nothing a waiter needs
	if !quiet(b) {
		t.Error("b was told of a pod that is not ready and shows no problem")
	}
	unschedulable := func(why string) *corev1.Pod {
		p := pod(false, "t1")
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, Message: why}}
		return p
	}
	current().Modify(unschedulable("0/1 nodes are available: " + unboundClaim + ". preemption: not eligible"))
	if !quiet(b) {
		t.Error("b was told its new pod waits for its claim to bind (a moment at every create)")
	}
	current().Modify(unschedulable("0/1 nodes are available: 1 Insufficient cpu."))
	if !told(b) {
		t.Fatal("b was not told its pod cannot be scheduled")
	}
	current().Modify(pod(true, "t1"))
	if !told(b) {
		t.Fatal("b was not told its pod turned Ready")
	}
	if !quiet(a) {
		t.Fatal("a was told of b's pod")
	}
	if !pw.seenReady("bbbb2222", "t1") || pw.seenReady("bbbb2222", "t2") || pw.seenReady("aaaa1111", "t1") {
		t.Fatal("seenReady: want b's pod of template t1 alone")
	}
	current().Delete(pod(true, "t1"))
	if !told(b) || pw.seenReady("bbbb2222", "t1") {
		t.Fatal("b's pod went: b is told and it is no longer seen Ready")
	}
	current().Modify(pod(true, "t1"))
	told(b)
	current().Stop() // the watch starts again: what it saw may be stale
	<-started
	if !told(b) || pw.seenReady("bbbb2222", "t1") {
		t.Fatal("after the watch started again, what it saw before still counts")
	}
	stopB()
	pw.mu.Lock()
	_, ok := pw.ready["bbbb2222"]
	pw.mu.Unlock()
	if ok {
		t.Error("b's last waiter left, and what the watch saw of b stays")
	}
}

// A watch its last waiter ended may still be delivering, or forgetting, when the next waiter
// starts a new one: it changes nothing of what the new watch knows (seeded from its list).
func TestPodWatchEndedLeavesTheNextAlone(t *testing.T) {
	ready := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ws",
		Labels: map[string]string{LabelManagedBy: ManagedByValue, LabelName: NameValue, LabelComponent: ComponentWorkspace,
			LabelSession: "aaaa1111"}, Annotations: map[string]string{AnnotationTemplate: "t1"}}}
	ready.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	pw := newPodWatch(fake.NewClientset(ready), "ws")
	_, stop, err := pw.subscribe(t.Context(), "aaaa1111")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !pw.seenReady("aaaa1111", "t1") {
		t.Fatal("the list the watch began with showed the pod Ready; the watch does not say so")
	}
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	notReady := ready.DeepCopy()
	notReady.Status.Conditions = nil
	pw.saw(ended, watch.Modified, notReady)
	pw.forget(ended)
	if !pw.seenReady("aaaa1111", "t1") {
		t.Fatal("an ended watch's last event or its forgetting changed what the running watch saw")
	}
}
