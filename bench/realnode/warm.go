package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/stack"
)

// The warm path's rows: a create on a warm volume against one on a new volume, and the floor
// they are measured against, a bare scale 0 → 1 of the same workspace's Deployment.
const (
	phaseCreateWarm = "create→running, warm volume"
	phaseCreateCold = "create→running, cold volume"
	phaseRawScale   = "raw scale 0→1 →Ready"
)

// warm measures, in the run's namespace and with the image already warm:
//
//	warm: the pool (HYPERBOLA_WARM_VOLUMES=1) filled first, untimed; Create until running
//	cold: Create through the run's own stack (no pool) until running
//	raw:  the warm session put to sleep (untimed), then its Deployment scaled 0 → 1 through
//	      the scale subresource, bypassing the session core, until its pod is Ready
func (r *runner) warm(ctx context.Context, warmStack *stack.Stack, cold *session.Service) error {
	fillStart := time.Now()
	if _, err := r.w.until(ctx, "a warm volume ready", r.o.patience, func() (bool, error) {
		if err := warmStack.Cluster.FillVolumePool(ctx); err != nil {
			return false, err
		}
		return r.readyVolume(ctx)
	}); err != nil {
		return err
	}
	progress("warm volume ready after %s (untimed)", time.Since(fillStart).Round(time.Millisecond))
	hot := r.svc
	r.svc = warmStack.Service
	id, err := r.create(ctx, phaseCreateWarm)
	r.svc = hot
	if err != nil {
		return err
	}
	if err := r.onWarmVolume(ctx, id, true); err != nil {
		return err
	}
	r.svc = cold
	coldID, err := r.create(ctx, phaseCreateCold)
	r.svc = hot
	if err != nil {
		return err
	}
	if err := r.onWarmVolume(ctx, coldID, false); err != nil {
		return err
	}
	return r.rawScale(ctx, warmStack, id)
}

// readyVolume reports whether the namespace's pool holds a ready volume.
func (r *runner) readyVolume(ctx context.Context) (bool, error) {
	l, err := r.k.Client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{LabelSelector: kube.LabelPool + "=" + kube.PoolReady})
	if err != nil {
		return false, err
	}
	for _, pv := range l.Items {
		if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == r.ns && ref.UID == "" && pv.Status.Phase == corev1.VolumeAvailable {
			return true, nil
		}
	}
	return false, nil
}

// onWarmVolume checks that session id's claim is (want) or is not on a pooled volume.
func (r *runner) onWarmVolume(ctx context.Context, id string, want bool) error {
	pvc, err := r.k.Client.CoreV1().PersistentVolumeClaims(r.ns).Get(ctx, "vs-code-"+id+"-data", metav1.GetOptions{})
	if err != nil {
		return err
	}
	pv, err := r.k.Client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if got := pv.Labels[kube.LabelPool] == kube.PoolClaimed; got != want {
		return fmt.Errorf("session %s: on a warm volume %v, want %v", id, got, want)
	}
	return nil
}

// rawScale puts session id to sleep through the core (untimed), then scales its Deployment to
// one replica through the scale subresource and times it until the pod is Ready.
func (r *runner) rawScale(ctx context.Context, st *stack.Stack, id string) error {
	if _, err := st.Service.Sleep(ctx, id); err != nil {
		return fmt.Errorf("sleep: %w", err)
	}
	if _, err := r.w.until(ctx, "session "+id+" has no pod", r.o.patience, func() (bool, error) {
		pods, err := r.w.workspacePods(ctx, id)
		return len(pods) == 0, err
	}); err != nil {
		return err
	}
	start := time.Now()
	if err := st.Cluster.Scale(ctx, id, 1); err != nil {
		return err
	}
	at, err := r.w.until(ctx, "session "+id+" pod Ready", r.o.patience, func() (bool, error) {
		pods, err := r.w.workspacePods(ctx, id)
		if err != nil {
			return false, err
		}
		for _, p := range pods {
			for _, c := range p.Status.Conditions {
				if p.DeletionTimestamp == nil && c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	r.res.add(phaseRawScale, at.Sub(start))
	progress("%s: %s %s", id, phaseRawScale, at.Sub(start).Round(time.Millisecond))
	return nil
}
