package kube

import (
	"fmt"
	"maps"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Decisions the builders encode (each is a constant so a reviewer finds it in one place).
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
	// guarantees each workspace its share under contention.
	MemoryLimitFactor = 4
	// TmpSizeLimit bounds the workspace's /tmp (an emptyDir on the node's disk).
	TmpSizeLimit = "1Gi"

	// UserID and GroupID are code-server's user in the codercom/code-server image ("coder"):
	// the workspace and the backup run as it, so the backup can read every file the
	// workspace wrote.
	UserID  int64 = 1000
	GroupID int64 = 1000

	// IngressProxyTimeout is nginx's read/send timeout in seconds: code-server's websocket
	// stays open for as long as the tab is, and nginx would cut it after 60 s of silence.
	IngressProxyTimeout = "3600"
	// IngressProxyBodySize lets a user upload files of up to this size through the editor.
	IngressProxyBodySize = "100m"
	// ActivatorPortHTTPS and ActivatorPortHTTP are the activator Service's port when
	// Options.ActivatorPort is 0: 443 when the activator is reached over HTTPS (ActivatorHost
	// set, the hyperbola-activator Service of infra/modules/cluster-addons), 80 otherwise.
	ActivatorPortHTTPS int32 = 443
	ActivatorPortHTTP  int32 = 80

	// MetadataServerCIDR is the cloud metadata server, which hands out the node's (or the
	// workload identity's) credentials: a workspace must never reach it.
	MetadataServerCIDR = "169.254.169.254/32"

	// DefaultBackupDeadline bounds a backup Job's run (activeDeadlineSeconds).
	DefaultBackupDeadline = 30 * time.Minute
	// DefaultBackupTTL is how long a finished backup Job is kept (ttlSecondsAfterFinished).
	DefaultBackupTTL = 5 * time.Minute
	// BackupDir is where the backup volume is mounted in the backup Job.
	BackupDir = "/backups"
	// BackupGracePeriod is how long a backup pod has, once told to stop (its deadline passed),
	// to kill zip and remove its temporary archive before it is killed.
	BackupGracePeriod int64 = 30
)

// EgressDeniedCIDRs are the IPv4 ranges a workspace may not reach even though it may reach the
// internet: the metadata server, the private ranges (the cluster's nodes, pods and services
// and the VPC behind them), and the shared address space that GKE may use for pods.
// A workspace is a stranger's shell: it gets the internet, never the inside. IPv6 egress is
// not allowed at all (the policy has no IPv6 block).
var EgressDeniedCIDRs = []string{
	MetadataServerCIDR,
	"10.0.0.0/8",
	"172.16.0.0/12",
	"192.168.0.0/16",
	"100.64.0.0/10",
}

// Options are the deployment-wide settings of the builders and of Cluster.
type Options struct {
	Namespace string // where every session object lives
	Domain    string // workspaces are served at vs-code-<id>.<Domain>
	Port      int32  // code-server's port (USER_POD_PORT)

	StorageClass     string // "" = the cluster's default StorageClass
	IngressClass     string // "" = the cluster's default IngressClass
	ClusterIssuer    string // cert-manager ClusterIssuer; "" = no cert-manager annotation
	IngressNamespace string // namespace of the ingress controller's pods: the only ones that may reach a workspace

	// NodeSelector and Tolerations place workspace and backup pods (a dedicated node pool,
	// or the local cluster's real node in tests); empty, they run wherever the scheduler
	// puts them.
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration

	// Defaults for the Workspace fields that are empty.
	DefaultImage   string
	DefaultStorage string
	DefaultCPU     string
	DefaultMemory  string

	BackupPVC   string // the claim backups are written to, mounted at /backups
	BackupImage string // an image with a POSIX shell (find, du, df) and zip/unzip, as images/backup builds
	// BackupPodLabels are extra labels on backup pods (tests use hyperbola.dev/test-fail=true,
	// which a kwok stage of the local cluster fails).
	BackupPodLabels map[string]string
	BackupDeadline  time.Duration // 0 = DefaultBackupDeadline
	BackupTTL       time.Duration // 0 = DefaultBackupTTL

	// Wake on access (docs/operations/wake-on-access.md). With ActivatorService set, the
	// Ingress of a workspace that is not running (session.Workspace.Activator) sends its host
	// to that Service in Namespace instead of the workspace's; "" keeps every Ingress on its
	// workspace.
	ActivatorService string
	// ActivatorPort is the Service's port (0: 443 with ActivatorHost, 80 without).
	ActivatorPort int32
	// ActivatorHost, when set, is the activator's own host (session-api's run.app host):
	// nginx speaks HTTPS to it and sends it as Host (Cloud Run routes by Host); the workspace
	// host reaches the activator as X-Forwarded-Host.
	ActivatorHost string
	// ActivatorCASecret, when set with ActivatorHost, names a Secret in Namespace whose ca.crt
	// verifies the activator's certificate; with it nginx also sends SNI (ingress-nginx
	// applies its proxy-ssl-name and proxy-ssl-server-name only beside a proxy-ssl-secret).
	ActivatorCASecret string
}

// Validate checks the options.
func (o Options) Validate() error {
	dns := func(what, v string, check func(string) []string) error {
		if errs := check(v); len(errs) > 0 {
			return fmt.Errorf("kube options: %s %q: %s", what, v, strings.Join(errs, "; "))
		}
		return nil
	}
	optionalDNS := func(what, v string, check func(string) []string) error {
		if v == "" {
			return nil
		}
		return dns(what, v, check)
	}
	for _, err := range []error{
		dns("namespace", o.Namespace, validation.IsDNS1123Label),
		dns("domain", o.Domain, validation.IsDNS1123Subdomain),
		dns("ingress namespace", o.IngressNamespace, validation.IsDNS1123Label),
		dns("backup PVC", o.BackupPVC, validation.IsDNS1123Subdomain),
		optionalDNS("storage class", o.StorageClass, validation.IsDNS1123Subdomain),
		optionalDNS("ingress class", o.IngressClass, validation.IsDNS1123Subdomain),
		optionalDNS("activator service", o.ActivatorService, validation.IsDNS1035Label),
		optionalDNS("activator host", o.ActivatorHost, validation.IsDNS1123Subdomain),
		optionalDNS("activator CA secret", o.ActivatorCASecret, validation.IsDNS1123Subdomain),
	} {
		if err != nil {
			return err
		}
	}
	// The longest host: vs-code-<8>.<domain>.
	if n := len("vs-code-") + session.IDLength + 1 + len(o.Domain); n > validation.DNS1123SubdomainMaxLength {
		return fmt.Errorf("kube options: domain %q makes workspace hosts %d characters long (at most %d)", o.Domain, n, validation.DNS1123SubdomainMaxLength)
	}
	switch {
	case o.Port < 1 || o.Port > 65535:
		return fmt.Errorf("kube options: port %d is not a port number", o.Port)
	case strings.TrimSpace(o.BackupImage) == "":
		return fmt.Errorf("kube options: backup image is empty")
	case o.BackupDeadline < 0 || o.BackupTTL < 0:
		return fmt.Errorf("kube options: backup deadline and TTL must not be negative")
	case o.ActivatorPort < 0 || o.ActivatorPort > 65535:
		return fmt.Errorf("kube options: activator port %d is not a port number", o.ActivatorPort)
	case o.ActivatorCASecret != "" && o.ActivatorHost == "":
		return fmt.Errorf("kube options: an activator CA secret needs the activator host it verifies")
	}
	if err := validateBackupPodLabels(o.BackupPodLabels); err != nil {
		return fmt.Errorf("kube options: %w", err)
	}
	return o.validatePlacement()
}

// spec is what every workspace builder needs: the names, labels and annotations of a session.
type spec struct {
	names       Names
	labels      map[string]string // user labels + ours (component workspace)
	selector    map[string]string // ours only
	annotations map[string]string
}

func newSpec(ws session.Workspace) (spec, error) {
	n, err := NamesFor(ws.ID)
	if err != nil {
		return spec{}, err
	}
	l, err := Labels(ws.ID, ComponentWorkspace, ws.Labels)
	if err != nil {
		return spec{}, err
	}
	sel, err := SelectorLabels(ws.ID, ComponentWorkspace)
	if err != nil {
		return spec{}, err
	}
	return spec{names: n, labels: l, selector: sel, annotations: Annotations(ws)}, nil
}

// Annotations are the annotations of every workspace object: owner, creation time and idle
// timeout, so that Kubernetes alone is enough to rebuild the session list. Zero values are
// left out.
func Annotations(ws session.Workspace) map[string]string {
	a := map[string]string{}
	if ws.UserID != "" {
		a[AnnotationUserID] = ws.UserID
	}
	if !ws.CreatedAt.IsZero() {
		a[AnnotationCreatedAt] = ws.CreatedAt.UTC().Format(time.RFC3339)
	}
	if ws.IdleTimeout > 0 {
		a[AnnotationIdleTimeout] = ws.IdleTimeout.String()
	}
	return a
}

// quantity parses a workspace's resource field, falling back to def when it is empty.
func quantity(field, v, def string) (resource.Quantity, error) {
	if strings.TrimSpace(v) == "" {
		v = def
	}
	q, err := resource.ParseQuantity(strings.TrimSpace(v))
	if err != nil {
		return resource.Quantity{}, session.Invalid(field, "%s %q is not a resource quantity (e.g. 250m, 256Mi, 5Gi)", field, v)
	}
	if q.Sign() <= 0 {
		return resource.Quantity{}, session.Invalid(field, "%s %q must be positive", field, v)
	}
	return q, nil
}

// PersistentVolumeClaim builds the session's data claim, vs-code-<id>-data: ReadWriteOnce, the
// workspace's size (which may grow, never shrink), the configured StorageClass.
func PersistentVolumeClaim(ws session.Workspace, o Options) (*corev1ac.PersistentVolumeClaimApplyConfiguration, error) {
	s, err := newSpec(ws)
	if err != nil {
		return nil, err
	}
	size, err := quantity("storage", ws.Storage, o.DefaultStorage)
	if err != nil {
		return nil, err
	}
	pvcSpec := corev1ac.PersistentVolumeClaimSpec().
		WithAccessModes(corev1.ReadWriteOnce).
		WithResources(corev1ac.VolumeResourceRequirements().
			WithRequests(corev1.ResourceList{corev1.ResourceStorage: size}))
	if o.StorageClass != "" {
		pvcSpec.WithStorageClassName(o.StorageClass)
	}
	return corev1ac.PersistentVolumeClaim(s.names.Data, o.Namespace).
		WithLabels(s.labels).
		WithAnnotations(s.annotations).
		WithSpec(pvcSpec), nil
}

// restrictedContainer is the container security context of Kubernetes' "restricted" Pod
// Security Standard.
func restrictedContainer() *corev1ac.SecurityContextApplyConfiguration {
	return corev1ac.SecurityContext().
		WithAllowPrivilegeEscalation(false).
		WithCapabilities(corev1ac.Capabilities().WithDrop(corev1.Capability("ALL")))
}

// restrictedPod runs every container as code-server's user, with the runtime's seccomp profile.
func restrictedPod() *corev1ac.PodSecurityContextApplyConfiguration {
	return corev1ac.PodSecurityContext().
		WithRunAsNonRoot(true).
		WithRunAsUser(UserID).
		WithRunAsGroup(GroupID).
		WithFSGroup(GroupID).
		// Only chown the volume when its root does not already belong to the group: a
		// workspace with many files would otherwise wait for a recursive chown at every wake.
		WithFSGroupChangePolicy(corev1.FSGroupChangeOnRootMismatch).
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
}

// Deployment builds the workspace, vs-code-<id>: one code-server pod (or none, asleep) with
// /app on the session's claim. The strategy is Recreate: a ReadWriteOnce volume cannot be
// shared by an old and a new pod on different nodes.
func Deployment(ws session.Workspace, o Options) (*appsv1ac.DeploymentApplyConfiguration, error) {
	s, err := newSpec(ws)
	if err != nil {
		return nil, err
	}
	if ws.Replicas < 0 || ws.Replicas > 1 {
		return nil, session.Invalid("replicas", "a workspace runs 0 or 1 pods, not %d", ws.Replicas)
	}
	cpu, err := quantity("cpu", ws.CPU, o.DefaultCPU)
	if err != nil {
		return nil, err
	}
	mem, err := quantity("memory", ws.Memory, o.DefaultMemory)
	if err != nil {
		return nil, err
	}
	image := strings.TrimSpace(ws.Image)
	if image == "" {
		image = o.DefaultImage
	}
	if image == "" {
		return nil, session.Invalid("image", "image is required")
	}
	memLimit := resource.NewQuantity(mem.Value()*MemoryLimitFactor, resource.BinarySI)
	tmpLimit := resource.MustParse(TmpSizeLimit)

	container := corev1ac.Container().
		WithName(ContainerName).
		WithImage(image).
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
				WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(s.names.Auth).WithKey(PasswordKey)))).
		WithPorts(corev1ac.ContainerPort().
			WithName(PortName).
			WithContainerPort(o.Port).
			WithProtocol(corev1.ProtocolTCP)).
		WithResources(corev1ac.ResourceRequirements().
			WithRequests(corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}).
			WithLimits(corev1.ResourceList{corev1.ResourceMemory: *memLimit})).
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
				WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().WithClaimName(s.names.Data)),
			corev1ac.Volume().WithName("tmp").
				WithEmptyDir(corev1ac.EmptyDirVolumeSource().WithSizeLimit(tmpLimit)),
		)

	return appsv1ac.Deployment(s.names.Workspace, o.Namespace).
		WithLabels(s.labels).
		WithAnnotations(s.annotations).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(ws.Replicas).
			WithRevisionHistoryLimit(2).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(s.selector)).
			WithStrategy(appsv1ac.DeploymentStrategy().WithType(appsv1.RecreateDeploymentStrategyType)).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(s.labels).
				WithSpec(podSpec))), nil
}

// Service builds the workspace's ClusterIP Service, vs-code-<id>, port <Port> → http.
func Service(ws session.Workspace, o Options) (*corev1ac.ServiceApplyConfiguration, error) {
	s, err := newSpec(ws)
	if err != nil {
		return nil, err
	}
	return corev1ac.Service(s.names.Workspace, o.Namespace).
		WithLabels(s.labels).
		WithAnnotations(s.annotations).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(s.selector).
			WithPorts(corev1ac.ServicePort().
				WithName(PortName).
				WithProtocol(corev1.ProtocolTCP).
				WithPort(o.Port).
				WithTargetPort(intstr.FromString(PortName)))), nil
}

// The ingress-nginx annotations of a route to the activator.
const (
	AnnotationBackendProtocol    = "nginx.ingress.kubernetes.io/backend-protocol"
	AnnotationUpstreamVhost      = "nginx.ingress.kubernetes.io/upstream-vhost"
	AnnotationProxySSLSecret     = "nginx.ingress.kubernetes.io/proxy-ssl-secret"
	AnnotationProxySSLVerify     = "nginx.ingress.kubernetes.io/proxy-ssl-verify"
	AnnotationProxySSLName       = "nginx.ingress.kubernetes.io/proxy-ssl-name"
	AnnotationProxySSLServerName = "nginx.ingress.kubernetes.io/proxy-ssl-server-name"
)

// activatorPort is the activator Service's port the Ingress names.
func (o Options) activatorPort() int32 {
	switch {
	case o.ActivatorPort != 0:
		return o.ActivatorPort
	case o.ActivatorHost != "":
		return ActivatorPortHTTPS
	}
	return ActivatorPortHTTP
}

// RoutesToActivator reports whether the Ingress of ws sends its host to the activator.
func (o Options) RoutesToActivator(ws session.Workspace) bool {
	return ws.Activator && o.ActivatorService != ""
}

// Ingress builds the workspace's Ingress, vs-code-<id>, serving vs-code-<id>.<domain> over
// TLS with a certificate cert-manager writes to vs-code-<id>-tls. Its backend is the
// workspace's Service, or, while the workspace is not running and wake on access is on
// (Options.RoutesToActivator), the activator's Service with the annotations that reach it.
// Server-side apply drops the activator's annotations again when the route goes back.
func Ingress(ws session.Workspace, o Options) (*networkingv1ac.IngressApplyConfiguration, error) {
	s, err := newSpec(ws)
	if err != nil {
		return nil, err
	}
	host := s.names.Host(o.Domain)
	ann := maps.Clone(s.annotations)
	ann["nginx.ingress.kubernetes.io/proxy-read-timeout"] = IngressProxyTimeout
	ann["nginx.ingress.kubernetes.io/proxy-send-timeout"] = IngressProxyTimeout
	ann["nginx.ingress.kubernetes.io/proxy-body-size"] = IngressProxyBodySize
	if o.ClusterIssuer != "" {
		ann["cert-manager.io/cluster-issuer"] = o.ClusterIssuer
	}
	backend := networkingv1ac.IngressServiceBackend().
		WithName(s.names.Workspace).
		WithPort(networkingv1ac.ServiceBackendPort().WithName(PortName))
	if o.RoutesToActivator(ws) {
		backend = networkingv1ac.IngressServiceBackend().
			WithName(o.ActivatorService).
			WithPort(networkingv1ac.ServiceBackendPort().WithNumber(o.activatorPort()))
		if o.ActivatorHost != "" {
			ann[AnnotationBackendProtocol] = "HTTPS"
			ann[AnnotationUpstreamVhost] = o.ActivatorHost
			if o.ActivatorCASecret != "" {
				ann[AnnotationProxySSLSecret] = o.Namespace + "/" + o.ActivatorCASecret
				ann[AnnotationProxySSLVerify] = "on"
				ann[AnnotationProxySSLName] = o.ActivatorHost
				ann[AnnotationProxySSLServerName] = "on"
			}
		}
	}
	ingSpec := networkingv1ac.IngressSpec().
		WithTLS(networkingv1ac.IngressTLS().WithHosts(host).WithSecretName(s.names.TLS)).
		WithRules(networkingv1ac.IngressRule().
			WithHost(host).
			WithHTTP(networkingv1ac.HTTPIngressRuleValue().
				WithPaths(networkingv1ac.HTTPIngressPath().
					WithPath("/").
					WithPathType(networkingv1.PathTypePrefix).
					WithBackend(networkingv1ac.IngressBackend().WithService(backend)))))
	if o.IngressClass != "" {
		ingSpec.WithIngressClassName(o.IngressClass)
	}
	return networkingv1ac.Ingress(s.names.Workspace, o.Namespace).
		WithLabels(s.labels).
		WithAnnotations(ann).
		WithSpec(ingSpec), nil
}

// NetworkPolicy builds the workspace's NetworkPolicy, vs-code-<id>, for its pods only:
//   - ingress only from pods in the ingress controller's namespace, on the workspace's port;
//   - egress to DNS (UDP and TCP 53) anywhere, and to the IPv4 internet except
//     EgressDeniedCIDRs (the metadata server and every private range).
func NetworkPolicy(ws session.Workspace, o Options) (*networkingv1ac.NetworkPolicyApplyConfiguration, error) {
	s, err := newSpec(ws)
	if err != nil {
		return nil, err
	}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	return networkingv1ac.NetworkPolicy(s.names.Workspace, o.Namespace).
		WithLabels(s.labels).
		WithAnnotations(s.annotations).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(s.selector)).
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress).
			WithIngress(networkingv1ac.NetworkPolicyIngressRule().
				WithFrom(networkingv1ac.NetworkPolicyPeer().
					WithNamespaceSelector(metav1ac.LabelSelector().
						WithMatchLabels(map[string]string{corev1.LabelMetadataName: o.IngressNamespace}))).
				WithPorts(networkingv1ac.NetworkPolicyPort().WithProtocol(tcp).WithPort(intstr.FromInt32(o.Port)))).
			WithEgress(
				networkingv1ac.NetworkPolicyEgressRule().
					WithPorts(
						networkingv1ac.NetworkPolicyPort().WithProtocol(udp).WithPort(intstr.FromInt32(53)),
						networkingv1ac.NetworkPolicyPort().WithProtocol(tcp).WithPort(intstr.FromInt32(53)),
					),
				networkingv1ac.NetworkPolicyEgressRule().
					WithTo(networkingv1ac.NetworkPolicyPeer().
						WithIPBlock(networkingv1ac.IPBlock().WithCIDR("0.0.0.0/0").WithExcept(EgressDeniedCIDRs...))),
			)), nil
}

// Secret builds the session's Secret, vs-code-<id>-auth, as it is CREATED (never applied, so
// that an existing password is never replaced): immutable, type Opaque, key PASSWORD, and
// Hyperbola's own labels. Its user labels and annotations are then kept in step by applying
// SecretMetadata, which owns them alone (so a removed user label is removed).
func Secret(ws session.Workspace, o Options) (*corev1ac.SecretApplyConfiguration, error) {
	n, err := NamesFor(ws.ID)
	if err != nil {
		return nil, err
	}
	if ws.Password == "" {
		return nil, session.Invalid("password", "the workspace's password is empty")
	}
	sel, err := SelectorLabels(ws.ID, ComponentWorkspace)
	if err != nil {
		return nil, err
	}
	return corev1ac.Secret(n.Auth, o.Namespace).
		WithLabels(sel).
		WithType(corev1.SecretTypeOpaque).
		WithImmutable(true).
		WithData(map[string][]byte{PasswordKey: []byte(ws.Password)}), nil
}

// SecretMetadata is the part of the session's Secret that is applied at every Apply: its
// labels and annotations, never its data.
func SecretMetadata(ws session.Workspace, o Options) (*corev1ac.SecretApplyConfiguration, error) {
	s, err := newSpec(ws)
	if err != nil {
		return nil, err
	}
	return corev1ac.Secret(s.names.Auth, o.Namespace).
		WithLabels(s.labels).
		WithAnnotations(s.annotations), nil
}

// BackupRequest is one backup attempt of a session.
type BackupRequest struct {
	ID      string
	Attempt int
	// Time names the zip (UTC, to the second).
	Time time.Time
	// UserID and Labels are copied from the session's claim onto the Job and its pod.
	UserID string
	Labels map[string]string
}

// BackupFile is the zip's file name: <id>-<UTC time, e.g. 20261126T020304Z>.zip.
func BackupFile(id string, t time.Time) string {
	return id + "-" + t.UTC().Format("20060102T150405Z") + ".zip"
}

// BackupLocation is where the backup of session id taken at t is written:
// pvc://<backup pvc>/<id>/<file>.zip.
func BackupLocation(o Options, id string, t time.Time) string {
	return "pvc://" + o.BackupPVC + "/" + id + "/" + BackupFile(id, t)
}

// backupScript runs as code-server's user with the data volume read-only, after the workspace's
// pod is gone (the session core waits for it). It writes nothing but the archive, and a zip
// under its final name is always complete and tested:
//   - it refuses to start when a file cannot be read (the reason names the files) or when the
//     backup volume has less room than the workspace's files take (uncompressed: the bound
//     that holds whatever zip makes of them), before writing anything;
//   - it archives regular files, directories and symlinks (as links); sockets and FIFOs are a
//     program's runtime state, not data, and zip cannot read a socket;
//   - zip writes into a hidden directory of this attempt beside the target (zip keeps its own
//     temporary file beside its archive), the archive is tested (unzip -t), synced and renamed
//     out of it; the directory is removed on every exit path, a stop (the Job's deadline)
//     included, and one that a killed attempt left behind is removed by the next;
//   - every long step runs in the background and is waited for, so a stop is handled at once
//     (a shell runs its trap only between commands), well inside the pod's grace period.
//
// An empty workspace gives an empty (valid) zip.
const backupScript = `set -eu
dir="` + BackupDir + `/$SESSION_ID"
work="$dir/.partial-$BACKUP_FILE"
scratch=/tmp/backup
child=""
cleanup() {
  if [ -n "$child" ]; then kill -9 "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  rm -rf "$work"
}
fail() {
  cleanup
  printf '%s\n' "$*" | head -c 3500 > /dev/termination-log
  printf 'backup failed: %s\n' "$*" >&2
  exit 1
}
trap 'fail "the backup was stopped before it finished (it ran out of time); nothing was written"' TERM INT HUP
# run CMD...: CMD in the background, waited for; run_from FILE CMD...: the same with stdin
# from FILE (a background command's stdin is /dev/null unless it is redirected itself)
run() { run_from /dev/null "$@"; }
run_from() {
  in=$1
  shift
  "$@" < "$in" &
  child=$!
  rc=0
  wait "$child" || rc=$?
  child=""
  return "$rc"
}
mkdir -p "$dir" "$scratch"
# what a killed attempt of this session left behind
rm -rf "$dir"/.partial-*
cd ` + WorkspaceDir + `
st=0
run find . -xdev -mindepth 1 ! -path './lost+found' ! -path './lost+found/*' \( -type f -o -type d -o -type l \) -print > "$scratch/files" 2> "$scratch/find.err" || st=$?
if [ "$st" -ne 0 ]; then
  fail "the backup cannot list the workspace's files: $(head -n 5 "$scratch/find.err" | tr '\n' ' ')— make the directories readable (chmod u+rx) or delete with skip_backup"
fi
nl="$(find . -xdev -name '*
*' | head -n 3 | tr '\n' ' ')"
if [ -n "$nl" ]; then
  fail "a file name in the workspace contains a line break, which the backup cannot archive: $nl— rename it, or delete with skip_backup"
fi
n=0
while IFS= read -r f; do
  if [ ! -L "$f" ] && { [ ! -r "$f" ] || { [ -d "$f" ] && [ ! -x "$f" ]; }; }; then
    n=$((n + 1))
    [ "$n" -le 5 ] && printf '%s\n' "$f" >> "$scratch/unreadable"
  fi
done < "$scratch/files"
if [ "$n" -gt 0 ]; then
  fail "$n file(s) in the workspace cannot be read by the backup (permission denied): $(tr '\n' ' ' < "$scratch/unreadable")— wake the workspace and make them readable (chmod u+r), or delete with skip_backup to drop them"
fi
run du -skx . > "$scratch/du"
need=$(cut -f1 < "$scratch/du")
free=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
if [ "$need" -gt "$free" ]; then
  fail "the backup volume has $free KiB free and this workspace's files take $need KiB: nothing was written; the operator must free or grow the backup volume"
fi
mkdir "$work"
if [ -s "$scratch/files" ]; then
  st=0
  run_from "$scratch/files" zip -q -y -@ "$work/archive.zip" 2> "$scratch/zip.err" || st=$?
  if [ "$st" -ne 0 ]; then
    fail "zip exited $st: $(head -c 1500 "$scratch/zip.err" | tr '\n' ' ')"
  fi
  st=0
  run unzip -tqq "$work/archive.zip" > "$scratch/test.err" 2>&1 || st=$?
  if [ "$st" -ne 0 ]; then
    fail "the archive failed its test: $(head -c 1500 "$scratch/test.err" | tr '\n' ' ')"
  fi
else
  { printf 'PK\005\006'; head -c 18 /dev/zero; } > "$work/archive.zip"
fi
run sync
mv -f "$work/archive.zip" "$dir/$BACKUP_FILE"
rm -rf "$work"
run sync
echo "$BACKUP_LOCATION" > /dev/termination-log
echo "$BACKUP_LOCATION"
`

// BackupJob builds the backup Job of an attempt, vs-code-<id>-backup-<attempt>: it mounts the
// session's claim READ-ONLY at /app and the backup claim at /backups, and writes
// /backups/<id>/<id>-<UTC time>.zip; the annotation hyperbola.dev/backup-location records
// where. One try (backoffLimit 0: a retry is a new attempt), a deadline, and the Job is
// removed 5 minutes after it finished.
func BackupJob(b BackupRequest, o Options) (*batchv1ac.JobApplyConfiguration, error) {
	n, err := NamesFor(b.ID)
	if err != nil {
		return nil, err
	}
	name, err := n.BackupJob(b.Attempt)
	if err != nil {
		return nil, err
	}
	if b.Time.IsZero() {
		return nil, fmt.Errorf("backup job %s: no time to name the zip", name)
	}
	jobLabels, err := Labels(b.ID, ComponentBackup, b.Labels)
	if err != nil {
		return nil, err
	}
	podLabels := maps.Clone(jobLabels)
	if err := validateBackupPodLabels(o.BackupPodLabels); err != nil {
		return nil, err
	}
	maps.Copy(podLabels, o.BackupPodLabels)
	workspacePods, err := SelectorLabels(b.ID, ComponentWorkspace)
	if err != nil {
		return nil, err
	}
	location := BackupLocation(o, b.ID, b.Time)
	ann := map[string]string{AnnotationBackupLocation: location}
	if b.UserID != "" {
		ann[AnnotationUserID] = b.UserID
	}
	deadline, ttl := o.BackupDeadline, o.BackupTTL
	if deadline == 0 {
		deadline = DefaultBackupDeadline
	}
	if ttl == 0 {
		ttl = DefaultBackupTTL
	}

	backup := corev1ac.Container().
		WithName("backup").
		WithImage(o.BackupImage).
		WithCommand("/bin/sh", "-c", backupScript).
		WithEnv(
			corev1ac.EnvVar().WithName("SESSION_ID").WithValue(b.ID),
			corev1ac.EnvVar().WithName("BACKUP_FILE").WithValue(BackupFile(b.ID, b.Time)),
			corev1ac.EnvVar().WithName("BACKUP_LOCATION").WithValue(location),
		).
		WithVolumeMounts(
			corev1ac.VolumeMount().WithName("data").WithMountPath(WorkspaceDir).WithReadOnly(true),
			corev1ac.VolumeMount().WithName("backups").WithMountPath(BackupDir),
			corev1ac.VolumeMount().WithName("tmp").WithMountPath("/tmp"),
		).
		WithResources(backupResources()).
		WithTerminationMessagePolicy(corev1.TerminationMessageFallbackToLogsOnError).
		WithSecurityContext(restrictedContainer().WithReadOnlyRootFilesystem(true))

	podSpec := o.place(corev1ac.PodSpec().
		WithRestartPolicy(corev1.RestartPolicyNever).
		WithAutomountServiceAccountToken(false).
		WithEnableServiceLinks(false).
		WithTerminationGracePeriodSeconds(BackupGracePeriod).
		WithSecurityContext(restrictedPod())).
		// The claim is ReadWriteOnce: if the workspace still runs, share its node.
		WithAffinity(corev1ac.Affinity().WithPodAffinity(corev1ac.PodAffinity().
			WithPreferredDuringSchedulingIgnoredDuringExecution(corev1ac.WeightedPodAffinityTerm().
				WithWeight(100).
				WithPodAffinityTerm(corev1ac.PodAffinityTerm().
					WithTopologyKey(corev1.LabelHostname).
					WithLabelSelector(metav1ac.LabelSelector().WithMatchLabels(workspacePods)))))).
		WithContainers(backup).
		WithVolumes(
			corev1ac.Volume().WithName("data").
				WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().
					WithClaimName(n.Data).WithReadOnly(true)),
			corev1ac.Volume().WithName("backups").
				WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().WithClaimName(o.BackupPVC)),
			corev1ac.Volume().WithName("tmp").WithEmptyDir(corev1ac.EmptyDirVolumeSource()),
		)

	return batchv1ac.Job(name, o.Namespace).
		WithLabels(jobLabels).
		WithAnnotations(ann).
		WithSpec(batchv1ac.JobSpec().
			WithBackoffLimit(0).
			WithActiveDeadlineSeconds(int64(deadline / time.Second)).
			WithTTLSecondsAfterFinished(int32(ttl / time.Second)).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(podLabels).
				WithAnnotations(ann).
				WithSpec(podSpec))), nil
}

func backupResources() *corev1ac.ResourceRequirementsApplyConfiguration {
	return corev1ac.ResourceRequirements().
		WithRequests(corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("64Mi"),
		}).
		WithLimits(corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")})
}
