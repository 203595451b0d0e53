package kube

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
)

func TestGoldenBackupJob(t *testing.T) {
	got, err := BackupJob(testBackup(), testOptions())
	golden(t, "backup-job", got, err, &batchv1.Job{})
}

func TestBackupJob(t *testing.T) {
	o := testOptions()
	o.BackupPodLabels = map[string]string{"hyperbola.dev/test-fail": "true"}
	o.BackupDeadline = 10 * time.Minute
	ac, err := BackupJob(testBackup(), o)
	if err != nil {
		t.Fatal(err)
	}
	var j batchv1.Job
	roundTrip(t, ac, &j)
	if j.Spec.Template.Labels["hyperbola.dev/test-fail"] != "true" {
		t.Error("backup pod label missing")
	}
	if _, ok := j.Labels["hyperbola.dev/test-fail"]; ok {
		t.Error("backup pod label on the Job itself")
	}
	if *j.Spec.ActiveDeadlineSeconds != 600 || *j.Spec.TTLSecondsAfterFinished != 300 || *j.Spec.BackoffLimit != 0 {
		t.Errorf("deadline %d ttl %d backoff %d", *j.Spec.ActiveDeadlineSeconds, *j.Spec.TTLSecondsAfterFinished, *j.Spec.BackoffLimit)
	}
	if got, want := j.Annotations[AnnotationBackupLocation], "pvc://hyperbola-backups/ab12cd34/ab12cd34-20261127T080910Z.zip"; got != want {
		t.Errorf("location = %s, want %s", got, want)
	}
	// The session's data is mounted read-only, at the volume and at the mount.
	for _, v := range j.Spec.Template.Spec.Volumes {
		if v.Name == "data" && !v.PersistentVolumeClaim.ReadOnly {
			t.Error("data volume is not read-only")
		}
	}
	for _, m := range j.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.Name == "data" && !m.ReadOnly {
			t.Error("data mount is not read-only")
		}
	}
	for _, bad := range []map[string]string{{LabelSession: "zz99zz99"}, {"job-name": "x"}, {"bad key": "x"}} {
		o.BackupPodLabels = bad
		if _, err := BackupJob(testBackup(), o); err == nil {
			t.Errorf("backup pod labels %v accepted", bad)
		}
		if err := o.Validate(); err == nil {
			t.Errorf("Validate accepted backup pod labels %v", bad)
		}
	}
	b := testBackup()
	b.Time = time.Time{}
	if _, err := BackupJob(b, testOptions()); err == nil {
		t.Error("a backup without a time was built")
	}
}
