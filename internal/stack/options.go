package stack

import (
	"time"

	"context"
	"errors"
	"fmt"

	"google.golang.org/api/idtoken"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/activator"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/api"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/clientip"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/events"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/kube"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/reconcile"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/session"
	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/sweep"
)

// This file is the one translation of the configuration into the parts' options: every
// setting is read here, once, and the parts take what they are given.

// KubeOptions are the builders' and the cluster adapter's settings, checked.
func KubeOptions(c *config.Config) (kube.Options, error) {
	o := kube.Options{
		Namespace:        c.Namespace,
		Domain:           c.Domain,
		Port:             c.UserPodPort,
		StorageClass:     c.StorageClass,
		IngressClass:     c.IngressClass,
		ClusterIssuer:    c.ClusterIssuer,
		IngressNamespace: c.IngressNamespace,
		DNSNamespace:     c.DNSNamespace,
		DNSCIDRs:         c.DNSCIDRs,
		ProbeSourceCIDRs: c.ProbeSourceCIDRs,
		BackupPVC:        c.BackupPVC,
		BackupImage:      c.BackupImage,

		Routing:            c.Routing,
		GatewayName:        c.GatewayName,
		GatewayNamespace:   c.GatewayNamespace,
		GatewayClass:       c.GatewayClass,
		GatewayCertMap:     c.GatewayCertMap,
		GatewayAddress:     c.GatewayAddress,
		GatewayTLSSecret:   c.GatewayTLSSecret,
		GatewaySourceCIDRs: c.GatewaySourceCIDRs,
		KeepIngress:        c.KeepIngress,
		BackupDeadline:     c.BackupDeadline,
		// negative (ReadinessOff) is off in both
		ReadinessInterval: c.ReadinessInterval,

		WarmPlaceholders:         int32(c.WarmPlaceholders), // config bounds it
		WarmPrepull:              c.WarmPrepull,
		PlaceholderPriorityClass: c.PlaceholderPriorityClass,
		WorkspaceImage:           c.UserPodImage,
		WarmVolumes:              c.WarmVolumes,
		WarmVolumeSize:           c.WarmVolumeSize,
	}
	var err error
	// A placeholder requests what a workspace created with the defaults does.
	if o.WorkspaceCPU, err = resource.ParseQuantity(c.CPURequest); err != nil {
		return o, fmt.Errorf("HYPERBOLA_CPU_REQUEST: %w", err)
	}
	if o.WorkspaceMemory, err = resource.ParseQuantity(c.MemoryRequest); err != nil {
		return o, fmt.Errorf("HYPERBOLA_MEMORY_REQUEST: %w", err)
	}
	if o.NodeSelector, err = kube.ParseNodeSelector(c.NodeSelector); err != nil {
		return o, fmt.Errorf("HYPERBOLA_NODE_SELECTOR: %w", err)
	}
	if o.DNSPodLabels, err = kube.ParseLabels(c.DNSPodLabels); err != nil {
		return o, fmt.Errorf("HYPERBOLA_DNS_POD_LABELS: %w", err)
	}
	if o.Tolerations, err = kube.ParseTolerations(c.Tolerations); err != nil {
		return o, fmt.Errorf("HYPERBOLA_TOLERATIONS: %w", err)
	}
	if c.ActivityKey != "" {
		o.ActivityKey = []byte(c.ActivityKey)
	}
	if c.ActivityURL != "" {
		o.ActivityURL, o.ActivityCPUThreshold, o.ActivitySyncSeconds = c.ActivityURL, c.ActivityCPUThreshold, c.ActivitySyncSeconds
	}
	if c.WakeOnAccess() {
		o.ActivatorService = c.ActivatorService
		o.ActivatorPort = c.ActivatorPort
		o.ActivatorHost = c.ActivatorHost
		o.ActivatorCASecret = c.ActivatorCASecret
		o.ActivatorSkipVerify = c.ActivatorSkipVerify
	}
	return o, optionEnv(o.Validate())
}

// kubeOptionEnv names the variable each kube.Options field the routing reads comes from.
var kubeOptionEnv = map[string]string{
	"Routing":            "HYPERBOLA_ROUTING",
	"IngressNamespace":   "HYPERBOLA_INGRESS_NAMESPACE",
	"GatewayName":        "HYPERBOLA_GATEWAY_NAME",
	"GatewayNamespace":   "HYPERBOLA_GATEWAY_NAMESPACE",
	"GatewayClass":       "HYPERBOLA_GATEWAY_CLASS",
	"GatewayCertMap":     "HYPERBOLA_GATEWAY_CERTMAP",
	"GatewayAddress":     "HYPERBOLA_GATEWAY_ADDRESS",
	"GatewayTLSSecret":   "HYPERBOLA_GATEWAY_TLS_SECRET",
	"GatewaySourceCIDRs": "HYPERBOLA_GATEWAY_SOURCE_CIDRS",
}

// optionEnv prefixes a refused kube option with the variable it came from, when known.
func optionEnv(err error) error {
	var oe *kube.OptionError
	if errors.As(err, &oe) {
		if env, ok := kubeOptionEnv[oe.Field]; ok {
			return fmt.Errorf("%s: %w", env, err)
		}
	}
	return err
}

// KubeBudgets are the Kubernetes clients' client-side budgets, writes' and reads'.
func KubeBudgets(c *config.Config) kube.Budgets {
	return kube.Budgets{
		Write: kube.Budget{QPS: float32(c.KubeWriteQPS), Burst: c.KubeWriteBurst},
		Read:  kube.Budget{QPS: float32(c.KubeReadQPS), Burst: c.KubeReadBurst},
	}
}

// serviceOptions are the session core's defaults for what a request leaves out.
func serviceOptions(c *config.Config) session.Options {
	return session.Options{
		Domain: c.Domain, Image: c.UserPodImage, Storage: c.StorageSize, CPU: c.CPURequest,
		Memory: c.MemoryRequest, IdleTimeout: c.IdleTimeout, IdleConnectedMax: c.IdleConnectedMax,
		SessionTTL: c.SessionTTL, BackupRetention: retention(c.BackupRetention),
		Limits: session.Limits{MaxCPU: c.MaxCPU, MaxMemory: c.MaxMemory, MaxStorage: c.MaxStorage,
			ImageAllowlist: c.ImageAllowlist, MaxSessionsPerUser: c.MaxSessionsPerUser,
			MaxRunningPerUser: c.MaxRunningPerUser, MaxRunning: c.MaxRunning},
		AwaitInterval: awaitInterval(c.ReadinessInterval),
	}
}

// awaitInterval paces a waiting status call at the readiness rounds' interval, so each of its
// reads joins the next round. With the rounds off, each read is two requests of its own: then
// every 100ms.
func awaitInterval(readiness time.Duration) time.Duration {
	if readiness == config.ReadinessOff {
		return 100 * time.Millisecond
	}
	return readiness // 0: the session core's default, the rounds' too
}

// retention is HYPERBOLA_BACKUP_RETENTION as the session core takes it: 0 (keep forever) is
// negative there, where 0 is the default.
func retention(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// eventsOptions are the durable record's prices; the price is taken as configured (0: free).
func eventsOptions(c *config.Config) events.Options {
	return events.Options{Prefix: c.RedisPrefix, PricePerRunningHour: c.PricePerHour,
		StoragePricePerGBMonth: c.StoragePricePerGBMonth, Currency: c.Currency}
}

// APIOptions are the HTTP API's keys (API_KEYS and API_KEY as admins, and the named keys
// with their roles, checked here), rate limits and trusted proxies, when /metrics counts
// a session as stuck (HYPERBOLA_STUCK_AFTER, as the sweep), and the key activity credentials
// are checked with (HYPERBOLA_ACTIVITY_KEY).
func APIOptions(c *config.Config) (api.Options, error) {
	trusted, err := clientip.ParseTrusted(c.TrustedProxies)
	if err != nil {
		return api.Options{}, fmt.Errorf("HYPERBOLA_TRUSTED_PROXIES: %w", err)
	}
	keys, err := apiKeys(c)
	if err != nil {
		return api.Options{}, err
	}
	o := api.Options{
		APIKeys: c.APIKeys, Keys: keys, CreateLimit: c.CreateRateLimit, KeyLimit: c.APIRateLimit,
		TrustedProxies: trusted, StuckAfter: c.StuckAfter,
		ProbeLimit: c.ProbeRateLimit, AuthFailLimit: c.AuthFailLimit, ReadyCacheTTL: c.ReadyCacheTTL,
	}
	if c.ActivityKey != "" {
		o.ActivityKey = []byte(c.ActivityKey)
	}
	return o, nil
}

// apiKeys are the named keys as the API takes them, checked, errors naming their variable.
func apiKeys(c *config.Config) ([]api.Key, error) {
	keys := make([]api.Key, 0, len(c.NamedKeys))
	for _, k := range c.NamedKeys {
		keys = append(keys, api.Key{Name: k.Name, Key: k.Key, Role: api.Role(k.Role), Users: k.Users})
	}
	if err := api.CheckKeys(c.APIKeys, keys); err != nil {
		if c.NamedKeysFrom == "" { // a plain key's fault: the error names API_KEYS itself
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", c.NamedKeysFrom, err)
	}
	return keys, nil
}

// sweepKeys are the API keys that may run the sweep: the plain (admin) keys and the named
// keys of role admin or sweep.
func sweepKeys(c *config.Config) []string {
	out := append([]string(nil), c.APIKeys...)
	for _, k := range c.NamedKeys {
		if r := api.Role(k.Role); r == api.RoleAdmin || r == api.RoleSweep {
			out = append(out, k.Key)
		}
	}
	return out
}

// ActivatorOptions are the activator's domain, wake secret and trusted proxies.
func ActivatorOptions(c *config.Config) (activator.Options, error) {
	trusted, err := clientip.ParseTrusted(c.TrustedProxies)
	if err != nil {
		return activator.Options{}, fmt.Errorf("HYPERBOLA_TRUSTED_PROXIES: %w", err)
	}
	return activator.Options{Domain: c.Domain, Secret: []byte(c.WakeSecret), TrustedProxies: trusted}, nil
}

// SweepOptions are the sweep's probe URL template (HYPERBOLA_SWEEP_PROBE_URL; "" keeps
// sweep.DefaultProbeURL, the in-cluster Service; a control plane outside the cluster, on Cloud
// Run with Direct VPC egress, sets sweep.PodProbeURL, the pod's address, which Stack.Sweeper
// resolves through the cluster adapter), what it is filled with, how often a sweep reconciles, and
// when it names a session as stuck in a pending step (HYPERBOLA_STUCK_AFTER).
// HYPERBOLA_RECONCILE_EVERY=0 turns the sweep's reconcile off by leaving the sweep without a
// reconciler (Stack.Sweeper), not through this value.
func SweepOptions(c *config.Config) sweep.Options {
	return sweep.Options{ProbeURL: c.SweepProbeURL, Namespace: c.Namespace, Port: c.UserPodPort, Domain: c.Domain,
		ReconcileEvery: c.ReconcileEvery, StuckAfter: c.StuckAfter}
}

// ReconcileOptions are reconcile's grace period and what adopted sessions get (domain, idle
// timeout and connected cap, SESSION_TTL).
func ReconcileOptions(c *config.Config) reconcile.Options {
	return reconcile.Options{GracePeriod: c.ReconcileGrace, Domain: c.Domain, IdleTimeout: c.IdleTimeout,
		IdleConnectedMax: c.IdleConnectedMax, SessionTTL: c.SessionTTL, BackupRetention: retention(c.BackupRetention)}
}

// sweepAuthOptions are who may run the sweep: the API's admin and sweep keys and, when SWEEP_OIDC_AUDIENCE and
// SWEEP_OIDC_SERVICE_ACCOUNT are set, Cloud Scheduler's OIDC tokens checked against Google's
// public keys.
func sweepAuthOptions(ctx context.Context, c *config.Config) (sweep.AuthOptions, error) {
	o := sweep.AuthOptions{APIKeys: sweepKeys(c), Audience: c.SweepOIDCAudience, ServiceAccount: c.SweepOIDCServiceAccount}
	if o.Audience != "" {
		v, err := idtoken.NewValidator(ctx)
		if err != nil {
			return o, fmt.Errorf("sweep auth: ID token validator: %w", err)
		}
		o.Validator = v
	}
	return o, nil
}
