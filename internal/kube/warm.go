package kube

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
)

// The warm path's decisions (docs/operations/warm-path.md). A new workspace on GKE waits for
// what it may find missing: a node (the cluster autoscaler adds one), its image on that node,
// and its disk. Placeholders keep room for workspaces on running nodes; the pre-pull keeps
// the workspace image on every workspace node.
const (
	// PlaceholderName is the Deployment of placeholder pods: each holds one workspace's
	// requests on a workspace node at a priority below every workspace's, so the scheduler
	// evicts one for a workspace that finds no room (preemption), and the cluster autoscaler
	// adds a node for the evicted placeholder while the workspace starts.
	PlaceholderName = "hyperbola-placeholder"
	// PrepullName is the DaemonSet that runs the workspace image on every workspace node, so
	// the image is there before a workspace is put on the node.
	PrepullName = "hyperbola-prepull"
	// DefaultPlaceholderPriorityClass is the placeholders' PriorityClass when the options name
	// none. Its value is -10: below a workspace's (0, the default, no class), and not below
	// the cluster autoscaler's expendable-pods cutoff (-10: pods below it never make the
	// autoscaler add a node, which would leave an evicted placeholder pending for ever);
	// preemptionPolicy Never, so a placeholder never evicts anything itself.
	DefaultPlaceholderPriorityClass = "hyperbola-placeholder"

	// ComponentPlaceholder and ComponentPrepull are the warm path's components: their objects
	// belong to no session.
	ComponentPlaceholder = "placeholder"
	ComponentPrepull     = "prepull"

	// PlaceholderContainer and PrepullContainer name the containers.
	PlaceholderContainer = "placeholder"
	PrepullContainer     = "prepull"

	// idleScript does nothing until it is stopped, then exits at once: the workspace image's
	// own entrypoint (code-server) is replaced, and /bin/sh is in every image a workspace
	// runs (images/workspace's busybox, code-server's Debian). A shell that is PID 1 ignores
	// SIGTERM unless it traps it, so the trap is what lets a preempted placeholder go now.
	// 2147483647 seconds, not "infinity": busybox's sleep may not read the word.
	idleScript = "trap 'exit 0' TERM INT; sleep 2147483647 & wait"
	// WarmGracePeriodSeconds is how long a placeholder or pre-pull pod is given to stop: a
	// workspace that preempts a placeholder waits for it to be gone, and it has nothing to
	// save.
	WarmGracePeriodSeconds int64 = 1

	// PrepullCPU and PrepullMemory are the pre-pull pod's requests and (memory) limit: a
	// sleeping shell, which must not take a workspace's room on any node.
	PrepullCPU              = "1m"
	PrepullMemory           = "16Mi"
	PrepullEphemeralStorage = "16Mi"
	// PrepullMaxUnavailable is how many nodes' pre-pull pods a new image replaces at once: a
	// fifth of the pool pulls it at a time.
	PrepullMaxUnavailable = "20%"
)

// warmLabels are the labels of a warm-path object and its pods.
func warmLabels(component string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedByValue, LabelName: NameValue, LabelComponent: component}
}

// placeholderPriorityClass is the placeholders' PriorityClass.
func (o Options) placeholderPriorityClass() string {
	if o.PlaceholderPriorityClass != "" {
		return o.PlaceholderPriorityClass
	}
	return DefaultPlaceholderPriorityClass
}

// validateWarm checks the warm path's options: with it on, a workspace's image and requests.
func (o Options) validateWarm() error {
	switch {
	case o.WarmPlaceholders < 0:
		return fmt.Errorf("kube options: %d warm placeholders: must not be negative", o.WarmPlaceholders)
	case (o.WarmPlaceholders > 0 || o.WarmPrepull) && o.WorkspaceImage == "":
		return errors.New("kube options: the warm path needs the workspace image")
	case o.WarmPlaceholders > 0 && (o.WorkspaceCPU.Sign() <= 0 || o.WorkspaceMemory.Sign() <= 0):
		return errors.New("kube options: warm placeholders need a workspace's cpu and memory requests")
	}
	return nil
}

// warmPod is the pod spec the warm path's pods share: a workspace's placement and security,
// no token, and container.
func warmPod(o Options, container *corev1ac.ContainerApplyConfiguration) *corev1ac.PodSpecApplyConfiguration {
	return o.place(corev1ac.PodSpec().
		WithAutomountServiceAccountToken(false).
		WithEnableServiceLinks(false).
		WithTerminationGracePeriodSeconds(WarmGracePeriodSeconds).
		WithSecurityContext(restrictedPod()).
		WithContainers(container.
			WithImage(o.WorkspaceImage).
			WithCommand("/bin/sh", "-c", idleScript).
			WithTerminationMessagePolicy(corev1.TerminationMessageFallbackToLogsOnError).
			WithSecurityContext(restrictedContainer().WithReadOnlyRootFilesystem(true))))
}

// PlaceholderDeployment builds hyperbola-placeholder: Options.WarmPlaceholders pods that
// request what a default workspace requests (CPU, memory, ephemeral storage) where a
// workspace would run, at the placeholders' priority, and do nothing. Memory's limit is its
// request: a sleeping shell never comes near it.
func PlaceholderDeployment(o Options) *appsv1ac.DeploymentApplyConfiguration {
	labels := warmLabels(ComponentPlaceholder)
	eph := resource.MustParse(EphemeralStorageRequest)
	container := corev1ac.Container().
		WithName(PlaceholderContainer).
		WithResources(corev1ac.ResourceRequirements().
			WithRequests(corev1.ResourceList{corev1.ResourceCPU: o.WorkspaceCPU, corev1.ResourceMemory: o.WorkspaceMemory,
				corev1.ResourceEphemeralStorage: eph}).
			WithLimits(corev1.ResourceList{corev1.ResourceMemory: o.WorkspaceMemory, corev1.ResourceEphemeralStorage: eph}))
	return appsv1ac.Deployment(PlaceholderName, o.Namespace).
		WithLabels(labels).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(o.WarmPlaceholders).
			WithRevisionHistoryLimit(1).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
			// A rolling update would surge placeholders that ask the autoscaler for a node
			// only to replace do-nothing pods (a new image, new requests).
			WithStrategy(appsv1ac.DeploymentStrategy().WithType(appsv1.RecreateDeploymentStrategyType)).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(labels).
				WithSpec(warmPod(o, container).WithPriorityClassName(o.placeholderPriorityClass()))))
}

// PrepullDaemonSet builds hyperbola-prepull: on every node a workspace may run on, one pod of
// the workspace image that sleeps, so the kubelet pulls the image when the node joins (and
// when the image changes) rather than when a workspace is waiting for it, and keeps it: an
// image a running container uses is never garbage-collected. Its one container is the
// image: a separate init container of the same image would pull nothing more. Its requests
// are tiny, at the default priority: it takes no workspace's room and is not preempted.
func PrepullDaemonSet(o Options) *appsv1ac.DaemonSetApplyConfiguration {
	labels := warmLabels(ComponentPrepull)
	mem, eph := resource.MustParse(PrepullMemory), resource.MustParse(PrepullEphemeralStorage)
	container := corev1ac.Container().
		WithName(PrepullContainer).
		WithResources(corev1ac.ResourceRequirements().
			WithRequests(corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(PrepullCPU), corev1.ResourceMemory: mem,
				corev1.ResourceEphemeralStorage: eph}).
			WithLimits(corev1.ResourceList{corev1.ResourceMemory: mem, corev1.ResourceEphemeralStorage: eph}))
	maxUnavailable := intstr.FromString(PrepullMaxUnavailable)
	return appsv1ac.DaemonSet(PrepullName, o.Namespace).
		WithLabels(labels).
		WithSpec(appsv1ac.DaemonSetSpec().
			WithRevisionHistoryLimit(1).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(labels)).
			WithUpdateStrategy(appsv1ac.DaemonSetUpdateStrategy().
				WithType(appsv1.RollingUpdateDaemonSetStrategyType).
				WithRollingUpdate(appsv1ac.RollingUpdateDaemonSet().WithMaxUnavailable(maxUnavailable))).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(labels).
				WithSpec(warmPod(o, container))))
}

// Warm makes the cluster hold the warm path the options ask for: it server-side applies the
// placeholder Deployment when Options.WarmPlaceholders is set and the pre-pull DaemonSet when
// Options.WarmPrepull is, and deletes each when it is not (gone already is fine). It is
// idempotent and costs two requests, so every sweep calls it: a size changed in the
// configuration reaches the cluster with the next sweep, and nothing runs in the background.
func (c *Cluster) Warm(ctx context.Context) error {
	o := c.opts
	deployments, daemonSets := c.cs.AppsV1().Deployments(o.Namespace), c.cs.AppsV1().DaemonSets(o.Namespace)
	apply := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	return parallel(ctx,
		func(ctx context.Context) error {
			if o.WarmPlaceholders > 0 {
				_, err := deployments.Apply(ctx, PlaceholderDeployment(o), apply)
				return warmError("applying", "Deployment", PlaceholderName, err)
			}
			return warmError("deleting", "Deployment", PlaceholderName, ignoreNotFound(deployments.Delete(ctx, PlaceholderName, warmDelete())))
		},
		func(ctx context.Context) error {
			if o.WarmPrepull {
				_, err := daemonSets.Apply(ctx, PrepullDaemonSet(o), apply)
				return warmError("applying", "DaemonSet", PrepullName, err)
			}
			return warmError("deleting", "DaemonSet", PrepullName, ignoreNotFound(daemonSets.Delete(ctx, PrepullName, warmDelete())))
		},
	)
}

// warmDelete deletes the pods with their owner, in the background: the sweep does not wait.
func warmDelete() metav1.DeleteOptions {
	policy := metav1.DeletePropagationBackground
	return metav1.DeleteOptions{PropagationPolicy: &policy}
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func warmError(doing, kind, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("kube: warm path: %s %s %s: %w", doing, kind, name, err)
}
