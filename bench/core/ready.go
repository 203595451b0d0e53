package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
)

// podWatch is the benchmark's one view of workspace pods, in every namespace and for both
// modes: one watch stamps the moment it first saw each pod Ready, and keeps which pods
// of each session exist. Both modes' Ready times come from it, so they carry the same watch
// delay and no poll interval.
type podWatch struct {
	mu      sync.Mutex
	ready   map[string][]time.Time            // session id → when each of its pods turned Ready, oldest first
	stamped map[types.UID]bool                // pods whose Ready is stamped
	live    map[string]map[types.UID]struct{} // session id → its pods that exist (terminating too)
	changed chan struct{}                     // closed and replaced at every change
}

// watchPods lists the workspace pods of every namespace, watches them from that list (listing
// again whenever the watch ends) until ctx is done, and returns once the first list is in.
func watchPods(ctx context.Context, cs kubernetes.Interface) (*podWatch, error) {
	w := &podWatch{
		ready: map[string][]time.Time{}, stamped: map[types.UID]bool{},
		live: map[string]map[types.UID]struct{}{}, changed: make(chan struct{}),
	}
	pods := cs.CoreV1().Pods(metav1.NamespaceAll)
	opts := metav1.ListOptions{LabelSelector: kube.ManagedSelector() + "," + kube.LabelComponent + "=" + kube.ComponentWorkspace}
	list := func() (string, error) {
		l, err := pods.List(ctx, opts)
		if err != nil {
			return "", fmt.Errorf("listing workspace pods: %w", err)
		}
		w.relisted(l.Items)
		return l.ResourceVersion, nil
	}
	rv, err := list()
	if err != nil {
		return nil, err
	}
	go func() {
		for ctx.Err() == nil {
			o := opts
			o.ResourceVersion, o.AllowWatchBookmarks = rv, true
			wi, err := pods.Watch(ctx, o)
			if err == nil {
				rv = w.follow(wi, rv)
				wi.Stop()
			}
			if err != nil || rv == "" { // failed, or the watch expired: list again
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				if rv, err = list(); err != nil {
					rv = ""
				}
			}
		}
	}()
	return w, nil
}

// follow records a watch's events until it ends, and returns the resource version to watch
// from next ("" when the watch failed and a list is needed).
func (w *podWatch) follow(wi watch.Interface, rv string) string {
	for ev := range wi.ResultChan() {
		switch ev.Type {
		case watch.Error:
			return ""
		case watch.Bookmark:
			if p, ok := ev.Object.(*corev1.Pod); ok {
				rv = p.ResourceVersion
			}
		case watch.Added, watch.Modified, watch.Deleted:
			if p, ok := ev.Object.(*corev1.Pod); ok {
				w.saw(p, ev.Type == watch.Deleted)
				rv = p.ResourceVersion
			}
		}
	}
	return rv
}

// relisted replaces what the watch knows of which pods exist with a list (events may have
// been missed), stamping Ready pods it had not seen.
func (w *podWatch) relisted(pods []corev1.Pod) {
	at := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.live = map[string]map[types.UID]struct{}{}
	for i := range pods {
		w.record(&pods[i], false, at)
	}
	w.broadcast()
}

// saw records one pod event at the time it was delivered.
func (w *podWatch) saw(p *corev1.Pod, deleted bool) {
	at := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.record(p, deleted, at)
	w.broadcast()
}

// record notes one pod's state seen at at; w.mu is held.
func (w *podWatch) record(p *corev1.Pod, deleted bool, at time.Time) {
	id := p.Labels[kube.LabelSession]
	if id == "" {
		return
	}
	if deleted {
		delete(w.live[id], p.UID)
	} else {
		if w.live[id] == nil {
			w.live[id] = map[types.UID]struct{}{}
		}
		w.live[id][p.UID] = struct{}{}
		if !w.stamped[p.UID] && podReady(p) {
			w.stamped[p.UID] = true
			w.ready[id] = append(w.ready[id], at)
		}
	}
}

// broadcast wakes every waiter; w.mu is held.
func (w *podWatch) broadcast() {
	close(w.changed)
	w.changed = make(chan struct{})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyAfter waits for a pod of session id that turned Ready at or after since, and returns
// when it did.
func (w *podWatch) readyAfter(ctx context.Context, id string, since time.Time) (time.Time, error) {
	var at time.Time
	err := w.until(ctx, func() bool {
		for _, t := range w.ready[id] {
			if !t.Before(since) {
				at = t
				return true
			}
		}
		return false
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("session %s: no pod Ready: %w", id, err)
	}
	return at, nil
}

// readySince reports whether a pod of session id turned Ready at or after since, without
// waiting.
func (w *podWatch) readySince(id string, since time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, t := range w.ready[id] {
		if !t.Before(since) {
			return t, true
		}
	}
	return time.Time{}, false
}

// gone waits until session id has no pod left.
func (w *podWatch) gone(ctx context.Context, id string) error {
	if err := w.until(ctx, func() bool { return len(w.live[id]) == 0 }); err != nil {
		return fmt.Errorf("session %s: pod not gone: %w", id, err)
	}
	return nil
}

// until waits for cond (called with w.mu held) to hold.
func (w *podWatch) until(ctx context.Context, cond func() bool) error {
	for {
		w.mu.Lock()
		ok, ch := cond(), w.changed
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-ch:
		}
	}
}
