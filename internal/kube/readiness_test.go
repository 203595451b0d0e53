package kube

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodProblem(t *testing.T) {
	waiting := func(reason, msg string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{
			ContainerStatuses: []corev1.ContainerStatus{{Name: ContainerName, State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}}}
	}
	unschedulable := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available: 1 Insufficient cpu."}}}}
	evicted := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{
		Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory."}}
	quota := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: "exceeded quota"}}}}
	for _, tc := range []struct {
		dep  *appsv1.Deployment
		pods []corev1.Pod
		want string
	}{
		{nil, []corev1.Pod{waiting("ContainerCreating", "")}, ""},
		{nil, []corev1.Pod{waiting("ImagePullBackOff", `Back-off pulling image "nope"`)}, `pod p container code-server: ImagePullBackOff: Back-off pulling image "nope"`},
		{nil, []corev1.Pod{waiting("CrashLoopBackOff", "back-off 5m0s")}, "pod p container code-server: CrashLoopBackOff: back-off 5m0s"},
		{nil, []corev1.Pod{unschedulable}, "pod p is unschedulable: 0/1 nodes are available: 1 Insufficient cpu."},
		{nil, []corev1.Pod{evicted}, "pod p failed: Evicted: The node was low on resource: memory."},
		{quota, nil, "FailedCreate: exceeded quota"},
	} {
		if got := podProblem(tc.dep, tc.pods); got != tc.want {
			t.Errorf("podProblem = %q, want %q", got, tc.want)
		}
	}
}
