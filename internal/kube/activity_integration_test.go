package kube

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activity"
)

// TestIntegrationActivitySettings applies one workspace on the real API server as the
// activity settings change: the credential goes into the Secret once (a later key never
// replaces it), a key alone changes no Deployment, a URL changes the Deployment's template
// once (the env only), and applying the same settings again changes nothing.
func TestIntegrationActivitySettings(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local cluster")
	}
	c, cs := newCluster(t, func(o *Options) { o.ActivityKey = activityOptions().ActivityKey })
	ctx, ns := t.Context(), c.Options().Namespace
	ws := newWorkspace(t)
	n, _ := NamesFor(ws.ID)
	if err := c.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	dep := func() (int64, []string) {
		t.Helper()
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, n.Workspace, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var env []string
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			env = append(env, e.Name)
		}
		return d.Generation, env
	}
	token := func() string {
		t.Helper()
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, n.Auth, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return string(s.Data[activity.SecretKey])
	}
	if id, ok := activity.Parse(activityOptions().ActivityKey, token()); !ok || id != ws.ID {
		t.Fatalf("the Secret's credential %q", token())
	}
	gen, env := dep()
	if len(env) != 1 {
		t.Fatalf("a key alone gave the workspace env %v", env)
	}

	// the URL: the template changes once, by the env only
	o := c.Options()
	o.ActivityURL, o.ActivityCPUThreshold, o.ActivitySyncSeconds = activityOptions().ActivityURL, 0.5, 300
	withURL := NewCluster(cs, o)
	if err := withURL.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	gen2, env2 := dep()
	if gen2 != gen+1 || len(env2) != 6 {
		t.Fatalf("with the URL: generation %d → %d, env %v", gen, gen2, env2)
	}
	// (the controllers write the objects' status meanwhile: the spec's generation is compared)
	if err := withURL.Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if again, _ := dep(); again != gen2 {
		t.Fatalf("the same settings applied again changed the Deployment: generation %d → %d", gen2, again)
	}

	// another key: the Secret is created once, its credential stays (and no longer verifies)
	o.ActivityKey = []byte("a-rotated-activity-key-0123456789abcdef")
	if err := NewCluster(cs, o).Apply(ctx, ws); err != nil {
		t.Fatal(err)
	}
	if _, ok := activity.Parse(o.ActivityKey, token()); ok {
		t.Fatal("the Secret's credential was replaced under the new key")
	}
	if gen3, _ := dep(); gen3 != gen2 {
		t.Fatalf("a new key changed the Deployment: generation %d → %d", gen2, gen3)
	}
}
