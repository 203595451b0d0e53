package sweep_test

import (
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// A sweep keeps the warm path the configuration asks for on the real API server (whose
// validation takes the placeholder Deployment and the pre-pull DaemonSet), and a sweep that
// reads zero sizes removes it.
func TestIntegrationSweepKeepsTheWarmPath(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	warmSweep := func(placeholders int32, prepull bool) *sweep.Report {
		pl := f.instanceWith(func(o *kube.Options, _ *session.Options) {
			o.WarmPlaceholders, o.WarmPrepull = placeholders, prepull
			o.WorkspaceImage = session.DefaultImage
			o.WorkspaceCPU, o.WorkspaceMemory = resource.MustParse(session.DefaultCPU), resource.MustParse(session.DefaultMemory)
		})
		s := sweep.New(sweep.Deps{Sessions: pl.Service, Store: pl.Store, Prober: &heartbeats{}, Now: f.clk.Now, Logger: f.log,
			Warmer: pl.Cluster}, sweep.Options{})
		rep, err := s.Run(ctx)
		if err != nil || rep.Errors != 0 || rep.WarmError != "" {
			t.Fatalf("sweep: %+v %v", rep, err)
		}
		return rep
	}
	apps := f.kube.Client.AppsV1()

	warmSweep(2, true)
	dep, err := apps.Deployments(f.ns).Get(ctx, kube.PlaceholderName, metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != 2 || dep.Spec.Template.Spec.PriorityClassName != kube.DefaultPlaceholderPriorityClass {
		t.Fatalf("placeholders after the sweep: %v %+v", err, dep)
	}
	if _, err := apps.DaemonSets(f.ns).Get(ctx, kube.PrepullName, metav1.GetOptions{}); err != nil {
		t.Fatalf("pre-pull after the sweep: %v", err)
	}

	warmSweep(0, false)
	if _, err := apps.Deployments(f.ns).Get(ctx, kube.PlaceholderName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("placeholders after a sweep at 0: %v", err)
	}
	if _, err := apps.DaemonSets(f.ns).Get(ctx, kube.PrepullName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pre-pull after a sweep with it off: %v", err)
	}
}
