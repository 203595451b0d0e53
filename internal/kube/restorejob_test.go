package kube

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
)

// testRestore fills session ab12cd34 from an archive of another (deleted) session.
func testRestore() RestoreRequest {
	ws := testWorkspace()
	return RestoreRequest{
		ID:       ws.ID,
		Attempt:  1,
		Location: "pvc://hyperbola-backups/zx98wv76/zx98wv76-20261127T080910Z.zip",
		UserID:   ws.UserID,
		Labels:   ws.Labels,
	}
}

func TestGoldenRestoreJob(t *testing.T) {
	o := testOptions()
	o.NodeSelector = map[string]string{"pool": "workspaces"}
	got, err := RestoreJob(testRestore(), o)
	golden(t, "restore-job", got, err, &batchv1.Job{})
}

func TestRestoreJob(t *testing.T) {
	o := testOptions()
	o.BackupPodLabels = map[string]string{"hyperbola.dev/test-fail": "true"}
	ac, err := RestoreJob(testRestore(), o)
	if err != nil {
		t.Fatal(err)
	}
	var j batchv1.Job
	roundTrip(t, ac, &j)
	if j.Name != "vs-code-ab12cd34-restore-1" || j.Labels[LabelComponent] != ComponentRestore || j.Labels[LabelSession] != "ab12cd34" {
		t.Errorf("name %s labels %v", j.Name, j.Labels)
	}
	if j.Spec.Template.Labels["hyperbola.dev/test-fail"] != "true" {
		t.Error("the backup pods' extra label is not on the restore pod")
	}
	if *j.Spec.BackoffLimit != 0 || *j.Spec.ActiveDeadlineSeconds != 1800 || *j.Spec.TTLSecondsAfterFinished != 300 {
		t.Errorf("backoff %d deadline %d ttl %d", *j.Spec.BackoffLimit, *j.Spec.ActiveDeadlineSeconds, *j.Spec.TTLSecondsAfterFinished)
	}
	// The session's volume read-write, the backups read-only, at the volume and at the mount.
	pod := j.Spec.Template.Spec
	readOnly := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim != nil {
			readOnly[v.PersistentVolumeClaim.ClaimName] = v.PersistentVolumeClaim.ReadOnly
		}
	}
	if ro, ok := readOnly["vs-code-ab12cd34-data"]; !ok || ro {
		t.Errorf("data claim: mounted %v, read-only %v", ok, ro)
	}
	if ro, ok := readOnly["hyperbola-backups"]; !ok || !ro {
		t.Errorf("backup claim: mounted %v, read-only %v", ok, ro)
	}
	for _, m := range pod.Containers[0].VolumeMounts {
		if (m.Name == "backups") != m.ReadOnly && m.Name != "tmp" {
			t.Errorf("mount %s read-only %v", m.Name, m.ReadOnly)
		}
	}
	env := map[string]string{}
	for _, e := range pod.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["ARCHIVE"] != "zx98wv76/zx98wv76-20261127T080910Z.zip" {
		t.Errorf("ARCHIVE = %q", env["ARCHIVE"])
	}
	// As code-server's user, never root.
	if sc := pod.SecurityContext; *sc.RunAsUser != UserID || !*sc.RunAsNonRoot {
		t.Errorf("pod security %+v", sc)
	}

	for _, bad := range []string{
		"pvc://other-claim/zx98wv76/zx98wv76-20261127T080910Z.zip",
		"pvc://hyperbola-backups/zx98wv76/../zx98wv76-20261127T080910Z.zip",
		"pvc://hyperbola-backups/zx98wv76/ab12cd34-20261127T080910Z.zip",
		"pvc://hyperbola-backups/zx98wv76/zx98wv76-20261127T080910Z.zip/x",
		"pvc://hyperbola-backups/zx98wv76/zx98wv76-20261127T080910Z.tar",
		"pvc://hyperbola-backups/zx98wv76/zx98wv76-yesterday.zip",
		"pvc://hyperbola-backups//zx98wv76-20261127T080910Z.zip",
		"/backups/zx98wv76/zx98wv76-20261127T080910Z.zip",
		"",
	} {
		r := testRestore()
		r.Location = bad
		if _, err := RestoreJob(r, o); err == nil || !strings.Contains(err.Error(), "not an archive on the backup claim") {
			t.Errorf("location %q: err = %v", bad, err)
		}
	}
	r := testRestore()
	r.Attempt = -1
	if _, err := RestoreJob(r, o); err == nil {
		t.Error("a negative attempt was built")
	}
}
