package kube

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func TestGoldenNetworkPolicy(t *testing.T) {
	got, err := NetworkPolicy(testWorkspace(), testOptions())
	golden(t, "networkpolicy", got, err, &networkingv1.NetworkPolicy{})
}
