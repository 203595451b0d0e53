package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestGoldenService(t *testing.T) {
	got, err := Service(testWorkspace(), testOptions())
	golden(t, "service", got, err, &corev1.Service{})
}
