package kube

import (
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
// fallen between the two); a pod's change reaches only its own session's waiters.
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
	current().Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ws", Labels: map[string]string{LabelSession: "bbbb2222"}}})
	select {
	case <-b:
	case <-time.After(time.Minute):
		t.Fatal("b was not told of its pod")
	}
	select { // b's pod was handled before b was told
	case <-a:
		t.Fatal("a was told of b's pod")
	default:
	}
}
