package testenv

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// Changes returns a channel that receives a value whenever a pod, Job or claim changes in
// namespace ns, until ctx ends, so a test's waits wake on what they wait for instead of
// polling. A watch that cannot start is logged; the waits keep their own slow tick.
func Changes(ctx context.Context, t testing.TB, cs kubernetes.Interface, ns string) <-chan struct{} {
	ch := make(chan struct{}, 1)
	poke := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	start := func(w watch.Interface, err error) {
		if err != nil {
			t.Logf("watch: %v (waits fall back to their tick)", err)
			return
		}
		go func() {
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case _, ok := <-w.ResultChan():
					if !ok {
						return
					}
					poke()
				}
			}
		}()
	}
	start(cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{}))
	start(cs.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{}))
	start(cs.CoreV1().PersistentVolumeClaims(ns).Watch(ctx, metav1.ListOptions{}))
	return ch
}
