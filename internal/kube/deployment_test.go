package kube

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

func TestGoldenDeployment(t *testing.T) {
	got, err := Deployment(testWorkspace(), testOptions())
	golden(t, "deployment", got, err, &appsv1.Deployment{})
}

func TestDeploymentDecisions(t *testing.T) {
	ws, o := testWorkspace(), testOptions()
	ws.Memory = "512Mi"
	ws.Replicas = 0
	ac, err := Deployment(ws, o)
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	roundTrip(t, ac, &d)
	if *d.Spec.Replicas != 0 {
		t.Errorf("replicas = %d, want 0", *d.Spec.Replicas)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if got := c.Resources.Limits.Memory().String(); got != "2Gi" {
		t.Errorf("memory limit = %s, want 2Gi (4 × 512Mi)", got)
	}
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		t.Error("a CPU limit is set")
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy = %s", d.Spec.Strategy.Type)
	}
	// The selector is ours only: user labels may change without touching it.
	for k := range d.Spec.Selector.MatchLabels {
		if !IsReservedLabelKey(k) {
			t.Errorf("selector holds user label %q", k)
		}
	}
	// The session core fills in the defaults: an empty field is refused, never guessed.
	for field, clear := range map[string]func(*session.Workspace){
		"image":   func(ws *session.Workspace) { ws.Image = " " },
		"storage": func(ws *session.Workspace) { ws.Storage = "" },
		"cpu":     func(ws *session.Workspace) { ws.CPU = "" },
		"memory":  func(ws *session.Workspace) { ws.Memory = "" },
	} {
		ws := testWorkspace()
		clear(&ws)
		if _, err := Deployment(ws, o); session.FieldOf(err) != field {
			t.Errorf("empty %s: err = %v", field, err)
		}
	}
	ws = testWorkspace()
	for _, r := range []int32{-1, 2} {
		ws.Replicas = r
		if _, err := Deployment(ws, o); session.FieldOf(err) != "replicas" {
			t.Errorf("replicas %d: err = %v, want invalid replicas", r, err)
		}
	}
}

// activityOptions are testOptions with the activity credential and the extension's settings.
func activityOptions() Options {
	o := testOptions()
	o.ActivityKey = []byte("an-activity-key-of-at-least-32-bytes!!")
	o.ActivityURL = "https://session-api-123456789012.us-central1.run.app"
	o.ActivityCPUThreshold = 0.5
	o.ActivitySyncSeconds = 300
	return o
}

func TestGoldenDeploymentActivity(t *testing.T) {
	got, err := Deployment(testWorkspace(), activityOptions())
	golden(t, "deployment-activity", got, err, &appsv1.Deployment{})
}

// TestDeploymentActivityEnv: the extension's environment is there only with an activity URL,
// the credential optional (old Secrets lack it); without the URL (a key alone included) the
// Deployment, and so its template stamp, is exactly what it was before the extension existed,
// so turning the key on rolls no workspace.
func TestDeploymentActivityEnv(t *testing.T) {
	plain, err := Deployment(testWorkspace(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.ActivityKey = activityOptions().ActivityKey
	keyOnly, err := Deployment(testWorkspace(), o)
	if err != nil {
		t.Fatal(err)
	}
	var a, b, c appsv1.Deployment
	roundTrip(t, plain, &a)
	roundTrip(t, keyOnly, &b)
	if a.Spec.Template.Annotations[AnnotationTemplate] != b.Spec.Template.Annotations[AnnotationTemplate] || len(b.Spec.Template.Spec.Containers[0].Env) != 1 {
		t.Fatalf("a key alone changed the Deployment: %v", b.Spec.Template.Spec.Containers[0].Env)
	}
	with, err := Deployment(testWorkspace(), activityOptions())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, with, &c)
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	ref := env["HYPERBOLA_ACTIVITY_TOKEN"].ValueFrom
	if env["HYPERBOLA_SESSION_ID"].Value != "ab12cd34" || env["HYPERBOLA_ACTIVITY_URL"].Value != activityOptions().ActivityURL ||
		env["HYPERBOLA_ACTIVITY_CPU_THRESHOLD"].Value != "0.5" || env["HYPERBOLA_ACTIVITY_SYNC_SECONDS"].Value != "300" ||
		ref == nil || ref.SecretKeyRef.Name != "vs-code-ab12cd34-auth" || ref.SecretKeyRef.Key != "ACTIVITY_TOKEN" ||
		ref.SecretKeyRef.Optional == nil || !*ref.SecretKeyRef.Optional {
		t.Fatalf("env %+v", env)
	}
	if a.Spec.Template.Annotations[AnnotationTemplate] == c.Spec.Template.Annotations[AnnotationTemplate] {
		t.Fatal("the template stamp did not change with the env")
	}
	// the same options build the same template (no roll from one apply to the next)
	again, _ := Deployment(testWorkspace(), activityOptions())
	var d appsv1.Deployment
	roundTrip(t, again, &d)
	if d.Spec.Template.Annotations[AnnotationTemplate] != c.Spec.Template.Annotations[AnnotationTemplate] {
		t.Fatal("the template stamp is not stable")
	}
	for name, mod := range map[string]func(*Options){
		"relative URL":   func(o *Options) { o.ActivityURL = "session-api" },
		"zero threshold": func(o *Options) { o.ActivityCPUThreshold = 0 },
		"zero sync":      func(o *Options) { o.ActivitySyncSeconds = 0 },
	} {
		o := activityOptions()
		mod(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
	if err := activityOptions().Validate(); err != nil {
		t.Fatal(err)
	}
}
