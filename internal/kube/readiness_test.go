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

// A Ready pod stamped with the Deployment's template is ready before the Deployment's status
// says so; a Ready pod of another template, or one being deleted, is not, until the status
// says the current template is rolled out.
func TestWorkspaceReadyByTemplateStamp(t *testing.T) {
	one := int32(1)
	dep := func(stamp string, observed, updated, ready int32) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 2}}
		d.Spec.Replicas = &one
		if stamp != "" {
			d.Spec.Template.Annotations = map[string]string{AnnotationTemplate: stamp}
		}
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: int64(observed), UpdatedReplicas: updated, ReadyReplicas: ready}
		return d
	}
	pod := func(stamp string, ready, deleting bool) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationTemplate: stamp}}}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{}
		}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
		return p
	}
	for name, tc := range map[string]struct {
		dep  *appsv1.Deployment
		pods []corev1.Pod
		want bool
	}{
		"stamped pod ready, status behind":        {dep("a", 1, 0, 0), []corev1.Pod{pod("a", true, false)}, true},
		"stamped pod not ready":                   {dep("a", 1, 0, 0), []corev1.Pod{pod("a", false, false)}, false},
		"old template's pod ready, status behind": {dep("b", 1, 0, 1), []corev1.Pod{pod("a", true, false)}, false},
		"stamped pod being deleted":               {dep("a", 1, 0, 0), []corev1.Pod{pod("a", true, true)}, false},
		"status rolled out, pod ready":            {dep("b", 2, 1, 0), []corev1.Pod{pod("a", true, false)}, true},
		"unstamped Deployment, status behind":     {dep("", 1, 0, 0), []corev1.Pod{pod("", true, false)}, false},
		"unstamped Deployment, rolled out":        {dep("", 2, 1, 1), nil, true},
	} {
		if got := workspaceReady(tc.dep, 1, tc.pods); got != tc.want {
			t.Errorf("%s: workspaceReady = %v, want %v", name, got, tc.want)
		}
	}
	if workspaceReady(dep("a", 2, 1, 1), 0, []corev1.Pod{pod("a", true, false)}) {
		t.Error("scaled to zero, yet ready")
	}
}
