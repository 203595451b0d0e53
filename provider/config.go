package provider

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/redis/go-redis/v9"

	"github.com/hyperbola-in/terraform-provider-hyperbola/internal/config"
)

// mode is how the provider reaches Hyperbola.
type mode string

const (
	// modeEndpoint talks to a deployed API with endpoint + api_key (internal/client).
	modeEndpoint mode = "endpoint"
	// modeDirect runs the session core in process on a cluster and a Redis (internal/stack).
	modeDirect mode = "direct"
)

// setting is one provider attribute: the mode it belongs to, the environment variable it
// falls back to, and (for direct mode) the internal/config variable it sets.
type setting struct {
	attr      string
	env       string // environment fallback
	mode      mode
	sensitive bool
	desc      string
	// configEnv is the internal/config variable the value is handed to ("" = env); toConfig
	// converts the value first when it is set.
	configEnv string
	toConfig  func(string) (string, error)
}

// settings lists every provider attribute. Direct-mode settings are handed to internal/config
// under the same variable names the functions read, so both read them the same way.
func settings() []setting {
	return []setting{
		{attr: "endpoint", env: "HYPERBOLA_ENDPOINT", mode: modeEndpoint,
			desc: "URL of a deployed Hyperbola API, e.g. `https://api.hyperbola.in` or `http://127.0.0.1:8080` (the stack `make run` starts). Selects endpoint mode, with `api_key`. Environment: `HYPERBOLA_ENDPOINT`."},
		{attr: "api_key", env: "HYPERBOLA_API_KEY", mode: modeEndpoint, sensitive: true,
			desc: "API key for `endpoint` (sent as `X-API-Key`). Environment: `HYPERBOLA_API_KEY`."},

		{attr: "redis_url", env: "HYPERBOLA_REDIS_URL", mode: modeDirect, sensitive: true,
			desc: "Redis holding the session records, e.g. `redis://:password@10.0.0.3:6379/0`. Selects direct mode: the provider runs the session core itself against `redis_url` and the cluster. Environment: `HYPERBOLA_REDIS_URL`."},
		{attr: "redis_prefix", env: "HYPERBOLA_REDIS_PREFIX", mode: modeDirect,
			desc: "Prefix of every Redis key (direct mode). Must match the deployed functions' prefix to manage the same sessions. Default `hyperbola:`. Environment: `HYPERBOLA_REDIS_PREFIX`."},
		{attr: "kubeconfig", env: "KUBECONFIG", mode: modeDirect,
			desc: "Path of a kubeconfig file (direct mode). Without it (and without `kube_endpoint`) the in-cluster service account is used. Environment: `KUBECONFIG`."},
		{attr: "kube_context", env: "HYPERBOLA_KUBE_CONTEXT", mode: modeDirect,
			desc: "Context of `kubeconfig` to use (direct mode); default its current context. Environment: `HYPERBOLA_KUBE_CONTEXT`."},
		{attr: "kube_endpoint", env: "HYPERBOLA_KUBE_ENDPOINT", mode: modeDirect,
			desc: "`https://` address of a GKE control plane, reached with Google application default credentials (direct mode), instead of a kubeconfig. Environment: `HYPERBOLA_KUBE_ENDPOINT`."},
		{attr: "kube_ca", env: "HYPERBOLA_KUBE_CA", mode: modeDirect, sensitive: false,
			desc: "Base64 PEM CA certificate of `kube_endpoint`. Environment: `HYPERBOLA_KUBE_CA`."},
		{attr: "namespace", env: "HYPERBOLA_NAMESPACE", mode: modeDirect,
			desc: "Namespace of the workspaces' objects (direct mode). Default `hyperbola`. Environment: `HYPERBOLA_NAMESPACE`."},
		{attr: "domain", env: "HYPERBOLA_DOMAIN", mode: modeDirect,
			desc: "Workspaces are served at `https://vs-code-<id>.<domain>` (direct mode). Default `preview.hyperbola.in`. Environment: `HYPERBOLA_DOMAIN`."},
		{attr: "default_image", env: "USER_POD_IMAGE", mode: modeDirect,
			desc: "Image of workspaces that set none (direct mode). Default `codercom/code-server:4.96.4`. Environment: `USER_POD_IMAGE`."},
		{attr: "default_storage", env: "HYPERBOLA_STORAGE_SIZE", mode: modeDirect,
			desc: "Volume size of workspaces that set none (direct mode). Default `5Gi`. Environment: `HYPERBOLA_STORAGE_SIZE`."},
		{attr: "default_cpu", env: "HYPERBOLA_CPU_REQUEST", mode: modeDirect,
			desc: "CPU request of workspaces that set none (direct mode). Default `250m`. Environment: `HYPERBOLA_CPU_REQUEST`."},
		{attr: "default_memory", env: "HYPERBOLA_MEMORY_REQUEST", mode: modeDirect,
			desc: "Memory request of workspaces that set none (direct mode). Default `256Mi`. Environment: `HYPERBOLA_MEMORY_REQUEST`."},
		{attr: "default_idle_timeout", env: "HYPERBOLA_IDLE_TIMEOUT", mode: modeDirect,
			desc: "Idle timeout of workspaces that set none (direct mode), a duration such as `15m`. Environment: `HYPERBOLA_IDLE_TIMEOUT`."},
		{attr: "default_idle_connected_max", env: "HYPERBOLA_IDLE_CONNECTED_MAX", mode: modeDirect,
			desc: "`idle_connected_max` of workspaces that set none (direct mode): how long an open browser tab without use keeps a workspace awake, a duration such as `2h`, or `0` for no cap. Default `2h`. Environment: `HYPERBOLA_IDLE_CONNECTED_MAX`."},
		{attr: "session_ttl", env: "HYPERBOLA_SESSION_TTL", mode: modeDirect, configEnv: "SESSION_TTL", toConfig: durationToSeconds,
			desc: "Lifetime of a new workspace (direct mode), a duration such as `24h`; the idle sweep deletes expired workspaces. Default `24h`. Environment: `HYPERBOLA_SESSION_TTL` (a duration), or `SESSION_TTL` (seconds, as the functions read it)."},
		{attr: "storage_class", env: "HYPERBOLA_STORAGE_CLASS", mode: modeDirect,
			desc: "StorageClass of workspace volumes (direct mode); default the cluster's default class. It must allow volume expansion for `storage` to grow. Environment: `HYPERBOLA_STORAGE_CLASS`."},
		{attr: "ingress_class", env: "HYPERBOLA_INGRESS_CLASS", mode: modeDirect,
			desc: "IngressClass of workspace Ingresses (direct mode). Default `nginx`. Environment: `HYPERBOLA_INGRESS_CLASS`."},
		{attr: "cluster_issuer", env: "HYPERBOLA_CLUSTER_ISSUER", mode: modeDirect,
			desc: "cert-manager ClusterIssuer of workspace certificates (direct mode). Default `letsencrypt`. Environment: `HYPERBOLA_CLUSTER_ISSUER`."},
		{attr: "ingress_namespace", env: "HYPERBOLA_INGRESS_NAMESPACE", mode: modeDirect,
			desc: "Namespace of the ingress controller, the only pods allowed to reach a workspace (direct mode). Default `ingress-nginx`. Environment: `HYPERBOLA_INGRESS_NAMESPACE`."},
		{attr: "backup_pvc", env: "HYPERBOLA_BACKUP_PVC", mode: modeDirect,
			desc: "Claim that backups are written to, in `namespace` (direct mode). Default `hyperbola-backups`. Environment: `HYPERBOLA_BACKUP_PVC`."},
		{attr: "backup_image", env: "HYPERBOLA_BACKUP_IMAGE", mode: modeDirect,
			desc: "Image of the backup Jobs (direct mode): a POSIX shell with `find`, `du` and `df`, and `zip` and `unzip`, run as uid 1000, as `images/backup` in the repository builds it; push it to a registry the cluster's nodes pull from. Default `localhost/hyperbola-backup:1`, the name the local cluster imports it under, which no other cluster has. Environment: `HYPERBOLA_BACKUP_IMAGE`."},
		{attr: "node_selector", env: "HYPERBOLA_NODE_SELECTOR", mode: modeDirect,
			desc: "Nodes that workspace and backup pods run on (direct mode), as `key=value,key=value` node labels, e.g. `cloud.google.com/gke-nodepool=workspaces`. Default: any node. Environment: `HYPERBOLA_NODE_SELECTOR`."},
		{attr: "tolerations", env: "HYPERBOLA_TOLERATIONS", mode: modeDirect,
			desc: "Taints that workspace and backup pods tolerate (direct mode), as `key=value:Effect,key:Effect`, e.g. `dedicated=workspaces:NoSchedule`. Environment: `HYPERBOLA_TOLERATIONS`."},
		{attr: "firestore_project", env: "GOOGLE_CLOUD_PROJECT", mode: modeDirect,
			desc: "Google Cloud project whose Firestore keeps Hyperbola's durable records (direct mode): every transition the provider makes is recorded there, and the `hyperbola_usage` data source reads its report from them. " +
				"Set it to the deployed functions' project so that Terraform's changes land in the same records; without it direct mode records nothing and has no usage report. " +
				"The Firestore client uses Google application default credentials (or `FIRESTORE_EMULATOR_HOST`). Environment: `GOOGLE_CLOUD_PROJECT`."},
	}
}

// attrsOf lists the attribute names of a mode, in schema order.
func attrsOf(m mode) []string {
	var out []string
	for _, s := range settings() {
		if s.mode == m {
			out = append(out, s.attr)
		}
	}
	return out
}

// resolved is the provider configuration after mode selection and environment fallbacks.
type resolved struct {
	mode   mode
	values map[string]string // attribute -> effective value (non-empty only)
}

// resolve picks the mode and fills the selected mode's attributes from the environment.
//
// Attributes set in the configuration decide the mode; only when the configuration sets none
// does the environment decide (HYPERBOLA_ENDPOINT or HYPERBOLA_REDIS_URL). KUBECONFIG alone
// never selects direct mode: it is commonly set for other tools.
func resolve(cfg map[string]string, lookupEnv func(string) (string, bool)) (resolved, diag.Diagnostics) {
	var diags diag.Diagnostics
	env := func(name string) string {
		if v, ok := lookupEnv(name); ok {
			return strings.TrimSpace(v)
		}
		return ""
	}
	setIn := func(m mode) []string {
		var out []string
		for _, a := range attrsOf(m) {
			if cfg[a] != "" {
				out = append(out, a)
			}
		}
		return out
	}
	cfgEndpoint, cfgDirect := setIn(modeEndpoint), setIn(modeDirect)
	endpointHelp := "endpoint mode: `endpoint` + `api_key` (or HYPERBOLA_ENDPOINT + HYPERBOLA_API_KEY), through the deployed API"
	directHelp := "direct mode: `redis_url` (or HYPERBOLA_REDIS_URL) with `kubeconfig`/`kube_context`, `kube_endpoint` or in-cluster credentials, plus `namespace`, `domain`, ..."
	var m mode
	switch {
	case len(cfgEndpoint) > 0 && len(cfgDirect) > 0:
		diags.AddError("Both provider modes are configured",
			fmt.Sprintf("The hyperbola provider is configured for endpoint mode (%s) and for direct mode (%s). Configure one of:\n- %s\n- %s",
				quoteList(cfgEndpoint), quoteList(cfgDirect), endpointHelp, directHelp))
		return resolved{}, diags
	case len(cfgEndpoint) > 0:
		m = modeEndpoint
	case len(cfgDirect) > 0:
		m = modeDirect
	default:
		e, d := env("HYPERBOLA_ENDPOINT") != "", env("HYPERBOLA_REDIS_URL") != ""
		switch {
		case e && d:
			diags.AddError("Both provider modes are configured",
				"The environment sets both HYPERBOLA_ENDPOINT (endpoint mode: `endpoint`, `api_key`) and HYPERBOLA_REDIS_URL (direct mode: `redis_url`). "+
					"Unset one, or set `endpoint` or `redis_url` in the provider block to choose. Configure one of:\n- "+endpointHelp+"\n- "+directHelp)
			return resolved{}, diags
		case e:
			m = modeEndpoint
		case d:
			m = modeDirect
		default:
			diags.AddError("No provider mode is configured",
				"The hyperbola provider needs either `endpoint` + `api_key` or `redis_url`, and none is set in the provider block or the environment. Configure one of:\n- "+endpointHelp+"\n- "+directHelp)
			return resolved{}, diags
		}
	}

	r := resolved{mode: m, values: map[string]string{}}
	for _, s := range settings() {
		if s.mode != m {
			continue
		}
		v := cfg[s.attr]
		if v == "" {
			v = env(s.env)
		}
		if v != "" {
			r.values[s.attr] = v
		}
	}
	switch m {
	case modeEndpoint:
		if r.values["endpoint"] == "" {
			diags.AddAttributeError(path.Root("endpoint"), "Missing endpoint",
				"`api_key` is set, so the provider is in endpoint mode, but `endpoint` is not (nor HYPERBOLA_ENDPOINT).")
		} else if err := checkEndpoint(r.values["endpoint"]); err != nil {
			diags.AddAttributeError(path.Root("endpoint"), "Invalid endpoint", err.Error())
		}
		if r.values["api_key"] == "" {
			diags.AddAttributeError(path.Root("api_key"), "Missing API key",
				"Endpoint mode needs `api_key` (or HYPERBOLA_API_KEY) with `endpoint`.")
		}
	case modeDirect:
		if r.values["redis_url"] == "" {
			diags.AddAttributeError(path.Root("redis_url"), "Missing Redis URL",
				fmt.Sprintf("Direct mode (%s set) needs `redis_url` (or HYPERBOLA_REDIS_URL): the Redis that holds the session records.", quoteList(cfgDirect)))
		} else if _, err := redis.ParseURL(r.values["redis_url"]); err != nil {
			diags.AddAttributeError(path.Root("redis_url"), "Invalid Redis URL",
				fmt.Sprintf("`redis_url` must look like redis://[:password@]host:port[/db]: %s", err))
		}
	}
	return r, diags
}

// checkEndpoint accepts an http(s) URL with a host.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("endpoint %q is not a URL: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("endpoint %q must be an http:// or https:// URL with a host", s)
	}
	return nil
}

// directConfig turns the direct-mode values into the control plane's configuration, read the
// way the functions read theirs (internal/config), with the provider's values in front of the
// environment.
func directConfig(r resolved, lookupEnv func(string) (string, bool)) (*config.Config, error) {
	overlay := map[string]string{}
	for _, s := range settings() {
		v, ok := r.values[s.attr]
		if s.mode != modeDirect || !ok {
			continue
		}
		name := s.env
		if s.configEnv != "" {
			name = s.configEnv
		}
		if s.toConfig != nil {
			conv, err := s.toConfig(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.attr, err)
			}
			v = conv
		}
		overlay[name] = v
	}
	opts, err := redis.ParseURL(r.values["redis_url"])
	if err != nil {
		return nil, fmt.Errorf("redis_url: %w", err)
	}
	if opts.TLSConfig != nil || opts.Username != "" {
		return nil, fmt.Errorf("redis_url: TLS (rediss://) and ACL user names are not supported by the control plane; use redis://[:password@]host:port[/db]")
	}
	host, port, ok := strings.Cut(opts.Addr, ":")
	if !ok {
		port = "6379"
	}
	overlay["REDIS_HOST"] = host
	overlay["REDIS_PORT"] = port
	overlay["REDIS_PASSWORD"] = opts.Password
	overlay["REDIS_DB"] = strconv.Itoa(opts.DB)
	cfg, err := config.FromLookup(func(name string) (string, bool) {
		if v, ok := overlay[name]; ok {
			return v, true
		}
		return lookupEnv(name)
	})
	if err != nil {
		return nil, fmt.Errorf("direct mode configuration: %w", err)
	}
	return cfg, nil
}

func durationToSeconds(s string) (string, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("want a duration such as \"24h\": %w", err)
	}
	if d < time.Second {
		return "", fmt.Errorf("must be at least 1s")
	}
	return strconv.FormatInt(int64(d/time.Second), 10), nil
}

// quoteList renders attribute names as `a`, `b`.
func quoteList(names []string) string {
	s := append([]string(nil), names...)
	sort.Strings(s)
	for i := range s {
		s[i] = "`" + s[i] + "`"
	}
	return strings.Join(s, ", ")
}
