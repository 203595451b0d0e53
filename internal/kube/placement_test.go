package kube

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParsePlacement(t *testing.T) {
	sel, err := ParseNodeSelector(" hyperbola.dev/node=real , pool=workspaces ")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"hyperbola.dev/node": "real", "pool": "workspaces"}; !reflect.DeepEqual(sel, want) {
		t.Fatalf("node selector = %v, want %v", sel, want)
	}
	if sel, err := ParseNodeSelector(""); err != nil || sel != nil {
		t.Fatalf(`ParseNodeSelector("") = %v, %v`, sel, err)
	}
	tol, err := ParseTolerations("hyperbola.dev/node=real:NoSchedule,dedicated:NoExecute")
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.Toleration{
		{Key: "hyperbola.dev/node", Operator: corev1.TolerationOpEqual, Value: "real", Effect: corev1.TaintEffectNoSchedule},
		{Key: "dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	}
	if !reflect.DeepEqual(tol, want) {
		t.Fatalf("tolerations = %+v, want %+v", tol, want)
	}
	for _, bad := range []string{"novalue", "bad key=x"} {
		if _, err := ParseNodeSelector(bad); err == nil {
			t.Errorf("ParseNodeSelector(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"key=value", "key=value:Sometimes", "bad key:NoSchedule"} {
		if _, err := ParseTolerations(bad); err == nil {
			t.Errorf("ParseTolerations(%q) accepted", bad)
		}
	}
}

// Placement reaches both kinds of pod Hyperbola runs: the workspace's and the backup's.
func TestPlacement(t *testing.T) {
	o := testOptions()
	o.NodeSelector = map[string]string{"hyperbola.dev/node": "real"}
	o.Tolerations = []corev1.Toleration{{Key: "hyperbola.dev/node", Operator: corev1.TolerationOpEqual, Value: "real", Effect: corev1.TaintEffectNoSchedule}}
	dep, err := Deployment(testWorkspace(), o)
	if err != nil {
		t.Fatal(err)
	}
	job, err := BackupJob(testBackup(), o)
	if err != nil {
		t.Fatal(err)
	}
	for name, spec := range map[string]struct {
		sel map[string]string
		tol int
	}{
		"workspace": {dep.Spec.Template.Spec.NodeSelector, len(dep.Spec.Template.Spec.Tolerations)},
		"backup":    {job.Spec.Template.Spec.NodeSelector, len(job.Spec.Template.Spec.Tolerations)},
	} {
		if spec.sel["hyperbola.dev/node"] != "real" || spec.tol != 1 {
			t.Errorf("%s pod: node selector %v, %d tolerations", name, spec.sel, spec.tol)
		}
	}
	o.NodeSelector = map[string]string{"bad key": "x"}
	if err := o.Validate(); err == nil {
		t.Error("a bad node selector passed Validate")
	}
}
