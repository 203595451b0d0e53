package kube

import (
	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Secret builds the session's Secret, vs-code-<id>-auth, as it is CREATED (never applied, so
// that an existing password is never replaced): immutable, type Opaque, key PASSWORD (and,
// with an activity key, the session's activity credential under activity.SecretKey), and
// Hyperbola's own labels. Its user labels and annotations are then kept in step by applying
// SecretMetadata, which owns them alone (so a removed user label is removed).
func Secret(ws session.Workspace, o Options) (*corev1ac.SecretApplyConfiguration, error) {
	w, err := resolve(ws, o)
	if err != nil {
		return nil, err
	}
	if err := checkPassword(ws.Password); err != nil {
		return nil, err
	}
	return secret(w, o), nil
}

func checkPassword(password string) error {
	if password == "" {
		return session.Invalid("password", "the workspace's password is empty")
	}
	return nil
}

func secret(w workspace, o Options) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(w.names.Auth, o.Namespace).
		WithLabels(w.selector).
		WithType(corev1.SecretTypeOpaque).
		WithImmutable(true).
		WithData(map[string][]byte{PasswordKey: []byte(w.Password)}).
		WithData(activityData(w, o))
}

// SecretMetadata is the part of the session's Secret that is applied at every Apply: its
// labels and annotations, never its data.
func SecretMetadata(ws session.Workspace, o Options) (*corev1ac.SecretApplyConfiguration, error) {
	return build(ws, o, secretMetadata)
}

func secretMetadata(w workspace, o Options) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(w.names.Auth, o.Namespace).
		WithLabels(w.labels).
		WithAnnotations(w.annotations)
}
