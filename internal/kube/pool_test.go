package kube

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func poolOptions(n int) Options {
	o := testOptions()
	o.WarmVolumes, o.WarmVolumeSize = n, "5Gi"
	o.NodeSelector = map[string]string{"pool": "workspaces"}
	o.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "ws", Effect: corev1.TaintEffectNoSchedule}}
	return o
}

func node(name string, labels map[string]string, ready bool, mutate ...func(*corev1.Node)) *corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}}}
	for _, m := range mutate {
		m(n)
	}
	return n
}

// pooledPV is a volume in the pool's ready state: Available, reserved for a pool claim.
func pooledPV(name, size, class string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: poolLabels(nil, PoolReady, "hyperbola"), ResourceVersion: "1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              class,
			ClaimRef:                      poolClaimRef("hyperbola", PoolClaimPrefix+name),
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
}

func poolClaims(t *testing.T, cs *fake.Clientset) []corev1.PersistentVolumeClaim {
	t.Helper()
	l, err := cs.CoreV1().PersistentVolumeClaims("hyperbola").List(context.Background(), metav1.ListOptions{LabelSelector: poolClaimSelector()})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func getPV(t *testing.T, cs *fake.Clientset, name string) *corev1.PersistentVolume {
	t.Helper()
	pv, err := cs.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pv
}

// TestFillVolumePoolCreatesClaimsOnWorkspaceNodes: the fill creates the missing pool claims,
// each with a node workspace pods may run on as its selected node (Ready, selected, taints
// tolerated, not cordoned), and counts them on the next fill instead of creating more.
func TestFillVolumePoolCreatesClaimsOnWorkspaceNodes(t *testing.T) {
	ctx := context.Background()
	sel := map[string]string{"pool": "workspaces"}
	cs := fake.NewClientset(
		node("ok", sel, true, func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "ws", Effect: corev1.TaintEffectNoSchedule},
				{Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule}}
		}),
		node("other-pool", map[string]string{"pool": "system"}, true),
		node("not-ready", sel, false),
		node("cordoned", sel, true, func(n *corev1.Node) { n.Spec.Unschedulable = true }),
		node("tainted", sel, true, func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "gpu", Effect: corev1.TaintEffectNoSchedule}}
		}),
	)
	c := NewCluster(cs, poolOptions(2))
	if err := c.FillVolumePool(ctx); err != nil {
		t.Fatal(err)
	}
	claims := poolClaims(t, cs)
	if len(claims) != 2 {
		t.Fatalf("%d pool claims, want 2", len(claims))
	}
	for _, pvc := range claims {
		if pvc.Annotations[AnnotationSelectedNode] != "ok" {
			t.Errorf("%s: selected node %q, want ok", pvc.Name, pvc.Annotations[AnnotationSelectedNode])
		}
		if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.String() != "5Gi" || *pvc.Spec.StorageClassName != "standard-rwo" {
			t.Errorf("%s: %s in %q, want 5Gi in standard-rwo", pvc.Name, q.String(), *pvc.Spec.StorageClassName)
		}
		if pvc.Labels[LabelManagedBy] != ManagedByValue || pvc.Labels[LabelSession] != "" {
			t.Errorf("%s: labels %v", pvc.Name, pvc.Labels)
		}
	}
	if err := c.FillVolumePool(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(poolClaims(t, cs)); n != 2 {
		t.Errorf("after a second fill: %d pool claims, want still 2", n)
	}
}

// TestFillVolumePoolWithoutNodes: no node takes workspaces: an error that names the selector.
func TestFillVolumePoolWithoutNodes(t *testing.T) {
	cs := fake.NewClientset(node("n", map[string]string{"pool": "system"}, true))
	if err := NewCluster(cs, poolOptions(1)).FillVolumePool(context.Background()); err == nil {
		t.Fatal("no error without a node")
	}
}

// TestFillVolumePoolOffMakesNoCall: with the pool off the fill and Apply touch no volume and
// no node (the control plane has no right to).
func TestFillVolumePoolOffMakesNoCall(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("*", "persistentvolumes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		t.Errorf("unexpected %s %s", a.GetVerb(), a.GetResource().Resource)
		return true, nil, nil
	})
	cs.PrependReactor("*", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		t.Errorf("unexpected %s %s", a.GetVerb(), a.GetResource().Resource)
		return true, nil, nil
	})
	c := NewCluster(cs, poolOptions(0))
	if err := c.FillVolumePool(context.Background()); err != nil {
		t.Fatal(err)
	}
	ws := testWorkspace()
	ws.NewVolume = true
	if err := c.Apply(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
}

// TestFillVolumePoolMovesVolumesAlong: a bound pool claim hands its volume over (Retain,
// ready) and is deleted; the released volume is reserved again (Available); a pool that holds
// it creates no other claim.
func TestFillVolumePoolMovesVolumesAlong(t *testing.T) {
	ctx := context.Background()
	pv := pooledPV("pv-1", "5Gi", "standard-rwo")
	pv.Labels = nil
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
	pv.Spec.ClaimRef.UID = "claim-uid"
	pv.Status.Phase = corev1.VolumeBound
	pvc := poolClaim(poolOptions(1), PoolClaimPrefix+"pv-1", resource.MustParse("5Gi"), "ok")
	pvc.UID = "claim-uid"
	pvc.Spec.VolumeName = "pv-1"
	pvc.Status.Phase = corev1.ClaimBound
	cs := fake.NewClientset(pv, pvc, node("ok", map[string]string{"pool": "workspaces"}, true))
	c := NewCluster(cs, poolOptions(1))
	now := time.Now()
	c.now = func() time.Time { return now }
	if err := c.FillVolumePool(ctx); err != nil {
		t.Fatal(err)
	}
	got := getPV(t, cs, "pv-1")
	if got.Labels[LabelPool] != PoolReady || got.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		t.Fatalf("volume after the claim's hand-over: labels %v, policy %s", got.Labels, got.Spec.PersistentVolumeReclaimPolicy)
	}
	// The claim stays until the controllers' copies have had time to see Retain (deleted at
	// once, a copy still saying Delete would delete the volume), and the pool creates no other.
	if err := c.FillVolumePool(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(poolClaims(t, cs)); n != 1 {
		t.Fatalf("%d pool claims right after the hand-over, want the bound one alone", n)
	}
	now = now.Add(PoolRetainSettle)
	if err := c.FillVolumePool(ctx); err != nil {
		t.Fatal(err)
	}
	got = getPV(t, cs, "pv-1")
	if n := len(poolClaims(t, cs)); n != 0 {
		t.Fatalf("%d pool claims left, want 0 (the bound one deleted, none created)", n)
	}

	// The PV controller releases the volume once its claim is gone.
	got.Status.Phase = corev1.VolumeReleased
	if _, err := cs.CoreV1().PersistentVolumes().Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.FillVolumePool(ctx); err != nil {
		t.Fatal(err)
	}
	got = getPV(t, cs, "pv-1")
	if ref := got.Spec.ClaimRef; ref == nil || ref.UID != "" || ref.Name != PoolClaimPrefix+"pv-1" {
		t.Fatalf("released volume's claimRef %+v, want the pool claim's name without a uid", ref)
	}
	if n := len(poolClaims(t, cs)); n != 0 {
		t.Fatalf("%d pool claims, want 0: the released volume counts", n)
	}
}

// TestFillVolumePoolReleasesWhatNoLongerFits: a ready volume of another size, and one over
// the pool's size, are released for deletion (Delete, a uid no claim has).
func TestFillVolumePoolReleasesWhatNoLongerFits(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(pooledPV("a", "5Gi", "standard-rwo"), pooledPV("b", "5Gi", "standard-rwo"),
		pooledPV("old-size", "2Gi", "standard-rwo"), node("ok", map[string]string{"pool": "workspaces"}, true))
	if err := NewCluster(cs, poolOptions(1)).FillVolumePool(ctx); err != nil {
		t.Fatal(err)
	}
	released := 0
	for _, name := range []string{"a", "b", "old-size"} {
		pv := getPV(t, cs, name)
		if pv.Spec.ClaimRef.UID == releasedUID {
			released++
			if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
				t.Errorf("%s released with policy %s", name, pv.Spec.PersistentVolumeReclaimPolicy)
			}
		} else if name == "old-size" {
			t.Errorf("the 2Gi volume is kept in a 5Gi pool")
		}
	}
	if released != 2 || len(poolClaims(t, cs)) != 0 {
		t.Errorf("%d released, %d claims created; want 2 and 0", released, len(poolClaims(t, cs)))
	}
}

// TestFillVolumePoolTakesBackAbandonedClaims: a volume claimed for a claim that never bound it
// goes back to the pool after PoolClaimGrace, not before; a bound one is left alone.
func TestFillVolumePoolTakesBackAbandonedClaims(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	claimed := func(name string, at time.Time, phase corev1.PersistentVolumePhase) *corev1.PersistentVolume {
		pv := pooledPV(name, "5Gi", "standard-rwo")
		pv.Labels = poolLabels(map[string]string{LabelSession: "ab12cd34"}, PoolClaimed, "hyperbola")
		pv.Annotations = map[string]string{AnnotationClaimedAt: at.Format(time.RFC3339)}
		pv.Spec.ClaimRef = poolClaimRef("hyperbola", "vs-code-ab12cd34-data")
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
		pv.Status.Phase = phase
		if phase == corev1.VolumeBound {
			pv.Spec.ClaimRef.UID = "uid"
		}
		return pv
	}
	cs := fake.NewClientset(
		claimed("abandoned", now.Add(-PoolClaimGrace-time.Second), corev1.VolumeAvailable),
		claimed("recent", now.Add(-time.Minute), corev1.VolumeAvailable),
		claimed("bound", now.Add(-time.Hour), corev1.VolumeBound),
		node("ok", map[string]string{"pool": "workspaces"}, true))
	c := NewCluster(cs, poolOptions(3))
	c.now = func() time.Time { return now }
	if err := c.FillVolumePool(ctx); err != nil {
		t.Fatal(err)
	}
	back := getPV(t, cs, "abandoned")
	if back.Labels[LabelPool] != PoolReady || back.Labels[LabelSession] != "" ||
		back.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain ||
		back.Spec.ClaimRef.Name == "vs-code-ab12cd34-data" {
		t.Errorf("abandoned volume not back in the pool: labels %v, policy %s, claimRef %s",
			back.Labels, back.Spec.PersistentVolumeReclaimPolicy, back.Spec.ClaimRef.Name)
	}
	for _, name := range []string{"recent", "bound"} {
		if pv := getPV(t, cs, name); pv.Labels[LabelPool] != PoolClaimed || pv.Spec.ClaimRef.Name != "vs-code-ab12cd34-data" {
			t.Errorf("%s was taken back: labels %v", name, pv.Labels)
		}
	}
}

// TestApplyClaimsAWarmVolume: a new session's claim reserves the smallest ready volume that
// fits (class, size) before the claim is applied; a volume another create took first (a
// conflict) is passed over, and another deployment's pool is not looked at; a retry or a wake (NewVolume false) claims nothing.
func TestApplyClaimsAWarmVolume(t *testing.T) {
	ctx := context.Background()
	other := pooledPV("other-class", "5Gi", "premium-rwo")
	small := pooledPV("small", "1Gi", "standard-rwo")
	big := pooledPV("big", "20Gi", "standard-rwo")
	taken := pooledPV("taken", "5Gi", "standard-rwo")
	fit := pooledPV("fit", "5Gi", "standard-rwo")
	elsewhere := pooledPV("elsewhere", "5Gi", "standard-rwo") // another deployment's pool
	elsewhere.Labels[LabelPoolNamespace] = "other"
	cs := fake.NewClientset(other, small, big, taken, fit, elsewhere)
	var order []string
	var pvcApplied bool
	cs.PrependReactor("patch", "persistentvolumeclaims", func(k8stesting.Action) (bool, runtime.Object, error) {
		pvcApplied = true
		return false, nil, nil
	})
	cs.PrependReactor("update", "persistentvolumes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := a.(k8stesting.UpdateAction).GetObject().(*corev1.PersistentVolume).Name
		order = append(order, name)
		if pvcApplied {
			t.Errorf("volume %s updated after the claim was applied", name)
		}
		if name == "taken" {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "persistentvolumes"}, name, nil)
		}
		return false, nil, nil
	})
	c := NewCluster(cs, poolOptions(2))
	ws := testWorkspace()
	ws.NewVolume = true
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if len(order) == 0 || order[len(order)-1] != "fit" || slices.ContainsFunc(order, func(n string) bool { return n != "fit" && n != "taken" }) {
		t.Fatalf("volumes tried %v, want the 5Gi ones of the class only, ending with fit", order)
	}
	pv := getPV(t, cs, "fit")
	if ref := pv.Spec.ClaimRef; ref == nil || ref.Name != "vs-code-ab12cd34-data" || ref.Namespace != "hyperbola" || ref.UID != "" {
		t.Errorf("claimRef %+v, want hyperbola/vs-code-ab12cd34-data without a uid", ref)
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
		pv.Labels[LabelPool] != PoolClaimed || pv.Labels[LabelSession] != "ab12cd34" || pv.Annotations[AnnotationClaimedAt] == "" {
		t.Errorf("claimed volume: policy %s, labels %v, annotations %v", pv.Spec.PersistentVolumeReclaimPolicy, pv.Labels, pv.Annotations)
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims("hyperbola").Get(ctx, "vs-code-ab12cd34-data", metav1.GetOptions{}); err != nil {
		t.Errorf("the claim was not applied: %v", err)
	}

	order = nil
	ws.NewVolume = false
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if len(order) != 0 {
		t.Errorf("a re-apply claimed %v", order)
	}
}

// TestApplyWithAnEmptyPoolGoesCold: no volume fits: the claim is applied as without a pool;
// a pool that cannot be read does not fail the create either.
func TestApplyWithAnEmptyPoolGoesCold(t *testing.T) {
	ctx := context.Background()
	for _, broken := range []bool{false, true} {
		cs := fake.NewClientset(pooledPV("small", "1Gi", "standard-rwo"))
		if broken {
			cs.PrependReactor("list", "persistentvolumes", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "persistentvolumes"}, "", nil)
			})
		}
		ws := testWorkspace()
		ws.NewVolume = true
		if err := NewCluster(cs, poolOptions(1)).Apply(ctx, ws); err != nil {
			t.Fatalf("broken %v: %v", broken, err)
		}
		if _, err := cs.CoreV1().PersistentVolumeClaims("hyperbola").Get(ctx, "vs-code-ab12cd34-data", metav1.GetOptions{}); err != nil {
			t.Errorf("broken %v: the claim was not applied: %v", broken, err)
		}
		if pv := getPV(t, cs, "small"); pv.Labels[LabelPool] != PoolReady {
			t.Errorf("broken %v: the 1Gi volume was claimed for a 5Gi claim", broken)
		}
	}
}
