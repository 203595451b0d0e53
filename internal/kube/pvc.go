package kube

import (
	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// PersistentVolumeClaim builds the session's data claim, vs-code-<id>-data: ReadWriteOnce, the
// workspace's size (which may grow, never shrink), the configured StorageClass.
func PersistentVolumeClaim(ws session.Workspace, o Options) (*corev1ac.PersistentVolumeClaimApplyConfiguration, error) {
	return build(ws, o, persistentVolumeClaim)
}

func persistentVolumeClaim(w workspace, o Options) *corev1ac.PersistentVolumeClaimApplyConfiguration {
	pvcSpec := corev1ac.PersistentVolumeClaimSpec().
		WithAccessModes(corev1.ReadWriteOnce).
		WithResources(corev1ac.VolumeResourceRequirements().
			WithRequests(corev1.ResourceList{corev1.ResourceStorage: w.storage}))
	if o.StorageClass != "" {
		pvcSpec.WithStorageClassName(o.StorageClass)
	}
	return corev1ac.PersistentVolumeClaim(w.names.Data, o.Namespace).
		WithLabels(w.labels).
		WithAnnotations(w.annotations).
		WithSpec(pvcSpec)
}
