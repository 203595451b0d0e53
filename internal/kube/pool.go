package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// The warm volume pool (Options.WarmVolumes, docs/operations/warm-path.md): volumes
// provisioned ahead of time, so a new session's claim binds at once instead of waiting for a
// provisioner. A pooled volume is a PersistentVolume labelled LabelPool=PoolReady, reclaim
// policy Retain, phase Available, and reserved: its claimRef names a pool claim that no
// longer exists (without a uid). The reservation is what keeps it ours: an unreserved
// Available volume is fair game for any claim of its class (the PV controller binds Immediate
// claims to it, the scheduler WaitForFirstConsumer ones), so another session's cold claim
// could take it with our labels and Retain on it, and a deleted user's files could come back
// into the pool.
//
// The life of a pooled volume:
//
//	fill:   pool claim hyperbola-pool-<random> (LabelPool=PoolPending, selected-node set, so a
//	        WaitForFirstConsumer class provisions it without a pod) → Bound
//	fill:   its volume → Retain, PoolReady; the pool claim deleted → Released
//	fill:   claimRef's uid dropped → Available, reserved (ready)
//	create: claimRef → the session's claim, Delete, PoolClaimed (optimistic concurrency:
//	        two creates never take one volume) → the PV controller binds the claim at once
//	fill:   a volume claimed longer than PoolClaimGrace ago whose claim never bound it goes
//	        back to the pool
//
// A volume that no longer fits the pool (another size or class after a configuration
// change, or more volumes than Options.WarmVolumes) is released for deletion: reclaim
// policy Delete and a claimRef uid no claim has, so the PV controller finds its claim gone
// and the provisioner deletes it.
const (
	// LabelPool marks the pool's objects: pool claims (PoolPending) and volumes (PoolReady,
	// then PoolClaimed once a session took one).
	LabelPool     = "hyperbola.dev/pool"
	PoolPending   = "pending"
	PoolReady     = "ready"
	PoolClaimed   = "claimed"
	ComponentPool = "pool"
	// LabelPoolNamespace is the namespace of the deployment a pooled volume belongs to:
	// volumes are cluster-scoped, and two deployments (or test namespaces) in one cluster
	// each keep a pool of their own.
	LabelPoolNamespace = "hyperbola.dev/pool-namespace"

	// AnnotationClaimedAt is when a session claimed a pooled volume (RFC 3339, UTC).
	AnnotationClaimedAt = "hyperbola.dev/claimed-at"
	// AnnotationRetainedAt is when the fill set a pool claim's volume to Retain (RFC 3339).
	AnnotationRetainedAt = "hyperbola.dev/retained-at"
	// AnnotationSelectedNode is the scheduler's choice of node for a WaitForFirstConsumer
	// claim: the provisioner provisions there. The pool sets it itself, as no pod will.
	AnnotationSelectedNode = "volume.kubernetes.io/selected-node"

	// PoolClaimPrefix begins the name of every pool claim (and of the reservation a ready
	// volume holds).
	PoolClaimPrefix = "hyperbola-pool-"

	// PoolClaimGrace is how long a volume may stay claimed without its claim binding it (a
	// create that failed after the claim), and how long a pool claim may stay unbound (its
	// node gone), before the fill takes them back. A create binds in well under a second.
	PoolClaimGrace = 10 * time.Minute

	// PoolRetainSettle is how long the fill waits between setting a pool claim's volume to
	// Retain and deleting the claim. The PV controller (and a CSI provisioner) decide a
	// released volume's fate from their informer's copy: a claim deleted at once after the
	// update could meet a copy still saying Delete and lose the volume (seen on a loaded
	// machine: the test's volume was deleted).
	PoolRetainSettle = 5 * time.Second

	// releasedUID is the claimRef uid of a volume released for deletion: no claim has it, so
	// the PV controller marks the volume Released and its provisioner deletes it.
	releasedUID = types.UID("hyperbola-pool-released")
)

// FillVolumePool brings the pool to Options.WarmVolumes ready volumes: it moves every pooled
// volume one step along its life (see LabelPool), takes back the volumes claimed by creates
// that failed, releases the volumes that no longer fit, and creates pool claims for what is
// missing. It is idempotent and keeps no state: the scheduled sweep runs it every time. With
// the pool off (WarmVolumes 0) it makes no API call.
func (c *Cluster) FillVolumePool(ctx context.Context) error {
	if c.opts.WarmVolumes <= 0 {
		return nil
	}
	size, err := c.opts.warmSize()
	if err != nil {
		return err
	}
	claims, err := c.cs.CoreV1().PersistentVolumeClaims(c.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: poolClaimSelector()})
	if err != nil {
		return c.listError("PersistentVolumeClaims", poolClaimSelector(), err)
	}
	now := c.now()
	var errs []error
	have := 0
	for i := range claims.Items {
		counts, err := c.stepPoolClaim(ctx, &claims.Items[i], now)
		if counts {
			have++
		}
		errs = append(errs, err)
	}
	// Listed after the claims' step, so a volume a bound pool claim just handed over counts.
	pvs, err := c.poolVolumes(ctx, PoolReady, PoolClaimed)
	if err != nil {
		return err
	}
	var ready []*corev1.PersistentVolume
	for i := range pvs {
		pv := &pvs[i]
		switch pv.Labels[LabelPool] {
		case PoolReady:
			if pv.DeletionTimestamp != nil || pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.UID == releasedUID {
				continue // on its way out
			}
			if !c.fitsPool(pv, size) {
				errs = append(errs, c.releaseVolume(ctx, pv))
				continue
			}
			ok, err := c.reserveVolume(ctx, pv)
			errs = append(errs, err)
			if ok {
				ready = append(ready, pv)
			}
		case PoolClaimed:
			errs = append(errs, c.reclaimAbandoned(ctx, pv, now))
		}
	}
	// Bound pool claims count once: their volume is labelled ready before the claim goes.
	have += len(ready)
	if have > c.opts.WarmVolumes {
		for _, pv := range ready[:min(len(ready), have-c.opts.WarmVolumes)] {
			errs = append(errs, c.releaseVolume(ctx, pv))
		}
	}
	if want := c.opts.WarmVolumes - have; want > 0 {
		errs = append(errs, c.createPoolClaims(ctx, want, size))
	}
	slog.DebugContext(ctx, "warm volume pool filled", "want", c.opts.WarmVolumes, "have", have)
	return joinErrs(errs)
}

// poolVolumes lists the pool's volumes in the given states.
func (c *Cluster) poolVolumes(ctx context.Context, states ...string) ([]corev1.PersistentVolume, error) {
	sel := poolVolumeSelector(c.opts.Namespace, states...)
	var out []corev1.PersistentVolume
	err := listStep(c, "PersistentVolumes", sel, c.cs.CoreV1().PersistentVolumes().List,
		func(l *corev1.PersistentVolumeList) []corev1.PersistentVolume { return l.Items }, &out)(ctx)
	return out, err
}

// stepPoolClaim moves one pool claim along: a bound one hands its volume to the pool and is
// deleted; one unbound for longer than PoolClaimGrace is deleted (its node may be gone) for
// the fill to try again. It reports whether the claim counts toward the pool.
func (c *Cluster) stepPoolClaim(ctx context.Context, pvc *corev1.PersistentVolumeClaim, now time.Time) (bool, error) {
	if pvc.DeletionTimestamp != nil {
		return false, nil
	}
	claims := c.cs.CoreV1().PersistentVolumeClaims(c.opts.Namespace)
	del := func() error {
		err := claims.Delete(ctx, pvc.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &pvc.UID}})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil
		}
		return c.kubeError("delete", session.ObjectPVC, pvc.Name, err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		if now.Sub(pvc.CreationTimestamp.Time) > PoolClaimGrace {
			return false, del()
		}
		return true, nil
	}
	pv, err := c.cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, del()
	}
	if err != nil {
		return true, c.pvError("get", pvc.Spec.VolumeName, err)
	}
	if pv.Labels[LabelPool] != PoolReady || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
		// Retain first: deleting the claim of a Delete volume would delete the volume.
		pv.Labels = c.poolLabels(pv.Labels, PoolReady)
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
		if pv.Annotations == nil {
			pv.Annotations = map[string]string{}
		}
		pv.Annotations[AnnotationRetainedAt] = now.UTC().Format(time.RFC3339)
		if _, err := c.cs.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return true, c.pvError("update", pv.Name, err)
		}
		return false, nil // listed as ready from now on; the claim goes on a later fill, once every controller has seen Retain
	}
	if at, err := time.Parse(time.RFC3339, pv.Annotations[AnnotationRetainedAt]); err == nil && now.Sub(at) < PoolRetainSettle {
		return false, nil // counted as a ready volume already
	}
	// The volume is listed (labelled ready) from now on: the claim no longer counts.
	return false, del()
}

// reserveVolume keeps a ready volume reserved: a Released one (its pool claim deleted) loses
// its claimRef's uid, which makes it Available again, still out of any other claim's reach.
// It reports whether the volume is ready for a create to claim, now or once the PV controller
// has caught up.
func (c *Cluster) reserveVolume(ctx context.Context, pv *corev1.PersistentVolume) (bool, error) {
	ref := pv.Spec.ClaimRef
	switch {
	case ref == nil:
		// Not ours alone (someone cleared it): reserve it before a claim takes it.
		pv.Spec.ClaimRef = poolClaimRef(c.opts.Namespace, newPoolClaimName())
	case ref.UID != "" && pv.Status.Phase == corev1.VolumeReleased:
		pv.Spec.ClaimRef = poolClaimRef(ref.Namespace, ref.Name)
	case ref.UID != "":
		return true, nil // its pool claim is being deleted
	default:
		return pv.Status.Phase == corev1.VolumeAvailable, nil
	}
	_, err := c.cs.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{FieldManager: FieldManager})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return false, nil // the next fill sees what changed
	}
	return err == nil, c.pvError("update", pv.Name, err)
}

// reclaimAbandoned takes back a volume that a create claimed more than PoolClaimGrace ago
// whose claim never bound it (the create failed after the claim, or a retry found its claim
// already bound): it goes back to the pool, reserved anew. A bound one is the session's.
func (c *Cluster) reclaimAbandoned(ctx context.Context, pv *corev1.PersistentVolume, now time.Time) error {
	if pv.Status.Phase != corev1.VolumeAvailable || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != "" || pv.DeletionTimestamp != nil {
		return nil
	}
	at, err := time.Parse(time.RFC3339, pv.Annotations[AnnotationClaimedAt])
	if err == nil && now.Sub(at) <= PoolClaimGrace {
		return nil
	}
	pv.Labels = c.poolLabels(pv.Labels, PoolReady)
	delete(pv.Labels, LabelSession)
	delete(pv.Annotations, AnnotationClaimedAt)
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
	pv.Spec.ClaimRef = poolClaimRef(c.opts.Namespace, newPoolClaimName())
	_, err = c.cs.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{FieldManager: FieldManager})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound meanwhile, or gone
	}
	if err == nil {
		slog.InfoContext(ctx, "a warm volume claimed by a create that never bound it is back in the pool", "volume", pv.Name)
	}
	return c.pvError("update", pv.Name, err)
}

// releaseVolume lets a pooled volume go: reclaim policy Delete and a claimRef uid no claim
// has, so the PV controller finds its claim gone, marks it Released and its provisioner
// deletes it (with its storage; deleting the PersistentVolume object would leave that behind).
func (c *Cluster) releaseVolume(ctx context.Context, pv *corev1.PersistentVolume) error {
	ns, name := c.opts.Namespace, newPoolClaimName()
	if ref := pv.Spec.ClaimRef; ref != nil {
		ns, name = ref.Namespace, ref.Name
	}
	pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
	pv.Spec.ClaimRef = poolClaimRef(ns, name)
	pv.Spec.ClaimRef.UID = releasedUID
	_, err := c.cs.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{FieldManager: FieldManager})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil
	}
	return c.pvError("update", pv.Name, err)
}

// createPoolClaims creates n pool claims of size, each on a node workspace pods may run on
// (in turn), so that a WaitForFirstConsumer class provisions them without a pod, where the
// sessions will run.
func (c *Cluster) createPoolClaims(ctx context.Context, n int, size resource.Quantity) error {
	nodes, err := c.poolNodes(ctx)
	if err != nil {
		return err
	}
	if len(nodes) == 0 {
		return fmt.Errorf("kube: warm volume pool: no Ready node matches the node selector %v and tolerations", c.opts.NodeSelector)
	}
	first := rand.IntN(len(nodes))
	claims := c.cs.CoreV1().PersistentVolumeClaims(c.opts.Namespace)
	var errs []error
	for i := range n {
		pvc := poolClaim(c.opts, newPoolClaimName(), size, nodes[(first+i)%len(nodes)])
		if _, err := claims.Create(ctx, pvc, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			errs = append(errs, c.kubeError("create", session.ObjectPVC, pvc.Name, err))
		}
	}
	return joinErrs(errs)
}

// poolNodes are the names of the Ready, schedulable nodes that workspace pods may run on
// (Options.NodeSelector and Tolerations), sorted.
func (c *Cluster) poolNodes(ctx context.Context) ([]string, error) {
	sel := labels.SelectorFromSet(c.opts.NodeSelector).String()
	l, err := c.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, c.kubeError("list Nodes "+sel, "", "", err)
	}
	var out []string
	for i := range l.Items {
		if n := &l.Items[i]; nodeTakesWorkspaces(n, c.opts.Tolerations) {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// nodeTakesWorkspaces reports whether a workspace pod could be scheduled on n: Ready, not
// cordoned, and every NoSchedule or NoExecute taint tolerated.
func nodeTakesWorkspaces(n *corev1.Node, tolerations []corev1.Toleration) bool {
	if n.Spec.Unschedulable || n.DeletionTimestamp != nil {
		return false
	}
	ready := false
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			ready = cond.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		return false
	}
	for _, taint := range n.Spec.Taints {
		if taint.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !slices.ContainsFunc(tolerations, func(t corev1.Toleration) bool { return tolerates(t, taint) }) {
			return false
		}
	}
	return true
}

// tolerates is a toleration's match of a taint (Equal or Exists, by key and effect), for the
// tolerations ParseTolerations builds.
func tolerates(t corev1.Toleration, taint corev1.Taint) bool {
	if t.Effect != "" && t.Effect != taint.Effect {
		return false
	}
	if t.Key != "" && t.Key != taint.Key {
		return false
	}
	if t.Operator == corev1.TolerationOpExists {
		return true
	}
	return t.Value == taint.Value
}

// claimWarmVolume reserves a ready pooled volume for the claim named claim, before it is
// applied: the PV controller then binds the claim to it at once, WaitForFirstConsumer or not.
// Among the volumes that fit (class, capacity at least the request) it takes the smallest,
// in random order among equals so concurrent creates rarely reach for the same one; a volume
// another create took first (a conflict on its resourceVersion) is passed over. It reports
// the volume's name, "" when none was free (the claim is provisioned the cold way).
func (c *Cluster) claimWarmVolume(ctx context.Context, w workspace) (string, error) {
	pvs, err := c.poolVolumes(ctx, PoolReady) // one list per create: the ready ones only
	if err != nil {
		return "", err
	}
	var free []*corev1.PersistentVolume
	for i := range pvs {
		if pv := &pvs[i]; c.claimable(pv, w.storage) {
			free = append(free, pv)
		}
	}
	rand.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	slices.SortStableFunc(free, func(a, b *corev1.PersistentVolume) int {
		return a.Spec.Capacity.Storage().Cmp(*b.Spec.Capacity.Storage())
	})
	for _, pv := range free {
		pv.Labels = c.poolLabels(pv.Labels, PoolClaimed)
		pv.Labels[LabelSession] = w.ID
		if pv.Annotations == nil {
			pv.Annotations = map[string]string{}
		}
		pv.Annotations[AnnotationClaimedAt] = c.now().UTC().Format(time.RFC3339)
		pv.Spec.ClaimRef = poolClaimRef(c.opts.Namespace, w.names.Data)
		// From now on the volume lives and dies with the session's claim.
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
		_, err := c.cs.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{FieldManager: FieldManager})
		switch {
		case err == nil:
			return pv.Name, nil
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			continue // another create took it
		default:
			return "", c.pvError("update", pv.Name, err)
		}
	}
	return "", nil
}

// claimable reports whether pv is a ready pooled volume a claim of request in the configured
// class can take.
func (c *Cluster) claimable(pv *corev1.PersistentVolume, request resource.Quantity) bool {
	ref := pv.Spec.ClaimRef
	return pv.Labels[LabelPool] == PoolReady && pv.DeletionTimestamp == nil &&
		pv.Status.Phase == corev1.VolumeAvailable &&
		ref != nil && ref.UID == "" && strings.HasPrefix(ref.Name, PoolClaimPrefix) &&
		(c.opts.StorageClass == "" || pv.Spec.StorageClassName == c.opts.StorageClass) &&
		slices.Contains(pv.Spec.AccessModes, corev1.ReadWriteOnce) &&
		pv.Spec.Capacity.Storage().Cmp(request) >= 0
}

// fitsPool reports whether a ready volume is one the pool would provision today: the
// configured class and size. One that is not (the configuration changed) is released.
func (c *Cluster) fitsPool(pv *corev1.PersistentVolume, size resource.Quantity) bool {
	return (c.opts.StorageClass == "" || pv.Spec.StorageClassName == c.opts.StorageClass) &&
		pv.Spec.Capacity.Storage().Cmp(size) == 0
}

// poolClaim builds a pool claim: the session claim's shape (ReadWriteOnce, the configured
// class) at the pool's size, provisioned on node.
func poolClaim(o Options, name string, size resource.Quantity, node string) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   o.Namespace,
			Labels:      poolLabels(nil, PoolPending, o.Namespace),
			Annotations: map[string]string{AnnotationSelectedNode: node},
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
	if o.StorageClass != "" {
		pvc.Spec.StorageClassName = &o.StorageClass
	}
	return pvc
}

// poolClaimRef is a claimRef to claim name in ns without a uid: a reservation the PV
// controller completes when that claim exists.
func poolClaimRef(ns, name string) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: name}
}

// poolLabels are l with the pool's labels set to state, for the deployment whose sessions
// live in ns.
func poolLabels(l map[string]string, state, ns string) map[string]string {
	out := make(map[string]string, len(l)+4)
	maps.Copy(out, l)
	out[LabelManagedBy] = ManagedByValue
	out[LabelComponent] = ComponentPool
	out[LabelPool] = state
	out[LabelPoolNamespace] = ns
	return out
}

// poolLabels are l with the pool's labels set to state, for this deployment.
func (c *Cluster) poolLabels(l map[string]string, state string) map[string]string {
	return poolLabels(l, state, c.opts.Namespace)
}

// poolVolumeSelector selects the pool's volumes of the deployment in ns in the given states.
func poolVolumeSelector(ns string, states ...string) string {
	return fmt.Sprintf("%s=%s,%s=%s,%s in (%s)", LabelManagedBy, ManagedByValue, LabelPoolNamespace, ns, LabelPool, strings.Join(states, ","))
}

// poolClaimSelector selects the pool's claims.
func poolClaimSelector() string {
	return labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue, LabelPool: PoolPending}).String()
}

// newPoolClaimName is hyperbola-pool- and 8 random characters of [a-z0-9].
func newPoolClaimName() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return PoolClaimPrefix + string(b)
}

// pvError is kubeError for a PersistentVolume (cluster-scoped).
func (c *Cluster) pvError(op, name string, err error) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf("kube: %s PersistentVolume %s", op, name)
	if transient(err) {
		return &session.Error{Kind: session.KindUnavailable, Message: msg, Err: err}
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// joinErrs joins the non-nil errors; nil when there are none.
func joinErrs(errs []error) error {
	errs = slices.DeleteFunc(errs, func(e error) bool { return e == nil })
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("kube: warm volume pool: %w", errors.Join(errs...))
}
