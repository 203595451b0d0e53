package kube

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
)

func testPrune() PruneRequest {
	return PruneRequest{Name: "hyperbola-rm-0123456789ab", Locations: []string{
		"pvc://hyperbola-backups/zx98wv76/zx98wv76-20261127T080910Z.zip",
		"pvc://hyperbola-backups/zx98wv76/zx98wv76-20261128T000000Z.zip",
		"pvc://hyperbola-backups/ab12cd34/ab12cd34-20261101T101010Z.zip",
	}}
}

func TestGoldenPruneJob(t *testing.T) {
	got, err := PruneJob(testPrune(), testOptions())
	golden(t, "prune-job", got, err, &batchv1.Job{})
}

func TestPruneJob(t *testing.T) {
	ac, err := PruneJob(testPrune(), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	var j batchv1.Job
	roundTrip(t, ac, &j)
	ctr := j.Spec.Template.Spec.Containers[0]
	want := "zx98wv76/zx98wv76-20261127T080910Z.zip\nzx98wv76/zx98wv76-20261128T000000Z.zip\nab12cd34/ab12cd34-20261101T101010Z.zip"
	if len(ctr.Env) != 1 || ctr.Env[0].Name != "ARCHIVES" || ctr.Env[0].Value != want {
		t.Errorf("env %+v", ctr.Env)
	}
	if _, ok := j.Labels[LabelSession]; ok || j.Labels[LabelComponent] != ComponentPrune {
		t.Errorf("labels %v", j.Labels)
	}
	for _, m := range ctr.VolumeMounts {
		if m.Name == "backups" && m.ReadOnly {
			t.Error("the backups are mounted read-only: nothing could be removed")
		}
	}
	for name, r := range map[string]PruneRequest{
		"a bad name":          {Name: "rm/../x", Locations: testPrune().Locations},
		"a name too long":     {Name: "hyperbola-rm-0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab", Locations: testPrune().Locations},
		"no archive":          {Name: "hyperbola-rm-1"},
		"a path":              {Name: "hyperbola-rm-1", Locations: []string{"pvc://hyperbola-backups/zx98wv76/zx98wv76-20261127T080910Z.zip\n/etc/passwd"}},
		"another claim":       {Name: "hyperbola-rm-1", Locations: []string{"pvc://other/zx98wv76/zx98wv76-20261127T080910Z.zip"}},
		"a session directory": {Name: "hyperbola-rm-1", Locations: []string{"pvc://hyperbola-backups/zx98wv76"}},
	} {
		if _, err := PruneJob(r, testOptions()); err == nil {
			t.Errorf("%s was built", name)
		}
	}
}
