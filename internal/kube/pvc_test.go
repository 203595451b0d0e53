package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestGoldenPVC(t *testing.T) {
	got, err := PersistentVolumeClaim(testWorkspace(), testOptions())
	golden(t, "pvc", got, err, &corev1.PersistentVolumeClaim{})
}
