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
