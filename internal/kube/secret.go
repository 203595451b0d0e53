package kube

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Secret builds the session's Secret, vs-code-<id>-auth, whole, as Apply applies it when it
// has a password (one request, like the other objects): immutable, type Opaque, key PASSWORD
// (and, with an activity key, the session's activity credential under activity.SecretKey),
// the user's labels and Hyperbola's, and the annotations. Being immutable, an existing Secret
// never takes another password: the API server refuses the change, and Apply keeps the data
// the Secret holds (see Cluster.applySecret).
func Secret(ws session.Workspace, o Options) (*corev1ac.SecretApplyConfiguration, error) {
	w, err := resolve(ws, o)
	if err != nil {
		return nil, err
	}
	if err := checkPassword(ws.Password); err != nil {
		return nil, err
	}
	return secret(w, o, secretData(w, o)), nil
}

func checkPassword(password string) error {
	if password == "" {
		return session.Invalid("password", "the workspace's password is empty")
	}
	return nil
}

// secret is the whole Secret with data. Every Apply sends the data (the session's own, or what
// the Secret holds when Apply has no password), so the field manager keeps owning it: an
// apply without it would ask the API server to remove it, which an immutable Secret refuses.
func secret(w workspace, o Options, data map[string][]byte) *corev1ac.SecretApplyConfiguration {
	return corev1ac.Secret(w.names.Auth, o.Namespace).
		WithLabels(w.labels).
		WithAnnotations(w.annotations).
		WithType(corev1.SecretTypeOpaque).
		WithImmutable(true).
		WithData(data)
}

// secretData is a new Secret's data: the password and, with an activity key, the credential.
func secretData(w workspace, o Options) map[string][]byte {
	data := map[string][]byte{PasswordKey: []byte(w.Password)}
	maps.Copy(data, activityData(w, o))
	return data
}
