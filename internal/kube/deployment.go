package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// The workspace's decisions (each a constant, so a reviewer finds it in one place).
const (
	// ContainerName is the workspace's container.
	ContainerName = "code-server"
	// PortName names the workspace's port on the container, the Service and the Ingress backend.
	PortName = "http"
	// WorkspaceDir is where the session's PVC is mounted and the folder code-server opens.
	WorkspaceDir = "/app"
	// HealthPath is code-server's unauthenticated health endpoint (the readiness probe).
	HealthPath = "/healthz"
	// SessionSocket is where code-server puts its IPC socket: on /tmp, never on the volume. A
	// socket left in /app by a killed pod made every backup fail (zip cannot read a socket),
	// and a fresh workspace logged "could not create socket" until a browser connected.
	SessionSocket = "/tmp/code-server-ipc.sock"
	// StartupPeriodSeconds is how often the kubelet asks a starting workspace whether it
	// listens: code-server listens 1-1.5 s after its start, and with the readiness probe's
	// 5 s period alone a probe that came too early cost a create or a wake up to 5 s more
	// (measured on the real node: wake 6.2-7.3 s against 1.6 s when the first probe hit). The
	// kubelet runs the readiness probe at once when the startup probe succeeds.
	StartupPeriodSeconds int32 = 1
	// StartupFailureThreshold gives code-server this many startup periods (seconds) to listen
	// before the kubelet restarts it: a cold node may take minutes to start node.
	StartupFailureThreshold int32 = 300

	// MemoryLimitFactor sets the memory limit to this multiple of the request: code-server and
	// the language servers it starts are bursty, the request is what the scheduler reserves,
	// and the limit keeps one workspace from taking a node's memory. There is no CPU limit:
	// CFS throttling makes an interactive editor feel broken, and the CPU request already
	// guarantees each workspace its share under contention. The session core owns the factor
	// (session.MemoryLimit), so a request whose limit would overflow is refused when checked.
	MemoryLimitFactor = session.MemoryLimitFactor
	// TmpSizeLimit bounds the workspace's /tmp (an emptyDir on the node's disk).
	TmpSizeLimit = "1Gi"
	// EphemeralStorageLimit bounds what the workspace writes on the node's disk: the writable
	// root filesystem (code-server's home, package caches), its logs and /tmp (which counts
	// towards the pod's total). Past it the kubelet evicts the pod; the user's files on the
	// volume are untouched. EphemeralStorageRequest is what the scheduler reserves: small,
	// as most workspaces write little outside /app.
	EphemeralStorageLimit   = "4Gi"
	EphemeralStorageRequest = "256Mi"
)

// Deployment builds the workspace, vs-code-<id>: one code-server pod (or none, asleep) with
// /app on the session's claim. The strategy is Recreate: a ReadWriteOnce volume cannot be
// shared by an old and a new pod on different nodes.
func Deployment(ws session.Workspace, o Options) (*appsv1ac.DeploymentApplyConfiguration, error) {
	return build(ws, o, deployment)
}

func deployment(w workspace, o Options) *appsv1ac.DeploymentApplyConfiguration {
	memLimit, _ := session.MemoryLimit(w.memory) // resolve refused a memory whose limit overflows
	tmpLimit := resource.MustParse(TmpSizeLimit)

	container := corev1ac.Container().
		WithName(ContainerName).
		WithImage(w.image).
		// The image's entrypoint (dumb-init + code-server) is kept; these are code-server's
		// flags. The password comes from $PASSWORD; telemetry and update checks are off
		// (a workspace must not phone home on the operator's behalf). Settings and
		// extensions live on the volume, beside the files, so they survive sleep and wake
		// (the container's home is ephemeral) and are part of the backup.
		WithArgs(
			"--bind-addr", fmt.Sprintf("0.0.0.0:%d", o.Port),
			"--auth", "password",
			"--disable-telemetry",
			"--disable-update-check",
			"--session-socket", SessionSocket,
			"--user-data-dir", WorkspaceDir+"/.hyperbola/code-server",
			"--extensions-dir", WorkspaceDir+"/.hyperbola/extensions",
			WorkspaceDir,
		).
		WithEnv(corev1ac.EnvVar().
			WithName(PasswordKey).
			WithValueFrom(corev1ac.EnvVarSource().
				WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(w.names.Auth).WithKey(PasswordKey)))).
		WithEnv(activityEnv(w, o)...).
		WithPorts(corev1ac.ContainerPort().
			WithName(PortName).
			WithContainerPort(o.Port).
			WithProtocol(corev1.ProtocolTCP)).
		WithResources(corev1ac.ResourceRequirements().
			WithRequests(corev1.ResourceList{corev1.ResourceCPU: w.cpu, corev1.ResourceMemory: w.memory,
				corev1.ResourceEphemeralStorage: resource.MustParse(EphemeralStorageRequest)}).
			WithLimits(corev1.ResourceList{corev1.ResourceMemory: memLimit,
				corev1.ResourceEphemeralStorage: resource.MustParse(EphemeralStorageLimit)})).
		WithStartupProbe(corev1ac.Probe().
			WithHTTPGet(corev1ac.HTTPGetAction().WithPath(HealthPath).WithPort(intstr.FromString(PortName))).
			WithPeriodSeconds(StartupPeriodSeconds).
			WithTimeoutSeconds(1).
			WithFailureThreshold(StartupFailureThreshold)).
		WithReadinessProbe(corev1ac.Probe().
			WithHTTPGet(corev1ac.HTTPGetAction().WithPath(HealthPath).WithPort(intstr.FromString(PortName))).
			WithPeriodSeconds(5).
			WithTimeoutSeconds(2).
			WithFailureThreshold(3)).
		WithVolumeMounts(
			corev1ac.VolumeMount().WithName("data").WithMountPath(WorkspaceDir),
			corev1ac.VolumeMount().WithName("tmp").WithMountPath("/tmp"),
		).
		WithTerminationMessagePolicy(corev1.TerminationMessageFallbackToLogsOnError).
		// code-server writes its settings and extensions under the home directory, inside
		// the image's filesystem: the root filesystem stays writable.
		WithSecurityContext(restrictedContainer().WithReadOnlyRootFilesystem(false))

	podSpec := o.place(corev1ac.PodSpec().
		WithAutomountServiceAccountToken(false).
		WithEnableServiceLinks(false).
		WithSecurityContext(restrictedPod()).
		WithContainers(container)).
		WithVolumes(
			corev1ac.Volume().WithName("data").
				WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().WithClaimName(w.names.Data)),
			corev1ac.Volume().WithName("tmp").
				WithEmptyDir(corev1ac.EmptyDirVolumeSource().WithSizeLimit(tmpLimit)),
		)

	return appsv1ac.Deployment(w.names.Workspace, o.Namespace).
		WithLabels(w.labels).
		WithAnnotations(w.annotations).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(w.Replicas).
			WithRevisionHistoryLimit(2).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(w.selector)).
			WithStrategy(appsv1ac.DeploymentStrategy().WithType(appsv1.RecreateDeploymentStrategyType)).
			WithTemplate(stampTemplate(corev1ac.PodTemplateSpec().
				WithLabels(w.labels).
				WithSpec(podSpec))))
}

// stampTemplate annotates tmpl with AnnotationTemplate: a hash of tmpl as built (its labels
// and spec), the same for the same workspace every time it is built.
func stampTemplate(tmpl *corev1ac.PodTemplateSpecApplyConfiguration) *corev1ac.PodTemplateSpecApplyConfiguration {
	b, err := json.Marshal(tmpl) // struct fields in order, map keys sorted: deterministic
	if err != nil {
		panic(fmt.Sprintf("kube: a pod template does not encode: %v", err)) // built here, of plain values
	}
	sum := sha256.Sum256(b)
	return tmpl.WithAnnotations(map[string]string{AnnotationTemplate: hex.EncodeToString(sum[:8])})
}
