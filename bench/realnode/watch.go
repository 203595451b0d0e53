package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
)

// tick is the safety net under the watches: a wait re-checks at least this often even when no
// event comes (a step that only a kind this does not watch would announce).
const tick = time.Second

// watcher follows one namespace's pods, Jobs, Deployments and claims: every change pokes the
// one waiting check, and a Job's creation and completion are stamped with the time the watch
// delivered them. A watch that ends is listed and watched again.
type watcher struct {
	cs      kubernetes.Interface
	ns      string
	changed chan struct{}
	cancel  context.CancelFunc
	done    sync.WaitGroup

	mu   sync.Mutex
	jobs map[string]jobTimes
}

// jobTimes are when the watch first saw a Job, and first saw it succeed: a condition
// SuccessCriteriaMet or Complete, as the session core reads it. The Job controller sets
// SuccessCriteriaMet first and Complete once the pod has terminated, and the core may delete
// the Job in between.
type jobTimes struct {
	created, complete time.Time
}

// watchFunc lists a kind (returning the list's resource version) or watches it from one.
type (
	listFunc  func(ctx context.Context) (string, error)
	watchFunc func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
)

func watchNamespace(ctx context.Context, cs kubernetes.Interface, ns string) *watcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &watcher{cs: cs, ns: ns, changed: make(chan struct{}, 1), cancel: cancel, jobs: map[string]jobTimes{}}
	pods, jobs := cs.CoreV1().Pods(ns), cs.BatchV1().Jobs(ns)
	deps, pvcs := cs.AppsV1().Deployments(ns), cs.CoreV1().PersistentVolumeClaims(ns)
	w.follow(ctx, func(ctx context.Context) (string, error) { return listed(pods.List(ctx, metav1.ListOptions{})) }, pods.Watch)
	w.follow(ctx, func(ctx context.Context) (string, error) {
		l, err := jobs.List(ctx, metav1.ListOptions{})
		if err != nil {
			return "", err
		}
		for i := range l.Items {
			w.sawJob(&l.Items[i], time.Now())
		}
		return l.ResourceVersion, nil
	}, jobs.Watch)
	w.follow(ctx, func(ctx context.Context) (string, error) { return listed(deps.List(ctx, metav1.ListOptions{})) }, deps.Watch)
	w.follow(ctx, func(ctx context.Context) (string, error) { return listed(pvcs.List(ctx, metav1.ListOptions{})) }, pvcs.Watch)
	return w
}

// listed is a list's resource version.
func listed(l metav1.ListInterface, err error) (string, error) {
	if err != nil {
		return "", err
	}
	return l.GetResourceVersion(), nil
}

// follow lists a kind, watches it from that list, and does it again whenever the watch ends,
// until ctx is done.
func (w *watcher) follow(ctx context.Context, list listFunc, watchFrom watchFunc) {
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		for ctx.Err() == nil {
			rv, err := list(ctx)
			var wi watch.Interface
			if err == nil {
				wi, err = watchFrom(ctx, metav1.ListOptions{ResourceVersion: rv})
			}
			if err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(tick):
				}
				continue
			}
			for ev := range wi.ResultChan() {
				if ev.Type == watch.Error {
					break
				}
				if j, ok := ev.Object.(*batchv1.Job); ok {
					w.sawJob(j, time.Now())
				}
				w.poke()
			}
			wi.Stop()
			w.poke() // events may have been missed: whoever waits checks again
		}
	}()
}

func (w *watcher) close() {
	w.cancel()
	w.done.Wait()
}

func (w *watcher) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watcher) sawJob(j *batchv1.Job, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.jobs[j.Name]
	if t.created.IsZero() {
		t.created = at
	}
	if t.complete.IsZero() {
		for _, c := range j.Status.Conditions {
			if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobSuccessCriteriaMet) && c.Status == corev1.ConditionTrue {
				t.complete = at
			}
		}
	}
	w.jobs[j.Name] = t
}

func (w *watcher) job(name string) jobTimes {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.jobs[name]
}

// workspacePods lists session id's workspace pods, terminating ones included.
func (w *watcher) workspacePods(ctx context.Context, id string) ([]corev1.Pod, error) {
	sel := labels.SelectorFromSet(labels.Set{kube.LabelSession: id, kube.LabelComponent: kube.ComponentWorkspace})
	l, err := w.cs.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of session %s: %w", id, err)
	}
	return l.Items, nil
}

// until runs check now and after every change in the namespace (or tick) until it reports
// done, and returns when it did. It gives up after patience or when check fails.
func (w *watcher) until(ctx context.Context, what string, patience time.Duration, check func() (bool, error)) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		done, err := check()
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", what, err)
		}
		if done {
			return time.Now(), nil
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%s: not after %s: %w", what, patience, ctx.Err())
		case <-w.changed:
		case <-t.C:
		}
	}
}
