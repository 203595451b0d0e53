package kube

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Readiness is Observe for a session waiting for its pod (session.Cluster.Readiness): its
// Deployment and workspace pods, instead of Observe's seven lists. A missing Deployment gives
// an Observed with no kinds. The calls on one Cluster are answered together, in rounds
// (readinessbatch.go), unless Options.ReadinessInterval is negative.
func (c *Cluster) Readiness(ctx context.Context, id string) (*session.Observed, error) {
	if err := session.CheckID(id); err != nil {
		return nil, err
	}
	if c.rounds == nil {
		return c.readinessDirect(ctx, id)
	}
	obs, err := c.rounds.ask(ctx, id)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil, fmt.Errorf("kube: readiness of session %s in %s: %w", id, c.opts.Namespace, err)
	}
	return obs, err
}

// readinessDirect reads one session's readiness for itself: a GET of the Deployment and a
// list of the workspace's pods.
func (c *Cluster) readinessDirect(ctx context.Context, id string) (*session.Observed, error) {
	n, err := NamesFor(id)
	if err != nil {
		return nil, err
	}
	sel, err := ComponentSelector(id, ComponentWorkspace)
	if err != nil {
		return nil, err
	}
	dep, err := c.rd.AppsV1().Deployments(c.opts.Namespace).Get(ctx, n.Workspace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &session.Observed{ID: id}, nil
	}
	if err != nil {
		return nil, c.kubeError("get", session.ObjectDeployment, n.Workspace, err)
	}
	var pods []corev1.Pod
	if err := listStep(c, "Pods", sel, c.rd.CoreV1().Pods(c.opts.Namespace).List, podItems, &pods)(ctx); err != nil {
		return nil, err
	}
	obs := &session.Observed{ID: id, Kinds: []session.ObjectKind{session.ObjectDeployment}}
	observeReadiness(obs, dep, pods)
	return obs, nil
}

// observeReadiness fills in obs's replica counts, pods, Ready and PodProblem from the
// workspace's Deployment (nil when there is none) and pods.
func observeReadiness(obs *session.Observed, dep *appsv1.Deployment, pods []corev1.Pod) {
	if dep != nil {
		obs.DesiredReplicas = 1
		if dep.Spec.Replicas != nil {
			obs.DesiredReplicas = *dep.Spec.Replicas
		}
		obs.ReadyReplicas = dep.Status.ReadyReplicas
		obs.Ready = workspaceReady(dep, obs.DesiredReplicas, pods)
	}
	obs.Pods = len(pods)
	if !obs.Ready {
		obs.PodProblem = podProblem(dep, pods)
	}
}

// problemReasons are the container waiting reasons that will not resolve by waiting a moment.
var problemReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "ErrImageNeverPull": true, "InvalidImageName": true,
	"CrashLoopBackOff": true, "CreateContainerConfigError": true, "CreateContainerError": true,
	"RunContainerError": true, "PreStartHookError": true, "PostStartHookError": true,
}

// workspaceReady: the Deployment is rolled out at its current generation (with Recreate, an
// updated pod exists only once every old pod is gone) and a pod of it is Ready. The pod is
// read directly: the Deployment's own readyReplicas trails the pod by two controllers'
// updates (0.4-0.7 s measured on the local cluster under load).
//
// A pod that carries the Deployment's own template stamp (AnnotationTemplate) is of the
// current template whatever the Deployment's status says yet, so such a pod, Ready, is enough:
// under load the controller manager writes that status a second or more after the pod is
// Ready (measured by bench/core at concurrency 10 on the local cluster).
func workspaceReady(dep *appsv1.Deployment, desired int32, pods []corev1.Pod) bool {
	if desired < 1 {
		return false
	}
	if stamp := dep.Spec.Template.Annotations[AnnotationTemplate]; stamp != "" &&
		slices.ContainsFunc(pods, func(p corev1.Pod) bool { return p.Annotations[AnnotationTemplate] == stamp && podReady(p) }) {
		return true
	}
	if dep.Status.ObservedGeneration < dep.Generation || dep.Status.UpdatedReplicas < 1 {
		return false
	}
	return dep.Status.ReadyReplicas >= 1 || slices.ContainsFunc(pods, podReady)
}

// podReady: p is not being deleted and its Ready condition is true.
func podReady(p corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return false
	}
	return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
	})
}

// podProblem explains why the workspace cannot become ready, from the Deployment's
// ReplicaFailure condition (a pod that cannot even be created) and the pods' conditions and
// container states. "" when nothing is known to be wrong.
func podProblem(dep *appsv1.Deployment, pods []corev1.Pod) string {
	if dep != nil {
		for _, cond := range dep.Status.Conditions {
			if cond.Type == appsv1.DeploymentReplicaFailure && cond.Status == corev1.ConditionTrue {
				return joinNonEmpty(": ", cond.Reason, cond.Message)
			}
		}
	}
	pods = slices.Clone(pods)
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Status.Phase == corev1.PodFailed {
			return "pod " + p.Name + " failed: " + joinNonEmpty(": ", p.Status.Reason, p.Status.Message)
		}
		if why, ok := unschedulable(p); ok {
			return "pod " + p.Name + " is unschedulable: " + why
		}
		for _, s := range containerStatuses(p) {
			if w := s.State.Waiting; w != nil && problemReasons[w.Reason] {
				problem := fmt.Sprintf("pod %s container %s: %s", p.Name, s.Name, joinNonEmpty(": ", w.Reason, w.Message))
				// A crash loop's cause is what the container said as it ended (its
				// termination message, or its log's tail: FallbackToLogsOnError).
				if t := s.LastTerminationState.Terminated; t != nil {
					problem += fmt.Sprintf("; it exited %d (%s): %s", t.ExitCode, t.Reason, lastLines(t.Message, 5))
				}
				return problem
			}
		}
	}
	return ""
}

// unschedulable reports whether the scheduler could not place pod p, with its message.
func unschedulable(p corev1.Pod) (string, bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Message, true
		}
	}
	return "", false
}

// containerStatuses are the statuses of a pod's init containers, then of its containers.
func containerStatuses(p corev1.Pod) []corev1.ContainerStatus {
	return append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...)
}

// lastLines returns the last n non-empty lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := slices.DeleteFunc(strings.Split(strings.TrimSpace(s), "\n"), func(l string) bool { return strings.TrimSpace(l) == "" })
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func joinNonEmpty(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return strings.TrimSpace(s) == "" }), sep)
}
