package kube

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestFinished(t *testing.T) {
	job := func(conds ...batchv1.JobConditionType) *batchv1.Job {
		j := &batchv1.Job{}
		for _, c := range conds {
			j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: c, Status: corev1.ConditionTrue})
		}
		return j
	}
	for _, tc := range []struct {
		job  *batchv1.Job
		want bool
	}{
		{job(), false},
		{job(batchv1.JobSuspended), false},
		{job(batchv1.JobSuccessCriteriaMet), true}, // Complete follows once the pods are gone
		{job(batchv1.JobSuccessCriteriaMet, batchv1.JobComplete), true},
		{job(batchv1.JobFailureTarget), true},
		{job(batchv1.JobFailureTarget, batchv1.JobFailed), true},
	} {
		if got := finished(tc.job); got != tc.want {
			t.Errorf("finished(%v) = %v", tc.job.Status.Conditions, got)
		}
	}
}
