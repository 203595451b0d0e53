package kube

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

var _ session.PodWatcher = (*Cluster)(nil)

// WatchPods tells a waiting caller (session.Service.Await) when session id's workspace pods
// change, so it reads the session again then instead of on a timer: a pod that turns Ready is
// seen as soon as a watch of the API server delivers it. Every waiter of a Cluster shares one
// watch of the namespace's workspace pods. The first waiter starts it and the last to stop
// ends it: it runs only while requests wait, so no goroutine outlives them (the serverless
// rule). changed receives (a buffer of one) after each change of id's pods, and after the
// watch had to start again, when changes may have been missed.
func (c *Cluster) WatchPods(ctx context.Context, id string) (changed <-chan struct{}, stop func(), err error) {
	if err := session.CheckID(id); err != nil {
		return nil, nil, err
	}
	return c.pods.subscribe(ctx, id)
}

// podWatch is the watch WatchPods shares.
type podWatch struct {
	rd    kubernetes.Interface
	ns    string
	retry time.Duration // the pause before the watch starts again after it failed

	mu     sync.Mutex
	subs   map[string]map[chan struct{}]struct{} // the waiters' channels, by session id
	cancel context.CancelFunc                    // ends the running watch; nil when none runs
}

func newPodWatch(rd kubernetes.Interface, ns string) *podWatch {
	return &podWatch{rd: rd, ns: ns, retry: time.Second, subs: map[string]map[chan struct{}]struct{}{}}
}

// workspacePodSelector selects every session's workspace pods.
var workspacePodSelector = labels.SelectorFromSet(labels.Set{
	LabelManagedBy: ManagedByValue, LabelName: NameValue, LabelComponent: ComponentWorkspace,
}).String()

// subscribe adds a waiter for id, starting the watch when none runs. It returns once the watch
// is established, so every change after the return is signalled.
func (w *podWatch) subscribe(ctx context.Context, id string) (<-chan struct{}, func(), error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel == nil {
		// The watch serves every waiter, not this caller alone: it keeps ctx's values, not
		// its end.
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		wi, err := w.start(ctx, wctx)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		w.cancel = cancel
		go w.run(wctx, wi)
	}
	ch := make(chan struct{}, 1)
	if w.subs[id] == nil {
		w.subs[id] = map[chan struct{}]struct{}{}
	}
	w.subs[id][ch] = struct{}{}
	var once sync.Once
	return ch, func() { once.Do(func() { w.unsubscribe(id, ch) }) }, nil
}

func (w *podWatch) unsubscribe(id string, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.subs[id], ch)
	if len(w.subs[id]) == 0 {
		delete(w.subs, id)
	}
	if len(w.subs) == 0 && w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
}

// start opens a watch of the workspace pods from now: the resourceVersion of a list of one
// item, so the watch sends changes only, not every pod there is. call bounds the requests;
// the watch itself lives as long as wctx.
func (w *podWatch) start(call, wctx context.Context) (watch.Interface, error) {
	l, err := w.rd.CoreV1().Pods(w.ns).List(call, metav1.ListOptions{LabelSelector: workspacePodSelector, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("kube: listing workspace pods to watch them: %w", err)
	}
	wi, err := w.rd.CoreV1().Pods(w.ns).Watch(wctx, metav1.ListOptions{LabelSelector: workspacePodSelector,
		ResourceVersion: l.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		return nil, fmt.Errorf("kube: watching workspace pods: %w", err)
	}
	return wi, nil
}

// run signals the waiters of each changed pod until wctx ends. A watch that ends by itself
// (the API server closes watches after a while, or the resourceVersion expired) is started
// again, and every waiter is signalled, since a change may have fallen between the two.
func (w *podWatch) run(wctx context.Context, wi watch.Interface) {
	for {
		for ev := range wi.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Bookmark {
				w.signal(p.Labels[LabelSession])
			}
		}
		wi.Stop()
		for {
			if wctx.Err() != nil {
				return
			}
			var err error
			if wi, err = w.start(wctx, wctx); err == nil {
				break
			}
			slog.WarnContext(wctx, "the pod watch could not start again; its waiters read at their own pace meanwhile", "namespace", w.ns, "err", err)
			select {
			case <-wctx.Done():
				return
			case <-time.After(w.retry):
			}
		}
		w.signal("")
	}
}

// signal tells the waiters of session id ("": every waiter) that its pods changed.
func (w *podWatch) signal(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for sid, chans := range w.subs {
		if id != "" && sid != id {
			continue
		}
		for ch := range chans {
			select {
			case ch <- struct{}{}:
			default: // one pending signal says it all
			}
		}
	}
}
