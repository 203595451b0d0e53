package testenv

import (
	"testing"

	"k8s.io/client-go/metadata"
)

// Metadata is a metadata-only client of the cluster (what the control plane lists Secrets
// with, so that their data never leaves the API server in a list).
func (k *Kube) Metadata(t testing.TB) metadata.Interface {
	t.Helper()
	md, err := metadata.NewForConfig(k.Config)
	if err != nil {
		t.Fatalf("metadata client: %v", err)
	}
	return md
}
