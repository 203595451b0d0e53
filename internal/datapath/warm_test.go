package datapath_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// A session created on a warm volume (provisioned by local-path-provisioner for a pool claim,
// with no pod, before the session existed) becomes Ready, and its files are real: the tree
// written in the pod checksums the same in the pod and on the host directory of that volume.
func TestWarmVolumeHoldsRealFiles(t *testing.T) {
	f := newFixture(t, fixtureOptions{kube: func(o *kube.Options) { o.WarmVolumes, o.WarmVolumeSize = 1, "2Gi" }})
	ctx := context.Background()
	var ready string
	f.until("a warm volume ready", func() (bool, error) {
		if err := f.cluster.FillVolumePool(ctx); err != nil {
			return false, err
		}
		ready = f.readyVolume()
		return ready != "", nil
	})
	start := time.Now()
	s := f.create(session.CreateRequest{})
	t.Logf("timing: create→running on a warm volume %s", time.Since(start).Round(time.Millisecond))
	pvc, err := f.kube.Client.CoreV1().PersistentVolumeClaims(f.ns).Get(ctx, "vs-code-"+s.ID+"-data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Spec.VolumeName != ready {
		t.Fatalf("the session's claim is bound to %q, not to the warm volume %s", pvc.Spec.VolumeName, ready)
	}
	pv, err := f.kube.Client.CoreV1().PersistentVolumes().Get(ctx, ready, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pv.Labels[kube.LabelSession] != s.ID || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
		t.Fatalf("the warm volume is not the session's: labels %v, policy %s", pv.Labels, pv.Spec.PersistentVolumeReclaimPolicy)
	}
	f.exec(s.ID, writeTree)
	inPod := f.manifest(s.ID)
	root, err := f.kube.VolumeHostPath(ctx, f.ns, pvc.Name)
	if err != nil {
		t.Fatal(err)
	}
	onHost, err := treeManifest(filepath.Join(root, "tree"))
	if err != nil {
		t.Fatal(err)
	}
	if onHost != inPod {
		t.Fatalf("the warm volume's files on the host differ from the pod's:\n%s", diffLines(inPod, onHost))
	}
}

// readyVolume is the name of a ready pooled volume of the fixture's namespace, "" when none.
func (f *fixture) readyVolume() string {
	f.t.Helper()
	l, err := f.kube.Client.CoreV1().PersistentVolumes().List(context.Background(), metav1.ListOptions{
		LabelSelector: kube.LabelPool + "=" + kube.PoolReady})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, pv := range l.Items {
		if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == f.ns && ref.UID == "" && pv.Status.Phase == corev1.VolumeAvailable {
			return pv.Name
		}
	}
	return ""
}
