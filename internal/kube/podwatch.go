package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
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
// change in a way a waiter needs to know of, so it reads the session again then instead of on a
// timer: a pod that turns Ready, shows a problem (podProblem) or goes is seen as soon as a
// watch of the API server delivers it. Every waiter of a Cluster shares one watch of the
// namespace's workspace pods. The first waiter starts it and the last to stop ends it: it runs
// only while requests wait, so no goroutine outlives them (the serverless rule). changed
// receives (a buffer of one) after each such change of id's pods, and after the watch had to
// start again, when changes may have been missed.
func (c *Cluster) WatchPods(ctx context.Context, id string) (changed <-chan struct{}, stop func(), err error) {
	if err := session.CheckID(id); err != nil {
		return nil, nil, err
	}
	return c.pods.subscribe(ctx, id)
}

// WatchedReady reports whether the pod watch has seen a pod of ws's current pod template
// (its AnnotationTemplate stamp, as ws builds it now) turn Ready, since ws's session got a
// waiter, and not go or turn unready since. It is the readiness a round would read
// (workspaceReady's stamped pod), known without a request: a waiting session that its watch
// saw ready is running at once. False when nobody waits on the session, or when the watch had
// to start again since.
func (c *Cluster) WatchedReady(ws session.Workspace) bool {
	w, err := resolve(ws, c.opts)
	if err != nil {
		return false
	}
	stamp := deployment(w, c.opts).Spec.Template.Annotations[AnnotationTemplate]
	return stamp != "" && c.pods.seenReady(ws.ID, stamp)
}

// WatchedStarting reports whether the pod watch knows session id's pods to be starting still:
// the watch began with a list of that session's pods (its waiter was the watch's first), which
// showed none Ready and none in trouble, and nothing about them has been signalled since. A
// read of the cluster would find just that, so the waiter's first read can wait for the watch.
func (c *Cluster) WatchedStarting(id string) bool { return c.pods.knownStarting(id) }

// podWatch is the watch WatchPods shares.
type podWatch struct {
	rd    kubernetes.Interface
	ns    string
	retry time.Duration // the pause before the watch starts again after it failed

	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{} // the waiters' channels, by session id
	// ready holds, by session id (of those with waiters), the pods the watch saw Ready since:
	// pod name → its template stamp.
	ready map[string]map[string]string
	// starting holds the sessions whose pods the watch's first list showed none Ready and none
	// in trouble, until anything about them is signalled (WatchedStarting).
	starting map[string]bool
	cancel   context.CancelFunc // ends the running watch; nil when none runs
}

func newPodWatch(rd kubernetes.Interface, ns string) *podWatch {
	return &podWatch{rd: rd, ns: ns, retry: time.Second,
		subs: map[string]map[chan struct{}]struct{}{}, ready: map[string]map[string]string{}, starting: map[string]bool{}}
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
		wi, pods, err := w.start(ctx, wctx, id)
		if err != nil {
			cancel()
			return nil, nil, err
		}
		w.cancel = cancel
		w.listed(id, pods)
		go w.run(wctx, wi, id)
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
		delete(w.ready, id)
		delete(w.starting, id)
	}
	if len(w.subs) == 0 && w.cancel != nil {
		w.cancel()
		w.cancel = nil
	}
}

// start opens a watch of the workspace pods from now: the resourceVersion of a list of the
// pods of session id alone (none, or one or two, returned too), so the watch sends changes
// only, not every pod there is. With no resourceVersion the list is a consistent read, which
// the API server answers from its watch cache (ConsistentListFromCache, with or without a
// limit); it needs no limit, a session has a pod or two. call bounds the requests; the watch
// itself lives as long as wctx.
func (w *podWatch) start(call, wctx context.Context, id string) (watch.Interface, []corev1.Pod, error) {
	sel, err := ComponentSelector(id, ComponentWorkspace)
	if err != nil {
		return nil, nil, err
	}
	l, err := w.rd.CoreV1().Pods(w.ns).List(call, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, nil, fmt.Errorf("kube: listing workspace pods to watch them: %w", err)
	}
	wi, err := w.rd.CoreV1().Pods(w.ns).Watch(wctx, metav1.ListOptions{LabelSelector: workspacePodSelector,
		ResourceVersion: l.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		return nil, nil, fmt.Errorf("kube: watching workspace pods: %w", err)
	}
	return wi, l.Items, nil
}

// listed takes in the list the watch started from, of session id's pods: the watch follows
// them from there, so those Ready count as seen Ready, and with none Ready and none in
// trouble the session is known to be starting. w.mu is held.
func (w *podWatch) listed(id string, pods []corev1.Pod) {
	trouble := false
	for i := range pods {
		p := &pods[i]
		if podReady(*p) {
			if w.ready[id] == nil {
				w.ready[id] = map[string]string{}
			}
			w.ready[id][p.Name] = p.Annotations[AnnotationTemplate]
		}
		trouble = trouble || podProblem(nil, pods[i:i+1]) != "" && !awaitingClaim(p)
	}
	w.starting[id] = len(w.ready[id]) == 0 && !trouble
}

// run signals the waiters of each changed pod until wctx ends. A watch that ends by itself
// (the API server closes watches after a while, or the resourceVersion expired) is started
// again; what it saw Ready is forgotten and every waiter is signalled, since a change may
// have fallen between the two. id is the first waiter's session: the list that gives the new
// watch its resourceVersion lists its pods (any session's would do).
func (w *podWatch) run(wctx context.Context, wi watch.Interface, id string) {
	for {
		for ev := range wi.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Bookmark {
				w.saw(wctx, ev.Type, p)
			}
		}
		wi.Stop()
		w.forget(wctx)
		for {
			if wctx.Err() != nil {
				return
			}
			var err error
			if wi, _, err = w.start(wctx, wctx, id); err == nil {
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

// saw takes in one event of pod p: what it says of p's readiness, for the waiters of its
// session, who are told when p turned Ready, shows a problem (but a claim still binding:
// awaitingClaim) or went. Its other changes (created, scheduled, its containers starting) are
// not worth a read.
func (w *podWatch) saw(wctx context.Context, typ watch.EventType, p *corev1.Pod) {
	id := p.Labels[LabelSession]
	w.mu.Lock()
	if w.subs[id] == nil || wctx.Err() != nil { // nobody waits on it, or the watch was ended
		w.mu.Unlock()
		return
	}
	ready := typ != watch.Deleted && podReady(*p)
	if ready {
		if w.ready[id] == nil {
			w.ready[id] = map[string]string{}
		}
		w.ready[id][p.Name] = p.Annotations[AnnotationTemplate]
	} else {
		delete(w.ready[id], p.Name)
	}
	tell := ready || typ == watch.Deleted || podProblem(nil, []corev1.Pod{*p}) != "" && !awaitingClaim(p)
	if tell {
		delete(w.starting, id)
	}
	w.mu.Unlock()
	if tell {
		w.signal(id)
	}
}

// unboundClaim is the scheduler's word (its VolumeBinding plugin) for a pod whose claim is not
// bound yet: it tries again once the claim binds.
const unboundClaim = "pod has unbound immediate PersistentVolumeClaims"

// awaitingClaim reports whether p's only trouble is that its claim is not bound yet, as every
// new workspace's pod may be for a moment (its claim is applied with it). That is not worth a
// read while the pod starts: a claim that never binds is still the session's reason, found by
// the waiter's next read (AwaitFallback) or the sweep.
func awaitingClaim(p *corev1.Pod) bool {
	why, ok := unschedulable(*p)
	return ok && strings.Contains(why, unboundClaim)
}

// seenReady reports whether a pod of session id with template stamp was seen Ready, and not
// gone or unready since.
func (w *podWatch) seenReady(id, stamp string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.ready[id] {
		if s == stamp {
			return true
		}
	}
	return false
}

// knownStarting reports whether session id is known to be starting still (podWatch.starting).
func (w *podWatch) knownStarting(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.starting[id]
}

// forget drops what the watch saw: after it started again, a pod may have gone unseen. A
// watch that was ended (wctx, cancelled under w.mu by its last waiter) forgets nothing: what
// w holds may be a newer watch's already.
func (w *podWatch) forget(wctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wctx.Err() != nil {
		return
	}
	clear(w.ready)
	clear(w.starting)
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
