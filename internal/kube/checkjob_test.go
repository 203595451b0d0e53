package kube

import (
	"regexp"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
)

func testCheck() CheckRequest {
	loc := "pvc://hyperbola-backups/zx98wv76/zx98wv76-20261127T080910Z.zip"
	return CheckRequest{Name: CheckJobName(loc, "a1b2c3"), Location: loc}
}

func TestGoldenCheckJob(t *testing.T) {
	got, err := CheckJob(testCheck(), testOptions())
	golden(t, "check-job", got, err, &batchv1.Job{})
}

func TestCheckJob(t *testing.T) {
	r := testCheck()
	if !regexp.MustCompile(`^hyperbola-check-[0-9a-f]{10}-a1b2c3$`).MatchString(r.Name) {
		t.Errorf("name %q", r.Name)
	}
	if CheckJobName(r.Location, "a1b2c3") != r.Name || CheckJobName(r.Location+"x", "a1b2c3") == r.Name {
		t.Error("the name is not the location's")
	}
	o := testOptions()
	o.BackupPodLabels = map[string]string{"hyperbola.dev/test-fail": "true"}
	ac, err := CheckJob(r, o)
	if err != nil {
		t.Fatal(err)
	}
	var j batchv1.Job
	roundTrip(t, ac, &j)
	if _, ok := j.Labels[LabelSession]; ok || j.Labels[LabelManagedBy] != ManagedByValue || j.Labels[LabelComponent] != ComponentCheck {
		t.Errorf("labels %v", j.Labels)
	}
	if _, ok := j.Spec.Template.Labels["hyperbola.dev/test-fail"]; ok {
		t.Error("a check pod carries the backup pods' extra labels (a failed check is no answer)")
	}
	for _, v := range j.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && (v.PersistentVolumeClaim.ClaimName != "hyperbola-backups" || !v.PersistentVolumeClaim.ReadOnly) {
			t.Errorf("volume %+v", v)
		}
	}
	for _, m := range j.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.Name == "backups" && !m.ReadOnly {
			t.Error("the backups are mounted read-write")
		}
	}
	for _, bad := range []CheckRequest{
		{Name: "Bad_Name", Location: r.Location},
		{Name: r.Name, Location: "pvc://other/zx98wv76/zx98wv76-20261127T080910Z.zip"},
	} {
		if _, err := CheckJob(bad, o); err == nil {
			t.Errorf("%+v was built", bad)
		}
	}
}
