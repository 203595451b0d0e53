package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func TestGoldenSecret(t *testing.T) {
	got, err := Secret(testWorkspace(), testOptions())
	golden(t, "secret", got, err, &corev1.Secret{})
}

func TestGoldenSecretMetadata(t *testing.T) {
	got, err := SecretMetadata(testWorkspace(), testOptions())
	golden(t, "secret-metadata", got, err, &corev1.Secret{})
}

func TestSecretNeedsPassword(t *testing.T) {
	ws := testWorkspace()
	ws.Password = ""
	if _, err := Secret(ws, testOptions()); session.FieldOf(err) != "password" {
		t.Errorf("err = %v, want invalid password", err)
	}
	// The metadata needs none.
	if _, err := SecretMetadata(ws, testOptions()); err != nil {
		t.Error(err)
	}
}
