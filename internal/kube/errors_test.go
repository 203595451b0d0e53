package kube

import (
	"context"
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func TestErrorKinds(t *testing.T) {
	c := NewCluster(fake.NewClientset(), testOptions())
	gr := schema.GroupResource{Resource: "deployments"}
	for _, tc := range []struct {
		err  error
		want session.Kind
	}{
		{apierrors.NewServiceUnavailable("down"), session.KindUnavailable},
		{apierrors.NewTooManyRequests("slow down", 1), session.KindUnavailable},
		{apierrors.NewInternalError(errors.New("boom")), session.KindUnavailable},
		{errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), session.KindUnavailable},
		{apierrors.NewForbidden(gr, "x", errors.New("rbac")), session.KindInternal},
		{apierrors.NewConflict(gr, "x", errors.New("conflict")), session.KindInternal},
		{context.Canceled, session.KindInternal},
	} {
		err := c.kubeError("apply", "Deployment", "vs-code-ab12cd34", tc.err)
		if got := session.KindOf(err); got != tc.want {
			t.Errorf("%v: kind %s, want %s", tc.err, got, tc.want)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%v is not in the chain of %v", tc.err, err)
		}
		if !strings.Contains(err.Error(), "hyperbola/vs-code-ab12cd34") {
			t.Errorf("%v does not say what it was doing", err)
		}
	}
	// Scale and Password turn a missing object into the session's NotFound.
	if err := c.Scale(context.Background(), "ab12cd34", 0); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Scale of a missing Deployment: %v", err)
	}
	if _, err := c.Password(context.Background(), "ab12cd34"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Password of a missing Secret: %v", err)
	}
	if _, err := c.StartBackup(context.Background(), "ab12cd34", 1); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("StartBackup without a claim: %v", err)
	}
	if b, err := c.BackupStatus(context.Background(), "ab12cd34", 1); err != nil || b.Phase != session.BackupMissing {
		t.Errorf("BackupStatus of a missing Job: %+v, %v", b, err)
	}
	// Nothing at all is an empty observation, not an error.
	obs, err := c.Observe(context.Background(), "ab12cd34")
	if err != nil || obs.Exists() || obs.ID != "ab12cd34" {
		t.Errorf("Observe of nothing: %+v, %v", obs, err)
	}
}
