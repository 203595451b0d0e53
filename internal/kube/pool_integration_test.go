package kube

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The warm volume pool against the real API server and the real PV controller (kwok's nodes):
// volumes are "provisioned" by hand, in a class whose provisioner nobody runs, so every
// volume the test sees is one it made. The class binds Immediately, so an unreserved Available
// volume would be taken by any claim of the class: the test shows a reserved one is not.
func TestVolumePoolWithThePVController(t *testing.T) {
	ctx := t.Context()
	class := poolTestClass(t)
	c, cs := newCluster(t, func(o *Options) {
		o.StorageClass, o.WarmVolumes, o.WarmVolumeSize = class, 1, "2Gi"
	})
	ns := c.opts.Namespace
	if err := c.FillVolumePool(ctx); err != nil {
		t.Fatal(err)
	}
	claims, err := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: poolClaimSelector()})
	if err != nil || len(claims.Items) != 1 {
		t.Fatalf("pool claims after the first fill: %d, %v", len(claims.Items), err)
	}
	pool := claims.Items[0]
	if pool.Annotations[AnnotationSelectedNode] == "" {
		t.Fatal("the pool claim names no node")
	}

	// The provisioner's part, by hand: a volume bound to the pool claim.
	pvName := "pool-" + ns
	provision(t, cs, pvName, class, "2Gi", &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
		Namespace: ns, Name: pool.Name, UID: pool.UID})
	eventually(t, time.Minute, "the pool claim bound", func() (bool, error) {
		p, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, pool.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.ClaimBound, err
	})

	// Fills until the volume is ready: Retain, the pool claim gone, Available and reserved.
	eventually(t, time.Minute, "the volume ready in the pool", func() (bool, error) {
		if err := c.FillVolumePool(ctx); err != nil {
			return false, err
		}
		pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return c.claimable(pv, resource.MustParse("2Gi")), nil
	})
	pv := getVolume(t, cs, pvName)
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Fatalf("ready volume's policy %s", pv.Spec.PersistentVolumeReclaimPolicy)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, pool.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the pool claim is still there: %v", err)
	}
	// A pool of one that holds it creates no claim.
	if l, _ := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: poolClaimSelector()}); len(l.Items) != 0 {
		t.Fatalf("%d pool claims beside a ready volume", len(l.Items))
	}

	// Another claim of the class does not take the reserved volume.
	stranger := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "stranger", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: &class,
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, stranger, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A new session's claim binds to it at once.
	ws := newWorkspace(t)
	ws.Storage, ws.NewVolume = "2Gi", true
	start := time.Now()
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, time.Minute, "the session's claim bound to the warm volume", func() (bool, error) {
		p, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "vs-code-"+ws.ID+"-data", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.ClaimBound && p.Spec.VolumeName == pvName, err
	})
	t.Logf("timing: the session's claim bound %v after Apply returned (%v after it began)", took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	pv = getVolume(t, cs, pvName)
	if pv.Labels[LabelPool] != PoolClaimed || pv.Labels[LabelSession] != ws.ID || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Fatalf("claimed volume: labels %v, policy %s", pv.Labels, pv.Spec.PersistentVolumeReclaimPolicy)
	}
	if p, _ := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "stranger", metav1.GetOptions{}); p.Status.Phase == corev1.ClaimBound {
		t.Fatalf("the stranger's claim took volume %s", p.Spec.VolumeName)
	}

	// The pool is empty now: the next fill asks for another volume, and a second session goes
	// the cold way (its claim stays with the provisioner, which here is nobody).
	if err := c.FillVolumePool(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _ := cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: poolClaimSelector()}); len(l.Items) != 1 {
		t.Fatalf("%d pool claims after the volume was claimed, want 1", len(l.Items))
	}
	cold := newWorkspace(t)
	cold.Storage, cold.NewVolume = "2Gi", true
	if err := c.Apply(ctx, cold); err != nil {
		t.Fatal(err)
	}
	if p, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "vs-code-"+cold.ID+"-data", metav1.GetOptions{}); err != nil || p.Spec.VolumeName != "" {
		t.Fatalf("the cold claim: %v, volume %q", err, p.Spec.VolumeName)
	}
}

// TestVolumePoolConcurrentClaims: creates racing for a pool of one: exactly one gets it
// (optimistic concurrency on the volume), the others go cold, nobody fails.
func TestVolumePoolConcurrentClaims(t *testing.T) {
	ctx := t.Context()
	class := poolTestClass(t)
	c, cs := newCluster(t, func(o *Options) {
		o.StorageClass, o.WarmVolumes, o.WarmVolumeSize = class, 1, "2Gi"
	})
	pvName := "pool-" + c.opts.Namespace
	provision(t, cs, pvName, class, "2Gi", poolClaimRef(c.opts.Namespace, newPoolClaimName()), func(pv *corev1.PersistentVolume) {
		pv.Labels = poolLabels(nil, PoolReady, c.opts.Namespace)
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	})
	eventually(t, time.Minute, "the hand-made volume Available", func() (bool, error) {
		return getVolume(t, cs, pvName).Status.Phase == corev1.VolumeAvailable, nil
	})
	const n = 4
	errs := make(chan error, n)
	ids := make([]string, n)
	for i := range n {
		ws := newWorkspace(t)
		ws.Storage, ws.NewVolume = "2Gi", true
		ids[i] = ws.ID
		go func() { errs <- c.Apply(context.WithoutCancel(ctx), ws) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	owner := getVolume(t, cs, pvName).Labels[LabelSession]
	eventually(t, time.Minute, "the winner's claim bound", func() (bool, error) {
		bound := 0
		for _, id := range ids {
			p, err := cs.CoreV1().PersistentVolumeClaims(c.opts.Namespace).Get(ctx, "vs-code-"+id+"-data", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if p.Spec.VolumeName == pvName {
				if id != owner {
					t.Fatalf("session %s's claim bound the volume labelled for %s", id, owner)
				}
				bound++
			}
		}
		return bound == 1, nil
	})
}

// poolTestClass creates a StorageClass (Immediate binding) whose provisioner nobody runs,
// removed when t ends.
func poolTestClass(t *testing.T) string {
	t.Helper()
	k, _ := env.Namespace(t)
	name := "pool-" + randomSuffix(t)
	immediate := storagev1.VolumeBindingImmediate
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "example.com/nobody",
		VolumeBindingMode: &immediate}
	if _, err := k.Client.StorageV1().StorageClasses().Create(t.Context(), sc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k.Client.StorageV1().StorageClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// provision makes a hostPath volume of class and size bound (or reserved) to ref, deleted
// when the test ends.
func provision(t *testing.T, cs kubernetes.Interface, name, class, size string, ref *corev1.ObjectReference, mutate ...func(*corev1.PersistentVolume)) {
	t.Helper()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              class,
			ClaimRef:                      ref,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
		},
	}
	for _, m := range mutate {
		m(pv)
	}
	if _, err := cs.CoreV1().PersistentVolumes().Create(t.Context(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

func getVolume(t *testing.T, cs kubernetes.Interface, name string) *corev1.PersistentVolume {
	t.Helper()
	pv, err := cs.CoreV1().PersistentVolumes().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	return newPoolClaimName()[len(PoolClaimPrefix):]
}
