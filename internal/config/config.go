// Package config reads Hyperbola's configuration from the environment. The seed's names are
// kept (REDIS_HOST, REDIS_PORT, SESSION_TTL, USER_POD_IMAGE, USER_POD_PORT, API_KEY); the rest
// are prefixed HYPERBOLA_.
package config

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
)

// Config is the whole configuration of the control plane.
type Config struct {
	// Redis
	RedisHost     string // REDIS_HOST (default "localhost")
	RedisPort     int    // REDIS_PORT (default 6379)
	RedisPassword string // REDIS_PASSWORD: the AUTH string ("" = no AUTH)
	// RedisCA is HYPERBOLA_REDIS_CA: the PEM text (not a path) of the CAs that verify the
	// server's certificate. Set, the client speaks TLS to REDIS_HOST:REDIS_PORT (Memorystore's
	// in-transit encryption, its server_ca_certs); "" = plain TCP.
	RedisCA     string
	RedisDB     int    // REDIS_DB
	RedisPrefix string // HYPERBOLA_REDIS_PREFIX (default "hyperbola:")

	// Sessions
	SessionTTL       time.Duration // SESSION_TTL in seconds (default 86400)
	IdleTimeout      time.Duration // HYPERBOLA_IDLE_TIMEOUT (default 15m)
	IdleConnectedMax time.Duration // HYPERBOLA_IDLE_CONNECTED_MAX: an open tab's time without use before it sleeps anyway (default 2h; 0 = no cap)
	UserPodImage     string        // USER_POD_IMAGE (default codercom/code-server:4.96.4)
	UserPodPort      int32         // USER_POD_PORT (default 8080)
	Namespace        string        // HYPERBOLA_NAMESPACE (default "hyperbola")
	Domain           string        // HYPERBOLA_DOMAIN (default "preview.hyperbola.in")
	StorageSize      string        // HYPERBOLA_STORAGE_SIZE (default "5Gi")
	StorageClass     string        // HYPERBOLA_STORAGE_CLASS ("" = the cluster's default)
	CPURequest       string        // HYPERBOLA_CPU_REQUEST (default "250m")
	MemoryRequest    string        // HYPERBOLA_MEMORY_REQUEST (default "256Mi")
	IngressClass     string        // HYPERBOLA_INGRESS_CLASS (default "nginx")
	ClusterIssuer    string        // HYPERBOLA_CLUSTER_ISSUER (default "letsencrypt")
	IngressNamespace string        // HYPERBOLA_INGRESS_NAMESPACE: where the ingress controller runs (default "ingress-nginx")
	// The workspace NetworkPolicy: DNS (port 53) only to the pods labelled DNSPodLabels in
	// DNSNamespace and to DNSCIDRs; the workspace port open to ProbeSourceCIDRs as well as to
	// the ingress controller.
	DNSNamespace     string   // HYPERBOLA_DNS_NAMESPACE: the cluster DNS's namespace (default "kube-system")
	DNSPodLabels     string   // HYPERBOLA_DNS_POD_LABELS: key=value,... of the cluster DNS's pods (default "k8s-app=kube-dns")
	DNSCIDRs         []string // HYPERBOLA_DNS_CIDRS: more DNS servers, port 53 only, such as NodeLocal DNSCache's 169.254.20.10/32
	ProbeSourceCIDRs []string // HYPERBOLA_PROBE_SOURCE_CIDRS: where the sweep's probe comes from (Cloud Run's Direct VPC egress subnet); empty = no such rule
	// Routing (docs/operations/routing.md): "ingress" (an Ingress and a certificate per
	// workspace) or "gateway" (an HTTPRoute per workspace on one shared Gateway with one
	// wildcard certificate).
	Routing            string        // HYPERBOLA_ROUTING: ingress (default) or gateway
	GatewayName        string        // HYPERBOLA_GATEWAY_NAME: the shared Gateway (default "hyperbola")
	GatewayNamespace   string        // HYPERBOLA_GATEWAY_NAMESPACE: its namespace (default: HYPERBOLA_NAMESPACE)
	GatewayClass       string        // HYPERBOLA_GATEWAY_CLASS (default "gke-l7-global-external-managed"; the local cluster's is "hyperbola-local")
	GatewayCertMap     string        // HYPERBOLA_GATEWAY_CERTMAP: GKE Certificate Manager map holding the wildcard certificate
	GatewayAddress     string        // HYPERBOLA_GATEWAY_ADDRESS: the name of a reserved global static IP for the Gateway
	GatewayTLSSecret   string        // HYPERBOLA_GATEWAY_TLS_SECRET: a wildcard certificate's Secret, for Gateway implementations other than GKE's
	GatewaySourceCIDRs []string      // HYPERBOLA_GATEWAY_SOURCE_CIDRS: where the Gateway's proxies reach a workspace from (default GKE's 35.191.0.0/16,130.211.0.0/22)
	KeepIngress        bool          // HYPERBOLA_KEEP_INGRESS: in gateway mode, keep writing each workspace's Ingress too (a migration; default false)
	BackupPVC          string        // HYPERBOLA_BACKUP_PVC (default "hyperbola-backups")
	BackupImage        string        // HYPERBOLA_BACKUP_IMAGE (default DefaultBackupImage)
	BackupDeadline     time.Duration // HYPERBOLA_BACKUP_DEADLINE: how long one backup may run (default 30m)
	// BackupRetention is HYPERBOLA_BACKUP_RETENTION: how long an archive is kept before the
	// sweep removes it, as a duration or in days ("30d", the default); 0 keeps archives forever.
	BackupRetention time.Duration
	NodeSelector    string        // HYPERBOLA_NODE_SELECTOR: key=value,... the nodes workspace and backup pods run on ("" = any)
	Tolerations     string        // HYPERBOLA_TOLERATIONS: key=value:Effect,key:Effect taints those pods tolerate
	TombstoneTTL    time.Duration // HYPERBOLA_TOMBSTONE_TTL: how long a deleted session stays visible (default 24h)
	// The warm volume pool (docs/operations/warm-path.md): volumes provisioned ahead, so a new
	// session's claim binds at once. Needs cluster-scoped rights on PersistentVolumes and Nodes.
	WarmVolumes    int    // HYPERBOLA_WARM_VOLUMES: how many (default 0: off)
	WarmVolumeSize string // HYPERBOLA_WARM_VOLUME_SIZE: their size (default HYPERBOLA_STORAGE_SIZE)

	// Kubernetes access
	Kubeconfig   string // KUBECONFIG ("" = in-cluster, or HYPERBOLA_KUBE_ENDPOINT)
	KubeContext  string // HYPERBOLA_KUBE_CONTEXT
	KubeEndpoint string // HYPERBOLA_KUBE_ENDPOINT: https://host of a GKE control plane, with Google credentials
	KubeCA       string // HYPERBOLA_KUBE_CA: base64 PEM CA of that endpoint
	// Client-side budgets of the Kubernetes clients, requests a second and at once: writes
	// (applies, patches, creates, deletes) and reads have one each, so reads never delay a
	// write. HYPERBOLA_KUBE_WRITE_QPS/BURST (default 300/600), HYPERBOLA_KUBE_READ_QPS/BURST
	// (default 50/100).
	KubeWriteQPS   float64
	KubeWriteBurst int
	KubeReadQPS    float64
	KubeReadBurst  int
	// ReadinessInterval is HYPERBOLA_READINESS_INTERVAL: how often a waiting session's
	// readiness is read at most, for all the status calls of an instance at once (default
	// 100ms; "off" reads per call).
	ReadinessInterval time.Duration

	// API
	APIKeys []string // API_KEYS (comma-separated) and API_KEY: keys of role admin
	// NamedKeys are keys with roles: API_KEYS_JSON (the JSON itself) or HYPERBOLA_API_KEYS_FILE
	// (a file holding it), [{"name","key","role","users":[...]}]; their rules are the API's
	// (stack.APIOptions checks them, naming NamedKeysFrom).
	NamedKeys       []NamedKey
	NamedKeysFrom   string // the variable NamedKeys were read from ("" when none)
	CreateRateLimit int    // HYPERBOLA_CREATE_RATE_LIMIT per IP per minute (default 100)
	APIRateLimit    int    // HYPERBOLA_API_RATE_LIMIT per key per minute (default 1200)
	ProbeRateLimit  int    // HYPERBOLA_PROBE_RATE_LIMIT: GET /health and GET /ready, each per IP per minute (default 120)
	AuthFailLimit   int    // HYPERBOLA_AUTH_FAIL_LIMIT: requests without a valid API key per IP per minute before 429 (default 30)
	// ReadyCacheTTL is HYPERBOLA_READY_CACHE_TTL: how long GET /ready's answer is served again
	// before Redis and the cluster are asked anew (default 5s).
	ReadyCacheTTL  time.Duration
	TrustedProxies []string // HYPERBOLA_TRUSTED_PROXIES: CIDRs whose X-Forwarded-For is believed
	ListenAddr     string   // HYPERBOLA_LISTEN (default 127.0.0.1:8080; PORT sets 0.0.0.0:PORT on Cloud Run)

	// Wake on access (docs/operations/wake-on-access.md): while a workspace is not running its
	// Ingress sends its host to the activator, served by the control plane. On only when both
	// ActivatorService and WakeSecret are set (WakeOnAccess).
	ActivatorService  string // HYPERBOLA_ACTIVATOR_SERVICE: Service in the workspace namespace that reaches the activator (default "hyperbola-activator"; set and empty disables)
	ActivatorHost     string // HYPERBOLA_ACTIVATOR_HOST: the activator's host (session-api's run.app host); set, the Ingress speaks HTTPS to it with this Host
	ActivatorPort     int32  // HYPERBOLA_ACTIVATOR_PORT: the Service's port (default 443 with ActivatorHost, 80 without)
	ActivatorCASecret string // HYPERBOLA_ACTIVATOR_CA_SECRET: Secret (key ca.crt) of CAs that verify ActivatorHost, with SNI ("": kube's default, hyperbola-activator-ca)
	// HYPERBOLA_ACTIVATOR_SKIP_VERIFY=true: nginx does not verify ActivatorHost (nor send SNI).
	// A local cluster's opt-out only: a sleeping workspace's password crosses this hop.
	ActivatorSkipVerify bool
	WakeSecret          string // HYPERBOLA_WAKE_SECRET: signs wake links and wake cookies; at least activator.MinSecret (32) bytes, checked when the activator is built

	// Firestore
	FirestoreProject string // GOOGLE_CLOUD_PROJECT ("" = no durable records)

	// Usage report prices (GET /usage)
	PricePerHour           float64 // HYPERBOLA_PRICE_PER_HOUR: one workspace running for an hour (default DefaultPricePerHour; 0 is free)
	StoragePricePerGBMonth float64 // HYPERBOLA_STORAGE_PRICE_PER_GB_MONTH: one GiB of volume for a month (default 0: storage left out)
	Currency               string  // HYPERBOLA_CURRENCY: three capital letters (default "USD")

	// Sweep
	SweepOIDCAudience       string // SWEEP_OIDC_AUDIENCE
	SweepOIDCServiceAccount string // SWEEP_OIDC_SERVICE_ACCOUNT

	// The sweep's probe and reconcile
	SweepProbeURL  string        // HYPERBOLA_SWEEP_PROBE_URL: the probe URL template with {id}, {pod_ip}, {namespace}, {port}, {domain} ("" = the sweep's in-cluster default; Cloud Run: http://{pod_ip}:{port}/healthz)
	ReconcileEvery time.Duration // HYPERBOLA_RECONCILE_EVERY: how often the sweep runs a reconcile (default 10m; 0 never)
	ReconcileGrace time.Duration // HYPERBOLA_RECONCILE_GRACE: objects with no record are left alone until this old (default 10m)

	// Alerts
	StuckAfter time.Duration // HYPERBOLA_STUCK_AFTER: a session in one pending step for longer is stuck, in the sweep's report and /metrics (default 30m)

	// Limits and quotas (docs/operations/operations.md). A maximum that is set and empty is off.
	MaxCPU     string // HYPERBOLA_MAX_CPU: one workspace's cpu request at most (default "4")
	MaxMemory  string // HYPERBOLA_MAX_MEMORY: one workspace's memory request at most (default "16Gi"; its limit is 4 times that)
	MaxStorage string // HYPERBOLA_MAX_STORAGE: one workspace's volume at most (default "100Gi")
	// ImageAllowlist is HYPERBOLA_IMAGE_ALLOWLIST, comma-separated: registry paths ending in
	// "/", exact references (tags or digests), or "*" for any image. Unset: USER_POD_IMAGE and
	// every image under its registry path (session.DefaultImageAllowlist).
	ImageAllowlist     []string
	MaxSessionsPerUser int // HYPERBOLA_MAX_SESSIONS_PER_USER: a user's sessions, deleted ones left out (default 0: no limit)
	MaxRunningPerUser  int // HYPERBOLA_MAX_RUNNING_PER_USER: a user's running (creating, running, waking) sessions (default 0: no limit)
	MaxRunning         int // HYPERBOLA_MAX_RUNNING: every running session of the deployment (default 0: no limit)

	// The warm path (docs/operations/warm-path.md), kept by every sweep.
	WarmPlaceholders         int    // HYPERBOLA_WARM_PLACEHOLDERS: placeholder pods holding a default workspace's room each (default 0: none)
	WarmPrepull              bool   // HYPERBOLA_WARM_PREPULL: keep USER_POD_IMAGE pulled on every workspace node (default false)
	PlaceholderPriorityClass string // HYPERBOLA_PLACEHOLDER_PRIORITY_CLASS: the placeholders' PriorityClass (default "hyperbola-placeholder")

	// The activity credential and the IDE extension (activity.go, docs/operations/trust-model.md).
	// ActivityKey is HYPERBOLA_ACTIVITY_KEY, or the file HYPERBOLA_ACTIVITY_KEY_FILE names: the
	// key each session's credential is derived from (at least activity.MinKeyBytes); "" = no
	// credentials are made or accepted.
	ActivityKey string
	// ActivityKeyFrom is the variable ActivityKey was read from ("" when none).
	ActivityKeyFrom string
	// ActivityURL is HYPERBOLA_ACTIVITY_URL: the control plane's base URL as a workspace reaches
	// it (https://session-api-....run.app); "" = workspaces get no activity settings, so the
	// extension stays silent and the heartbeat rule with its cap applies.
	ActivityURL          string
	ActivityCPUThreshold float64 // HYPERBOLA_ACTIVITY_CPU_THRESHOLD: cores over a minute that count as use (default 0.5)
	ActivitySyncSeconds  int     // HYPERBOLA_ACTIVITY_SYNC_SECONDS: the extension's longest wait between two reads of its state (default 300)
}

// The routing modes (HYPERBOLA_ROUTING).
const (
	RoutingIngress = "ingress"
	RoutingGateway = "gateway"
)

// DefaultGatewaySourceCIDRs is HYPERBOLA_GATEWAY_SOURCE_CIDRS's default: GKE's Google front
// ends and health checkers, which reach a workspace pod at its IP.
func DefaultGatewaySourceCIDRs() []string { return []string{"35.191.0.0/16", "130.211.0.0/22"} }

// DefaultPricePerHour is HYPERBOLA_PRICE_PER_HOUR's default: what one workspace with the
// default requests (250m CPU, 256Mi memory) costs per running hour on GKE Autopilot at
// us-central1 list prices (0.25 × $0.0445 per vCPU-hour + 0.25 × $0.0049225 per GiB-hour).
const DefaultPricePerHour = 0.0123

// The maximums of one workspace when the environment sets none: a generous editor with a
// language server and a build (4 cpu, 16Gi of memory), and a volume a course or a project fits
// in (100Gi). A deployment that needs more says so (HYPERBOLA_MAX_*), or sets one empty.
const (
	DefaultMaxCPU     = "4"
	DefaultMaxMemory  = "16Gi"
	DefaultMaxStorage = "100Gi"
)

// MaxWarmPlaceholders bounds HYPERBOLA_WARM_PLACEHOLDERS: each holds a workspace's room on a
// node that is paid for, so a number of four digits is a typo (and 1000 default workspaces
// already hold 250 CPUs).
const MaxWarmPlaceholders = 1000

// DefaultBackupImage is the backup image images/backup builds (a shell and zip, uid 1000),
// under the name the local cluster imports it as; a deployment pushes it to its own registry
// and sets HYPERBOLA_BACKUP_IMAGE (infra does).
const DefaultBackupImage = "localhost/hyperbola-backup:1"

// FromEnv reads the configuration from the environment.
func FromEnv() (*Config, error) { return FromLookup(os.LookupEnv) }

// FromLookup reads the configuration through lookup (os.LookupEnv, or a map in tests).
func FromLookup(lookup func(string) (string, bool)) (*Config, error) {
	r := reader{lookup: lookup}
	c := &Config{
		RedisHost:           r.str("REDIS_HOST", "localhost"),
		RedisPort:           r.int("REDIS_PORT", 6379),
		RedisPassword:       r.str("REDIS_PASSWORD", ""),
		RedisCA:             r.str("HYPERBOLA_REDIS_CA", ""),
		RedisDB:             r.int("REDIS_DB", 0),
		RedisPrefix:         r.str("HYPERBOLA_REDIS_PREFIX", "hyperbola:"),
		SessionTTL:          time.Duration(r.int("SESSION_TTL", int(session.DefaultSessionTTL/time.Second))) * time.Second,
		IdleTimeout:         r.dur("HYPERBOLA_IDLE_TIMEOUT", session.DefaultIdleTimeout),
		IdleConnectedMax:    r.dur("HYPERBOLA_IDLE_CONNECTED_MAX", session.DefaultIdleConnectedMax),
		UserPodImage:        r.str("USER_POD_IMAGE", session.DefaultImage),
		UserPodPort:         int32(r.int("USER_POD_PORT", 8080)),
		Namespace:           r.str("HYPERBOLA_NAMESPACE", "hyperbola"),
		Domain:              r.str("HYPERBOLA_DOMAIN", session.DefaultDomain),
		StorageSize:         r.str("HYPERBOLA_STORAGE_SIZE", session.DefaultStorage),
		StorageClass:        r.str("HYPERBOLA_STORAGE_CLASS", ""),
		CPURequest:          r.str("HYPERBOLA_CPU_REQUEST", session.DefaultCPU),
		MemoryRequest:       r.str("HYPERBOLA_MEMORY_REQUEST", session.DefaultMemory),
		IngressClass:        r.str("HYPERBOLA_INGRESS_CLASS", "nginx"),
		ClusterIssuer:       r.str("HYPERBOLA_CLUSTER_ISSUER", "letsencrypt"),
		IngressNamespace:    r.str("HYPERBOLA_INGRESS_NAMESPACE", "ingress-nginx"),
		DNSNamespace:        r.str("HYPERBOLA_DNS_NAMESPACE", "kube-system"),
		DNSPodLabels:        r.str("HYPERBOLA_DNS_POD_LABELS", "k8s-app=kube-dns"),
		DNSCIDRs:            r.cidrs("HYPERBOLA_DNS_CIDRS"),
		ProbeSourceCIDRs:    r.cidrs("HYPERBOLA_PROBE_SOURCE_CIDRS"),
		Routing:             strings.ToLower(r.str("HYPERBOLA_ROUTING", RoutingIngress)),
		GatewayName:         r.str("HYPERBOLA_GATEWAY_NAME", "hyperbola"),
		GatewayNamespace:    r.str("HYPERBOLA_GATEWAY_NAMESPACE", ""),
		GatewayClass:        r.str("HYPERBOLA_GATEWAY_CLASS", "gke-l7-global-external-managed"),
		GatewayCertMap:      r.str("HYPERBOLA_GATEWAY_CERTMAP", ""),
		GatewayAddress:      r.str("HYPERBOLA_GATEWAY_ADDRESS", ""),
		GatewayTLSSecret:    r.str("HYPERBOLA_GATEWAY_TLS_SECRET", ""),
		GatewaySourceCIDRs:  r.cidrs("HYPERBOLA_GATEWAY_SOURCE_CIDRS"),
		KeepIngress:         r.boolean("HYPERBOLA_KEEP_INGRESS", false),
		BackupPVC:           r.str("HYPERBOLA_BACKUP_PVC", "hyperbola-backups"),
		BackupImage:         r.str("HYPERBOLA_BACKUP_IMAGE", DefaultBackupImage),
		BackupDeadline:      r.dur("HYPERBOLA_BACKUP_DEADLINE", 30*time.Minute),
		BackupRetention:     r.days("HYPERBOLA_BACKUP_RETENTION", session.DefaultBackupRetention),
		NodeSelector:        r.str("HYPERBOLA_NODE_SELECTOR", ""),
		Tolerations:         r.str("HYPERBOLA_TOLERATIONS", ""),
		TombstoneTTL:        r.dur("HYPERBOLA_TOMBSTONE_TTL", 24*time.Hour),
		WarmVolumes:         r.int("HYPERBOLA_WARM_VOLUMES", 0),
		Kubeconfig:          r.str("KUBECONFIG", ""),
		KubeContext:         r.str("HYPERBOLA_KUBE_CONTEXT", ""),
		KubeEndpoint:        r.str("HYPERBOLA_KUBE_ENDPOINT", ""),
		KubeCA:              r.str("HYPERBOLA_KUBE_CA", ""),
		KubeWriteQPS:        r.float("HYPERBOLA_KUBE_WRITE_QPS", 300),
		KubeWriteBurst:      r.int("HYPERBOLA_KUBE_WRITE_BURST", 600),
		KubeReadQPS:         r.float("HYPERBOLA_KUBE_READ_QPS", 50),
		KubeReadBurst:       r.int("HYPERBOLA_KUBE_READ_BURST", 100),
		ReadinessInterval:   r.durOrOff("HYPERBOLA_READINESS_INTERVAL", 25*time.Millisecond),
		CreateRateLimit:     r.int("HYPERBOLA_CREATE_RATE_LIMIT", 100),
		APIRateLimit:        r.int("HYPERBOLA_API_RATE_LIMIT", 1200),
		ProbeRateLimit:      r.int("HYPERBOLA_PROBE_RATE_LIMIT", 120),
		AuthFailLimit:       r.int("HYPERBOLA_AUTH_FAIL_LIMIT", 30),
		ReadyCacheTTL:       r.dur("HYPERBOLA_READY_CACHE_TTL", 5*time.Second),
		TrustedProxies:      r.list("HYPERBOLA_TRUSTED_PROXIES"),
		ListenAddr:          r.str("HYPERBOLA_LISTEN", "127.0.0.1:8080"),
		ActivatorService:    r.strOrEmpty("HYPERBOLA_ACTIVATOR_SERVICE", "hyperbola-activator"),
		ActivatorHost:       r.str("HYPERBOLA_ACTIVATOR_HOST", ""),
		ActivatorPort:       int32(r.int("HYPERBOLA_ACTIVATOR_PORT", 0)),
		ActivatorCASecret:   r.str("HYPERBOLA_ACTIVATOR_CA_SECRET", ""),
		ActivatorSkipVerify: r.boolean("HYPERBOLA_ACTIVATOR_SKIP_VERIFY", false),
		WakeSecret:          r.str("HYPERBOLA_WAKE_SECRET", ""),
		FirestoreProject:    r.str("GOOGLE_CLOUD_PROJECT", ""),

		SweepOIDCAudience:       r.str("SWEEP_OIDC_AUDIENCE", ""),
		SweepOIDCServiceAccount: r.str("SWEEP_OIDC_SERVICE_ACCOUNT", ""),
		SweepProbeURL:           r.str("HYPERBOLA_SWEEP_PROBE_URL", ""),
		ReconcileEvery:          r.dur("HYPERBOLA_RECONCILE_EVERY", 10*time.Minute),
		ReconcileGrace:          r.dur("HYPERBOLA_RECONCILE_GRACE", 10*time.Minute),
		StuckAfter:              r.dur("HYPERBOLA_STUCK_AFTER", 30*time.Minute),
		PricePerHour:            r.float("HYPERBOLA_PRICE_PER_HOUR", DefaultPricePerHour),
		StoragePricePerGBMonth:  r.float("HYPERBOLA_STORAGE_PRICE_PER_GB_MONTH", 0),
		Currency:                r.str("HYPERBOLA_CURRENCY", "USD"),

		MaxCPU:             r.strOrEmpty("HYPERBOLA_MAX_CPU", DefaultMaxCPU),
		MaxMemory:          r.strOrEmpty("HYPERBOLA_MAX_MEMORY", DefaultMaxMemory),
		MaxStorage:         r.strOrEmpty("HYPERBOLA_MAX_STORAGE", DefaultMaxStorage),
		ImageAllowlist:     r.list("HYPERBOLA_IMAGE_ALLOWLIST"),
		MaxSessionsPerUser: r.int("HYPERBOLA_MAX_SESSIONS_PER_USER", 0),
		MaxRunningPerUser:  r.int("HYPERBOLA_MAX_RUNNING_PER_USER", 0),
		MaxRunning:         r.int("HYPERBOLA_MAX_RUNNING", 0),

		WarmPlaceholders:         r.int("HYPERBOLA_WARM_PLACEHOLDERS", 0),
		WarmPrepull:              r.boolean("HYPERBOLA_WARM_PREPULL", false),
		PlaceholderPriorityClass: r.str("HYPERBOLA_PLACEHOLDER_PRIORITY_CLASS", "hyperbola-placeholder"),
	}
	c.WarmVolumeSize = r.str("HYPERBOLA_WARM_VOLUME_SIZE", c.StorageSize)
	if len(c.ImageAllowlist) == 0 {
		c.ImageAllowlist = session.DefaultImageAllowlist(c.UserPodImage)
	}
	if c.GatewayNamespace == "" {
		c.GatewayNamespace = c.Namespace
	}
	if len(c.GatewaySourceCIDRs) == 0 {
		c.GatewaySourceCIDRs = DefaultGatewaySourceCIDRs()
	}
	if c.ActivatorPort == 0 {
		c.ActivatorPort = 80
		// in gateway mode the activator's Service is plain HTTP (GKE's relay speaks HTTPS on)
		if c.ActivatorHost != "" && c.Routing != RoutingGateway {
			c.ActivatorPort = 443
		}
	}
	if port, ok := lookup("PORT"); ok && port != "" { // Cloud Run
		c.ListenAddr = "0.0.0.0:" + port
	}
	c.APIKeys = append(r.list("API_KEYS"), r.list("API_KEY")...)
	c.NamedKeys, c.NamedKeysFrom = r.namedKeys()
	r.activity(c)
	if r.err != nil {
		return nil, r.err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks values that no reader can catch one by one.
func (c *Config) Validate() error {
	switch {
	case c.SessionTTL <= 0:
		return fmt.Errorf("SESSION_TTL must be a positive number of seconds")
	case c.UserPodPort <= 0 || c.UserPodPort > 65535:
		return fmt.Errorf("USER_POD_PORT must be a port number")
	case c.Namespace == "":
		return fmt.Errorf("HYPERBOLA_NAMESPACE must not be empty")
	case c.Domain == "":
		return fmt.Errorf("HYPERBOLA_DOMAIN must not be empty")
	case c.CreateRateLimit <= 0 || c.APIRateLimit <= 0 || c.ProbeRateLimit <= 0 || c.AuthFailLimit <= 0:
		return fmt.Errorf("rate limits (HYPERBOLA_*_RATE_LIMIT, HYPERBOLA_AUTH_FAIL_LIMIT) must be positive")
	case c.ReadyCacheTTL <= 0 || c.ReadyCacheTTL > time.Minute:
		// a cached readiness older than a minute would keep an instance in rotation, or out of
		// it, long after its dependencies changed
		return fmt.Errorf("HYPERBOLA_READY_CACHE_TTL must be a duration between 1ns and 1m, such as 5s")
	case c.KubeWriteQPS <= 0 || c.KubeWriteBurst < 1 || c.KubeReadQPS <= 0 || c.KubeReadBurst < 1:
		return fmt.Errorf("HYPERBOLA_KUBE_WRITE_QPS, HYPERBOLA_KUBE_WRITE_BURST, HYPERBOLA_KUBE_READ_QPS and HYPERBOLA_KUBE_READ_BURST must be positive")
	case c.KubeWriteBurst < int(math.Ceil(c.KubeWriteQPS)) || c.KubeReadBurst < int(math.Ceil(c.KubeReadQPS)):
		// a token bucket smaller than a second's tokens never reaches its QPS
		return fmt.Errorf("HYPERBOLA_KUBE_*_BURST must be at least its HYPERBOLA_KUBE_*_QPS")
	case c.ReadinessInterval != ReadinessOff && (c.ReadinessInterval < time.Millisecond || c.ReadinessInterval > 10*time.Second):
		// every waiting status call waits up to one interval for its answer
		return fmt.Errorf("HYPERBOLA_READINESS_INTERVAL must be a duration between 1ms and 10s, such as 100ms, or off")
	case c.Routing != RoutingIngress && c.Routing != RoutingGateway:
		return fmt.Errorf("HYPERBOLA_ROUTING=%q: want %s or %s", c.Routing, RoutingIngress, RoutingGateway)
	case c.Routing == RoutingGateway && c.GatewayCertMap != "" && c.GatewayTLSSecret != "":
		return fmt.Errorf("HYPERBOLA_GATEWAY_CERTMAP and HYPERBOLA_GATEWAY_TLS_SECRET are both set: set one (the map on GKE, the Secret elsewhere)")
	case c.ActivatorPort <= 0 || c.ActivatorPort > 65535:
		return fmt.Errorf("HYPERBOLA_ACTIVATOR_PORT must be a port number")
	case c.PricePerHour < 0 || c.StoragePricePerGBMonth < 0:
		return fmt.Errorf("HYPERBOLA_PRICE_PER_HOUR and HYPERBOLA_STORAGE_PRICE_PER_GB_MONTH must not be negative")
	case !validCurrency(c.Currency):
		return fmt.Errorf("HYPERBOLA_CURRENCY=%q: want an ISO 4217 code such as USD", c.Currency)
	case c.ReconcileGrace <= 0:
		return fmt.Errorf("HYPERBOLA_RECONCILE_GRACE must be a positive duration")
	case c.ReconcileEvery < 0:
		return fmt.Errorf("HYPERBOLA_RECONCILE_EVERY must not be negative (0 turns the sweep's reconcile off)")
	case c.BackupRetention < 0 || (c.BackupRetention > 0 && c.BackupRetention < time.Hour):
		// an archive is a user's only copy of a deleted workspace: minutes are a typo
		return fmt.Errorf("HYPERBOLA_BACKUP_RETENTION must be 0 (keep forever) or at least 1h, such as 30d")
	case c.WarmPlaceholders < 0 || c.WarmPlaceholders > MaxWarmPlaceholders:
		return fmt.Errorf("HYPERBOLA_WARM_PLACEHOLDERS must be between 0 and %d", MaxWarmPlaceholders)
	case c.WarmVolumes < 0:
		return fmt.Errorf("HYPERBOLA_WARM_VOLUMES must not be negative (0 turns the warm volume pool off)")
	case c.IdleConnectedMax < 0 || (c.IdleConnectedMax > 0 && c.IdleConnectedMax < time.Minute):
		// the sweep runs once a minute; a session with a longer idle timeout gets that as its cap
		return fmt.Errorf("HYPERBOLA_IDLE_CONNECTED_MAX must be 0 (no cap) or at least 1m, such as 2h")
	case c.StuckAfter < time.Minute:
		// The sweep runs once a minute and a healthy step takes seconds to minutes: a shorter
		// limit would name sessions that are merely busy.
		return fmt.Errorf("HYPERBOLA_STUCK_AFTER must be at least 1m")
	}
	if c.RedisCA != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(c.RedisCA)) {
		return fmt.Errorf("HYPERBOLA_REDIS_CA holds no PEM certificate: want the CA's PEM text itself (-----BEGIN CERTIFICATE-----), not a path")
	}
	if err := c.validateActivity(); err != nil {
		return err
	}
	return c.validateLimits()
}

// validateLimits checks the limits, and that the defaults a request leaves out pass them
// (else every such create would be refused).
func (c *Config) validateLimits() error {
	l := session.Limits{MaxCPU: c.MaxCPU, MaxMemory: c.MaxMemory, MaxStorage: c.MaxStorage, ImageAllowlist: c.ImageAllowlist,
		MaxSessionsPerUser: c.MaxSessionsPerUser, MaxRunningPerUser: c.MaxRunningPerUser, MaxRunning: c.MaxRunning}
	if err := l.Check(); err != nil {
		return fmt.Errorf("HYPERBOLA_MAX_* / HYPERBOLA_IMAGE_ALLOWLIST: %w", err)
	}
	if err := l.CheckDefaults(session.Workspace{Image: c.UserPodImage, CPU: c.CPURequest, Memory: c.MemoryRequest, Storage: c.StorageSize}); err != nil {
		return fmt.Errorf("the defaults (USER_POD_IMAGE, HYPERBOLA_CPU_REQUEST, HYPERBOLA_MEMORY_REQUEST, HYPERBOLA_STORAGE_SIZE) break a limit: %w", err)
	}
	return nil
}

// WakeOnAccess reports whether wake on access is on: an activator Service to route sleeping
// workspaces to, and a secret to sign wake links and cookies with. Without the secret the
// activator could not tell an owner from a stranger, so the Ingress stays on the workspace.
func (c *Config) WakeOnAccess() bool { return c.ActivatorService != "" && c.WakeSecret != "" }

// RedisAddr is host:port.
func (c *Config) RedisAddr() string { return fmt.Sprintf("%s:%d", c.RedisHost, c.RedisPort) }

type reader struct {
	lookup func(string) (string, bool)
	err    error
}

func (r *reader) str(name, def string) string {
	if v, ok := r.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

// strOrEmpty is str, except that a variable that is set but empty gives "" (a way to turn
// off a setting whose default is not empty).
func (r *reader) strOrEmpty(name, def string) string {
	if v, ok := r.lookup(name); ok && strings.TrimSpace(v) == "" {
		return ""
	}
	return r.str(name, def)
}

func (r *reader) boolean(name string, def bool) bool {
	return parsed(r, name, def, "true or false", strconv.ParseBool)
}

func (r *reader) int(name string, def int) int {
	return parsed(r, name, def, "a whole number", strconv.Atoi)
}

func (r *reader) dur(name string, def time.Duration) time.Duration {
	return parsed(r, name, def, "a duration such as 15m", time.ParseDuration)
}

// ReadinessOff is ReadinessInterval for HYPERBOLA_READINESS_INTERVAL=off.
const ReadinessOff time.Duration = -1

// durOrOff reads a duration, or "off", which gives ReadinessOff.
func (r *reader) durOrOff(name string, def time.Duration) time.Duration {
	return parsed(r, name, def, "a duration such as 100ms, or off", func(v string) (time.Duration, error) {
		if strings.EqualFold(v, "off") {
			return ReadinessOff, nil
		}
		return time.ParseDuration(v)
	})
}

// days reads a duration that may also be given in whole days ("30d"); "0" is zero.
func (r *reader) days(name string, def time.Duration) time.Duration {
	return parsed(r, name, def, "a duration such as 30d or 720h, or 0", func(v string) (time.Duration, error) {
		if n, ok := strings.CutSuffix(v, "d"); ok {
			d, err := strconv.ParseUint(n, 10, 16)
			return time.Duration(d) * 24 * time.Hour, err
		}
		if v == "0" {
			return 0, nil
		}
		return time.ParseDuration(v)
	})
}

// cidrs reads a comma-separated list of IP ranges in canonical form (10.8.0.0/28, not
// 10.8.0.1/28: the API server refuses host bits in a NetworkPolicy).
func (r *reader) cidrs(name string) []string {
	list := r.list(name)
	for _, c := range list {
		p, err := netip.ParsePrefix(c)
		switch {
		case err != nil:
			r.fail(fmt.Errorf("%s: %q is not a CIDR such as 10.8.0.0/28: %w", name, c, err))
		case p.Masked() != p:
			r.fail(fmt.Errorf("%s: %q has host bits set: write %s", name, c, p.Masked()))
		}
	}
	return list
}

func (r *reader) float(name string, def float64) float64 {
	return parsed(r, name, def, "a number such as 0.05", func(v string) (float64, error) {
		f, err := strconv.ParseFloat(v, 64)
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			err = strconv.ErrRange
		}
		return f, err
	})
}

// parsed reads name with parse, def when it is unset; a value that does not parse is kept as
// r's first error, saying what was wanted.
func parsed[T any](r *reader, name string, def T, want string, parse func(string) (T, error)) T {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%s=%q: want %s: %w", name, v, want, err)
	}
	return x
}

// validCurrency accepts three capital letters (an ISO 4217 code).
func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// NamedKey is one entry of API_KEYS_JSON or HYPERBOLA_API_KEYS_FILE.
type NamedKey struct {
	Name  string   `json:"name"`
	Key   string   `json:"key"`
	Role  string   `json:"role"`
	Users []string `json:"users,omitempty"`
}

// namedKeys reads API_KEYS_JSON or the file HYPERBOLA_API_KEYS_FILE names (one of them): a
// JSON array of NamedKey, no unknown members.
func (r *reader) namedKeys() ([]NamedKey, string) {
	inline, path := r.str("API_KEYS_JSON", ""), r.str("HYPERBOLA_API_KEYS_FILE", "")
	from, data := "API_KEYS_JSON", []byte(inline)
	switch {
	case inline != "" && path != "":
		r.fail(fmt.Errorf("API_KEYS_JSON and HYPERBOLA_API_KEYS_FILE are both set: set one"))
		return nil, ""
	case inline == "" && path == "":
		return nil, ""
	case path != "":
		from = "HYPERBOLA_API_KEYS_FILE"
		b, err := os.ReadFile(path)
		if err != nil {
			r.fail(fmt.Errorf("HYPERBOLA_API_KEYS_FILE: %w", err))
			return nil, from
		}
		data = b
	}
	var keys []NamedKey
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&keys); err != nil {
		// the error names a position or a member, never the value (a key is a secret)
		r.fail(fmt.Errorf("%s: want a JSON array of {\"name\",\"key\",\"role\",\"users\"}: %w", from, err))
		return nil, from
	}
	if len(keys) == 0 {
		r.fail(fmt.Errorf("%s holds no keys", from))
	}
	return keys, from
}

// fail keeps r's first error.
func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) list(name string) []string {
	var out []string
	for _, p := range strings.Split(r.str(name, ""), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
