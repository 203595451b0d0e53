package kube

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Options are the deployment-wide settings of the builders and of Cluster.
type Options struct {
	Namespace string // where every session object lives
	Domain    string // workspaces are served at vs-code-<id>.<Domain>
	Port      int32  // code-server's port (USER_POD_PORT)

	StorageClass     string // "" = the cluster's default StorageClass
	IngressClass     string // "" = the cluster's default IngressClass
	ClusterIssuer    string // cert-manager ClusterIssuer; "" = no cert-manager annotation
	IngressNamespace string // namespace of the ingress controller's pods: the only pods that may reach a workspace (while an Ingress is written)

	// Routing is RoutingIngress ("" too) or RoutingGateway (routing.go,
	// docs/operations/routing.md). In gateway mode each workspace gets an HTTPRoute on the
	// shared Gateway GatewayName in GatewayNamespace ("": DefaultGatewayName, Namespace),
	// which the sweep keeps (EnsureGateway) with class GatewayClass ("": DefaultGatewayClass),
	// its wildcard certificate from the Certificate Manager map GatewayCertMap (GKE) or the
	// Secret GatewayTLSSecret (other implementations), and, with GatewayAddress, the reserved
	// global static IP of that name.
	Routing          string
	GatewayName      string
	GatewayNamespace string
	GatewayClass     string
	GatewayCertMap   string
	GatewayAddress   string
	GatewayTLSSecret string
	// GatewaySourceCIDRs may reach a workspace's port in gateway mode: the Gateway's proxies
	// and health checkers (DefaultGatewaySourceCIDRs on GKE).
	GatewaySourceCIDRs []string
	// KeepIngress, in gateway mode, writes each workspace's Ingress beside its HTTPRoute (a
	// migration: both entry points serve every workspace while DNS moves); off, Apply removes
	// a workspace's Ingress.
	KeepIngress bool

	// The workspace NetworkPolicy's DNS: a workspace sends DNS queries (UDP and TCP 53) only to
	// the pods labelled DNSPodLabels in DNSNamespace (empty: DefaultDNSPodLabels in
	// DefaultDNSNamespace) and to DNSCIDRs (such as a node-local DNS cache, 169.254.20.10/32).
	DNSNamespace string
	DNSPodLabels map[string]string
	DNSCIDRs     []string
	// ProbeSourceCIDRs may reach a workspace's port from outside the cluster: the sweep's idle
	// probe, which asks code-server at the pod's IP (Cloud Run's Direct VPC egress subnet).
	// Empty, only the ingress controller may.
	ProbeSourceCIDRs []string

	// NodeSelector and Tolerations place workspace and backup pods (a dedicated node pool,
	// or the local cluster's real node in tests); empty, they run wherever the scheduler
	// puts them.
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration

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
	// "" is DefaultActivatorCASecret: with ActivatorHost, nginx verifies unless
	// ActivatorSkipVerify.
	ActivatorCASecret string
	// ActivatorSkipVerify opts out of verifying ActivatorHost (and so of SNI): for a local
	// cluster whose activator has no publicly trusted certificate. Never in production: a
	// sleeping workspace's password and cookies cross this hop.
	ActivatorSkipVerify bool

	// The warm path (docs/operations/warm-path.md): capacity and the image kept ready, so a
	// new workspace neither waits for a node to be added nor for its image to be pulled.
	// WarmPlaceholders is how many placeholder pods (PlaceholderDeployment) hold a
	// workspace's room on the workspace nodes (0: none, the Deployment is removed).
	WarmPlaceholders int32
	// WarmPrepull runs PrepullDaemonSet: every workspace node holds WorkspaceImage.
	WarmPrepull bool
	// PlaceholderPriorityClass is the PriorityClass of the placeholder pods ("" =
	// DefaultPlaceholderPriorityClass): below the workspaces' priority, so a workspace
	// preempts one. It is cluster-scoped, so infra and the local cluster create it.
	PlaceholderPriorityClass string
	// WorkspaceImage, WorkspaceCPU and WorkspaceMemory are a workspace as the session core
	// makes one by default (USER_POD_IMAGE, HYPERBOLA_CPU_REQUEST, HYPERBOLA_MEMORY_REQUEST):
	// a placeholder requests what it would, and the pre-pull pulls its image. Needed only
	// with the warm path on.
	WorkspaceImage  string
	WorkspaceCPU    resource.Quantity
	WorkspaceMemory resource.Quantity
	// WarmVolumes is the size of the warm volume pool (FillVolumePool, pool.go): volumes
	// provisioned ahead, so a new session's claim binds at once. 0 (the default) is off, and
	// then nothing reads or writes PersistentVolumes or Nodes (the control plane needs
	// cluster-scoped rights for them only with the pool on).
	WarmVolumes int
	// WarmVolumeSize is the pooled volumes' size, a quantity such as "5Gi": the sessions'
	// default size, so that a session asking for no more takes one.
	WarmVolumeSize string

	// ListPageSize is how many objects one list request asks for (Limit); 0 =
	// DefaultListPageSize. Tests set it small to cross page boundaries.
	ListPageSize int64

	// The activity credential and the IDE extension (internal/activity,
	// docs/operations/trust-model.md). ActivityKey, when set, puts each new session's
	// credential, activity.Token(ActivityKey, id), in its Secret under activity.SecretKey: a
	// Secret is created once and is immutable, so sessions made before the key was set, or
	// under another key, keep what they have. ActivityURL, when set, gives the workspace
	// container the extension's environment (activityEnv): the session's id, this URL, the
	// credential from the Secret (optional: old Secrets lack it), ActivityCPUThreshold (cores,
	// positive) and ActivitySyncSeconds (positive). "" gives none, and then Deployments are
	// built as before the extension existed.
	ActivityKey          []byte
	ActivityURL          string
	ActivityCPUThreshold float64
	ActivitySyncSeconds  int
	// ActivityReportSeconds, when positive, shortens the extension's one report a minute
	// (activity.EnvReportSeconds): for tests only, never a deployment setting.
	ActivityReportSeconds int

	// ReadinessInterval spaces Readiness's rounds: the callers waiting meanwhile are answered
	// together by one round of two lists (readinessbatch.go). 0 = DefaultReadinessInterval;
	// negative: every call reads for itself (a GET and a list).
	ReadinessInterval time.Duration
}

// DefaultReadinessInterval is how often Readiness reads the cluster at most, for any number of
// callers: a status poll waits at most this long for a round to start, and a hundred pollers
// cost two lists per interval instead of two hundred requests (the read budget, not the
// interval, bounds them under load). 100ms made a lone status call of a waiting session take
// 100ms (bench/api); 25ms keeps it near a round's own lists.
const DefaultReadinessInterval = 25 * time.Millisecond

// readinessInterval is the spacing of Readiness's rounds; ≤ 0: none (read per call).
func (o Options) readinessInterval() time.Duration {
	if o.ReadinessInterval == 0 {
		return DefaultReadinessInterval
	}
	return o.ReadinessInterval
}

// DefaultListPageSize bounds one list response: a namespace of thousands of sessions is listed
// in pages the API server and this process each hold one at a time, not in one response.
const DefaultListPageSize = 500

// pageSize is the Limit of one list request.
func (o Options) pageSize() int64 {
	if o.ListPageSize > 0 {
		return o.ListPageSize
	}
	return DefaultListPageSize
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
		dns("backup PVC", o.BackupPVC, validation.IsDNS1123Subdomain),
		optionalDNS("storage class", o.StorageClass, validation.IsDNS1123Subdomain),
		optionalDNS("ingress class", o.IngressClass, validation.IsDNS1123Subdomain),
		optionalDNS("DNS namespace", o.DNSNamespace, validation.IsDNS1123Label),
		optionalDNS("activator service", o.ActivatorService, validation.IsDNS1035Label),
		optionalDNS("activator host", o.ActivatorHost, validation.IsDNS1123Subdomain),
		optionalDNS("activator CA secret", o.ActivatorCASecret, validation.IsDNS1123Subdomain),
		optionalDNS("placeholder priority class", o.PlaceholderPriorityClass, validation.IsDNS1123Subdomain),
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
	case o.ListPageSize < 0:
		return fmt.Errorf("kube options: list page size %d is negative", o.ListPageSize)
	case o.ActivatorCASecret != "" && o.ActivatorHost == "":
		return fmt.Errorf("kube options: an activator CA secret needs the activator host it verifies")
	}
	if err := o.validateRouting(); err != nil {
		return err
	}
	if err := o.validateWarm(); err != nil {
		return err
	}
	if err := validateBackupPodLabels(o.BackupPodLabels); err != nil {
		return fmt.Errorf("kube options: %w", err)
	}
	if err := o.validateNetwork(); err != nil {
		return err
	}
	if err := o.validateVolumePool(); err != nil {
		return err
	}
	if err := o.validateActivity(); err != nil {
		return err
	}
	return o.validatePlacement()
}

// validateVolumePool checks the warm volume pool's settings.
func (o Options) validateVolumePool() error {
	if o.WarmVolumes < 0 {
		return fmt.Errorf("kube options: warm volumes %d is negative", o.WarmVolumes)
	}
	if o.WarmVolumes == 0 {
		return nil
	}
	_, err := o.warmSize()
	return err
}

// warmSize is WarmVolumeSize parsed: a positive quantity.
func (o Options) warmSize() (resource.Quantity, error) {
	q, err := resource.ParseQuantity(o.WarmVolumeSize)
	if err != nil || q.Sign() <= 0 {
		return q, fmt.Errorf("kube options: warm volume size %q is not a positive quantity such as 5Gi", o.WarmVolumeSize)
	}
	return q, nil
}
