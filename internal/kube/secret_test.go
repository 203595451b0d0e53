package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func TestGoldenSecret(t *testing.T) {
	got, err := Secret(testWorkspace(), testOptions())
	golden(t, "secret", got, err, &corev1.Secret{})
}

func TestSecretNeedsPassword(t *testing.T) {
	ws := testWorkspace()
	ws.Password = ""
	if _, err := Secret(ws, testOptions()); session.FieldOf(err) != "password" {
		t.Errorf("err = %v, want invalid password", err)
	}
}

func TestGoldenSecretActivity(t *testing.T) {
	got, err := Secret(testWorkspace(), activityOptions())
	golden(t, "secret-activity", got, err, &corev1.Secret{})
}

// TestSecretActivityToken: with an activity key the Secret holds the session's credential,
// which the key parses back to the session; without one, only the password.
func TestSecretActivityToken(t *testing.T) {
	var s corev1.Secret
	ac, err := Secret(testWorkspace(), activityOptions())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ac, &s)
	tok := string(s.Data[activity.SecretKey])
	if id, ok := activity.Parse(activityOptions().ActivityKey, tok); !ok || id != "ab12cd34" || len(s.Data) != 2 {
		t.Fatalf("token %q: %q %v, data %d keys", tok, id, ok, len(s.Data))
	}
	ac, err = Secret(testWorkspace(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	s = corev1.Secret{}
	roundTrip(t, ac, &s)
	if len(s.Data) != 1 || s.Data[PasswordKey] == nil {
		t.Fatalf("without a key: %v", s.Data)
	}
}
