variable "project_id" {
  description = "Project that runs the control plane (also GOOGLE_CLOUD_PROJECT for Firestore)."
  type        = string
}

variable "project_number" {
  description = "Numeric project number, used to derive idle-sweep's deterministic run.app URL (the OIDC audience)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+$", var.project_number))
    error_message = "The project number is digits only."
  }
}

variable "region" {
  description = "Region of the Cloud Run services and the Scheduler job."
  type        = string
}

variable "prefix" {
  description = "Prefix of the secret ids and the Scheduler job name."
  type        = string
  default     = "hyperbola"
}

variable "image" {
  description = "Container image of ./functions/cmd/server (both services run it; FUNCTION_TARGET picks the function)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^\\s:@]+(:[A-Za-z0-9_.-]+|@sha256:[a-f0-9]{64})$", var.image))
    error_message = "The image must be a full reference with a tag or digest, such as us-central1-docker.pkg.dev/PROJECT/hyperbola/functions:v1."
  }
}

variable "api_service_account_email" {
  description = "Service account session-api runs as."
  type        = string
}

variable "sweep_service_account_email" {
  description = "Service account idle-sweep runs as."
  type        = string
}

variable "scheduler_service_account_email" {
  description = "Service account Cloud Scheduler signs idle-sweep's OIDC tokens as (the only invoker of idle-sweep)."
  type        = string
}

variable "network_name" {
  description = "Name of the VPC used for Direct VPC egress (in the same project)."
  type        = string
}

variable "serverless_subnet_name" {
  description = "Name of the subnet (in var.region) Cloud Run takes its Direct VPC egress addresses from."
  type        = string
}

variable "redis_host" {
  description = "Memorystore host (REDIS_HOST)."
  type        = string
}

variable "redis_port" {
  description = "Memorystore port (REDIS_PORT)."
  type        = number
  default     = 6379
}

variable "kube_private_endpoint" {
  description = "Private IP of the GKE control plane; HYPERBOLA_KUBE_ENDPOINT is https:// plus this."
  type        = string
}

variable "kube_ca_certificate" {
  description = "Cluster CA as GKE returns it (base64-encoded PEM, like kubeconfig's certificate-authority-data); passed as HYPERBOLA_KUBE_CA."
  type        = string
}

variable "namespace" {
  description = "Namespace of the workspaces (HYPERBOLA_NAMESPACE)."
  type        = string
}

variable "domain" {
  description = "Parent domain of the workspace hosts vs-code-<id>.<domain> (HYPERBOLA_DOMAIN)."
  type        = string
}

variable "storage_class" {
  description = "StorageClass of the workspace PVCs (HYPERBOLA_STORAGE_CLASS); it must allow volume expansion for resizes."
  type        = string
}

variable "ingress_class" {
  description = "IngressClass of the workspace Ingresses (HYPERBOLA_INGRESS_CLASS); null (no ingress-nginx) sets none of the ingress settings."
  type        = string
  default     = null
}

variable "ingress_namespace" {
  description = "Namespace of the ingress controller, whose pods workspace NetworkPolicies admit (HYPERBOLA_INGRESS_NAMESPACE); null leaves it unset."
  type        = string
  default     = null
}

variable "cluster_issuer" {
  description = "cert-manager ClusterIssuer named in each workspace Ingress (HYPERBOLA_CLUSTER_ISSUER); null leaves it unset."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------
# Routing (docs/operations/routing.md).

variable "routing" {
  description = "HYPERBOLA_ROUTING: ingress (an Ingress per workspace, ingress-nginx and cert-manager) or gateway (an HTTPRoute per workspace on one shared Gateway with one wildcard certificate)."
  type        = string
  default     = "ingress"
  nullable    = false

  validation {
    condition     = contains(["ingress", "gateway"], var.routing)
    error_message = "Routing is ingress or gateway."
  }
}

variable "keep_ingress" {
  description = "HYPERBOLA_KEEP_INGRESS, with gateway routing: write each workspace's Ingress beside its HTTPRoute, so both entry points serve every session while DNS moves (the migration's first phase). False removes the Ingresses."
  type        = bool
  default     = false
  nullable    = false
}

variable "gateway_name" {
  description = "HYPERBOLA_GATEWAY_NAME: the shared Gateway the control plane writes and every HTTPRoute names."
  type        = string
  default     = "hyperbola"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.gateway_name))
    error_message = "The Gateway name is a DNS label."
  }
}

variable "gateway_namespace" {
  description = "HYPERBOLA_GATEWAY_NAMESPACE: the Gateway's namespace; null is the workspace namespace (the app's default)."
  type        = string
  default     = null
}

variable "gateway_class" {
  description = "HYPERBOLA_GATEWAY_CLASS: GKE's global external managed Application Load Balancer by default."
  type        = string
  default     = "gke-l7-global-external-managed"
  nullable    = false
}

variable "gateway_certmap" {
  description = "HYPERBOLA_GATEWAY_CERTMAP: the Certificate Manager map the Gateway names (annotation networking.gke.io/certmap); the gateway module's certificate_map."
  type        = string
  default     = null
}

variable "gateway_address" {
  description = "HYPERBOLA_GATEWAY_ADDRESS: the name of the reserved global address the Gateway takes (a NamedAddress); the gateway module's address_name."
  type        = string
  default     = null
}

variable "gateway_source_cidrs" {
  description = "HYPERBOLA_GATEWAY_SOURCE_CIDRS: who may reach a workspace pod in gateway routing: Google's front ends and health checkers."
  type        = list(string)
  default     = ["35.191.0.0/16", "130.211.0.0/22"]
  nullable    = false

  validation {
    condition     = alltrue([for c in var.gateway_source_cidrs : can(cidrhost(c, 0))])
    error_message = "Each source is a CIDR block, such as 35.191.0.0/16."
  }
}

variable "backup_pvc" {
  description = "Name of the PVC backup Jobs write zips to (HYPERBOLA_BACKUP_PVC)."
  type        = string
}

variable "user_pod_image" {
  description = "Workspace image (USER_POD_IMAGE): code-server, run with Hyperbola's flags as its args (images/workspace, or codercom/code-server)."
  type        = string
}

variable "backup_image" {
  description = "Image of the backup Jobs (HYPERBOLA_BACKUP_IMAGE): a POSIX shell with find, du and df, and zip and unzip, run as uid 1000 (images/backup, pushed to the project's registry). The app's own default names the local cluster's image, which no GKE node can pull."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^\\s:@]+(:[A-Za-z0-9_.-]+|@sha256:[a-f0-9]{64})$", var.backup_image))
    error_message = "The backup image must be a full reference with a tag or digest, such as us-central1-docker.pkg.dev/PROJECT/hyperbola/hyperbola-backup:1."
  }
}

variable "workspace_node_selector" {
  description = "HYPERBOLA_NODE_SELECTOR: node labels that workspace and backup pods require (a dedicated node pool, say). Empty: any node."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for k, v in var.workspace_node_selector : !strcontains(k, ",") && !strcontains(k, "=") && !strcontains(v, ",") && !strcontains(v, "=")
    ])
    error_message = "Node selector keys and values are label keys and values: no commas or equals signs."
  }
}

variable "workspace_tolerations" {
  description = "HYPERBOLA_TOLERATIONS: taints that workspace and backup pods tolerate. With a value, that taint (operator Equal); without, any value of the key (operator Exists). Empty: none."
  type = list(object({
    key    = string
    value  = optional(string)
    effect = string
  }))
  default  = []
  nullable = false

  validation {
    condition = alltrue([
      for t in var.workspace_tolerations : contains(["NoSchedule", "PreferNoSchedule", "NoExecute"], t.effect)
    ])
    error_message = "A toleration's effect is NoSchedule, PreferNoSchedule or NoExecute."
  }

  validation {
    condition = alltrue([
      for t in var.workspace_tolerations : length(regexall("[,=:]", "${t.key}${t.value == null ? "" : t.value}")) == 0 && t.key != ""
    ])
    error_message = "A toleration's key (not empty) and value are label keys and values: no commas, equals signs or colons."
  }
}

variable "user_pod_port" {
  description = "Port the workspace image listens on (USER_POD_PORT)."
  type        = number
  default     = 8080
}

variable "session_ttl_seconds" {
  description = "Maximum life of a session in seconds (SESSION_TTL)."
  type        = number
  default     = 86400
}

variable "api_key_count" {
  description = "How many API keys session-api accepts (more than one lets clients rotate without downtime)."
  type        = number
  default     = 2

  validation {
    condition     = var.api_key_count >= 1 && var.api_key_count <= 10
    error_message = "Between 1 and 10 API keys."
  }
}

variable "api_key_roles" {
  description = "Named API keys of session-api with a role, generated here and passed as API_KEYS_JSON from Secret Manager (docs/operations/operations.md, Keys and roles): name => { role = admin | tenant | metrics | sweep, users = the user ids or patterns (such as \"*@school.edu\") a tenant key acts for }. The api_key_count keys stay admin keys."
  type = map(object({
    role  = string
    users = optional(list(string), [])
  }))
  default = {}

  validation {
    condition = alltrue([
      for name, k in var.api_key_roles :
      can(regex("^[A-Za-z0-9_.-]+$", name)) && contains(["admin", "tenant", "metrics", "sweep"], k.role) &&
      (k.role == "tenant") == (length(k.users) > 0)
    ])
    error_message = "Each key: a name of letters, digits, _ . -; role admin, tenant, metrics or sweep; users for a tenant key (at least one) and for no other."
  }
}

variable "api_max_instances" {
  description = "Upper bound on session-api instances."
  type        = number
  default     = 10
}

variable "sweep_schedule" {
  description = "Cron schedule (UTC) of the idle sweep."
  type        = string
  default     = "* * * * *"
}

variable "extra_env" {
  description = "Further environment for both services (for example HYPERBOLA_IDLE_TIMEOUT or HYPERBOLA_CREATE_RATE_LIMIT). It may override HYPERBOLA_TRUSTED_PROXIES and HYPERBOLA_SWEEP_PROBE_URL (prefer trusted_proxies and sweep_probe_url), and set the prices left null, not the variables set from other inputs."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k in keys(var.extra_env) :
      can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k)) && !contains(["FUNCTION_TARGET", "API_KEYS", "API_KEY", "API_KEYS_JSON", "HYPERBOLA_API_KEYS_FILE", "HYPERBOLA_WAKE_SECRET", "HYPERBOLA_ACTIVITY_KEY", "HYPERBOLA_ACTIVITY_KEY_FILE", "HYPERBOLA_ACTIVITY_URL", "REDIS_PASSWORD", "PORT"], k) && !startswith(k, "K_")
    ])
    error_message = "Env names must be identifiers and must not be FUNCTION_TARGET, API_KEYS, API_KEY, API_KEYS_JSON, HYPERBOLA_API_KEYS_FILE, HYPERBOLA_WAKE_SECRET, HYPERBOLA_ACTIVITY_KEY, HYPERBOLA_ACTIVITY_KEY_FILE, HYPERBOLA_ACTIVITY_URL (activity_url), REDIS_PASSWORD, PORT or K_* (set by this module or reserved by Cloud Run)."
  }
}

variable "deletion_protection" {
  description = "Refuse to destroy the Cloud Run services from Terraform."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels put on the services, revisions and secrets."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------
# The activity credential and the IDE extension (docs/operations/trust-model.md).

variable "activity_url" {
  description = "HYPERBOLA_ACTIVITY_URL: the control plane's base URL as a workspace reaches it, where the IDE extension reports real use. Null derives session-api's public URL, https://session-api-<project_number>.<region>.run.app; \"\" gives workspaces no URL (the extension stays silent, the heartbeat rule with its cap applies). The key (HYPERBOLA_ACTIVITY_KEY) is generated either way."
  type        = string
  default     = null

  validation {
    condition     = var.activity_url == null ? true : (var.activity_url == "" || can(regex("^https?://[^/?#@]+(/[^?#]*)?$", var.activity_url)))
    error_message = "The activity URL is an http(s) URL such as https://session-api-123456789012.us-central1.run.app (no query, fragment or credentials), or \"\" to turn the extension's reports off."
  }
}

# ---------------------------------------------------------------------------------------
# Wake on access (docs/operations/wake-on-access.md).

variable "wake_on_access" {
  description = "Turn wake on access on: generate HYPERBOLA_WAKE_SECRET in Secret Manager and give both services it and the activator settings. False creates no secret and sets none of them, so every workspace Ingress stays on its workspace."
  type        = bool
  default     = true
  nullable    = false
}

variable "activator_host" {
  description = "HYPERBOLA_ACTIVATOR_HOST: session-api's run.app host, the Host ingress-nginx sends for a sleeping workspace. Null derives session-api-<project_number>.<region>.run.app; pass the value given to cluster-addons' activator_host so the two cannot differ."
  type        = string
  default     = null

  validation {
    condition     = var.activator_host == null ? true : can(regex("^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.activator_host))
    error_message = "The activator host is a lowercase host name such as session-api-123456789012.us-central1.run.app (no scheme, no port)."
  }
}

variable "activator_service" {
  description = "HYPERBOLA_ACTIVATOR_SERVICE: the Service in the workspace namespace that reaches the activator (cluster-addons' hyperbola-activator)."
  type        = string
  default     = "hyperbola-activator"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.activator_service))
    error_message = "The activator Service name is a DNS-1035 label."
  }
}

variable "activator_ca_secret" {
  description = "HYPERBOLA_ACTIVATOR_CA_SECRET: the Secret in the workspace namespace whose ca.crt verifies the activator host (ingress-nginx sends SNI to Cloud Run and verifies its certificate); pass cluster-addons' activator_ca_secret output. Null leaves it unset: the app then uses hyperbola-activator-ca, and verification stays on."
  type        = string
  default     = null

  validation {
    condition     = var.activator_ca_secret == null ? true : can(regex("^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$", var.activator_ca_secret))
    error_message = "The CA Secret name is a DNS subdomain (lowercase letters, digits, - and .)."
  }
}

# ---------------------------------------------------------------------------------------
# Client addresses, the sweep's probe, prices.

variable "trusted_proxies" {
  description = "HYPERBOLA_TRUSTED_PROXIES: CIDRs or addresses whose X-Forwarded-For is believed, for the per-IP limits of the API and the activator. Keep 169.254.0.0/16 (Cloud Run's front end, the container's peer) and add the addresses ingress-nginx reaches Cloud Run from."
  type        = list(string)
  default     = ["169.254.0.0/16"]
  nullable    = false

  validation {
    condition = alltrue([
      for p in var.trusted_proxies : can(cidrhost(p, 0)) || can(cidrhost("${p}/32", 0)) || can(cidrhost("${p}/128", 0))
    ])
    error_message = "Each trusted proxy is a CIDR block (10.10.0.0/20) or a single address (203.0.113.7)."
  }
}

variable "sweep_probe_url" {
  description = "HYPERBOLA_SWEEP_PROBE_URL: where the sweep reads code-server's /healthz; {id}, {pod_ip}, {domain}, {namespace} and {port} are filled by the app. The default reaches the workspace's Ready pod at its address over Direct VPC egress (pod IPs of a VPC-native cluster are routable from the serverless subnet), so a workspace whose certificate is still pending is probed too; it needs the VPC firewall and the workspaces' NetworkPolicy to admit the serverless subnet on the code-server port. https://vs-code-{id}.{domain}/healthz goes through the public Ingress instead (a pending certificate never answers, so that workspace never sleeps); in-cluster Service names do not resolve on Cloud Run."
  type        = string
  default     = "http://{pod_ip}:{port}/healthz"
  nullable    = false

  validation {
    condition     = can(regex("^https?://", var.sweep_probe_url)) && (strcontains(var.sweep_probe_url, "{id}") || strcontains(var.sweep_probe_url, "{pod_ip}"))
    error_message = "The probe URL is an http(s):// template that contains {id} or {pod_ip}."
  }
}

variable "price_per_hour" {
  description = "HYPERBOLA_PRICE_PER_HOUR: what one workspace costs per running hour in the usage report (GET /usage). Null leaves the app's default (0.0123, GKE Autopilot list price for 250m CPU + 256Mi); 0 is free."
  type        = number
  default     = null

  validation {
    condition     = var.price_per_hour == null ? true : var.price_per_hour >= 0
    error_message = "The price per hour must not be negative."
  }
}

variable "storage_price_per_gb_month" {
  description = "HYPERBOLA_STORAGE_PRICE_PER_GB_MONTH: what one GiB of workspace volume costs per month in the usage report. Null leaves the app's default (0: storage left out)."
  type        = number
  default     = null

  validation {
    condition     = var.storage_price_per_gb_month == null ? true : var.storage_price_per_gb_month >= 0
    error_message = "The storage price must not be negative."
  }
}

variable "currency" {
  description = "HYPERBOLA_CURRENCY: the ISO 4217 code the usage report's prices are in."
  type        = string
  default     = "USD"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Z]{3}$", var.currency))
    error_message = "The currency is an ISO 4217 code: three capital letters such as USD or EUR."
  }
}

variable "backup_retention_days" {
  description = "Days an archive of a deleted workspace is kept before the sweep removes it (HYPERBOLA_BACKUP_RETENTION); 0 keeps archives forever."
  type        = number
  default     = 30

  validation {
    condition     = var.backup_retention_days >= 0 && floor(var.backup_retention_days) == var.backup_retention_days
    error_message = "backup_retention_days must be a whole number of days, 0 or more (0 keeps archives forever)."
  }
}

# The switches are booleans of their own, known at plan: the AUTH string and the CA are known
# only once the instance exists, and cannot decide how many secrets there are.
variable "redis_auth_enabled" {
  description = "Memorystore has AUTH on (the redis module's auth_enabled): redis_auth_string is kept in a Secret Manager secret of its own and read by both services as REDIS_PASSWORD."
  type        = bool
  default     = false
  nullable    = false
}

variable "redis_auth_string" {
  description = "Memorystore's AUTH string (the redis module's auth_string), used with redis_auth_enabled."
  type        = string
  default     = null
  sensitive   = true
}

variable "redis_tls" {
  description = "Memorystore has in-transit encryption on (the redis module's tls): both services get redis_ca as HYPERBOLA_REDIS_CA and speak TLS to Redis, verifying it."
  type        = bool
  default     = false
  nullable    = false
}

variable "redis_ca" {
  description = "PEM of the CAs that sign Memorystore's server certificate (the redis module's ca_pem), used with redis_tls."
  type        = string
  default     = null
}

variable "probe_source_cidrs" {
  description = "Ranges the sweep's idle probe comes from (HYPERBOLA_PROBE_SOURCE_CIDRS): each workspace's NetworkPolicy admits them on the workspace port. The serverless subnet's range; empty: no such rule."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.probe_source_cidrs : can(cidrhost(c, 0)) && cidrhost(c, 0) == split("/", c)[0]])
    error_message = "Each probe source must be a CIDR without host bits, such as 10.8.0.0/28."
  }
}

variable "dns_cidrs" {
  description = "DNS servers a workspace may query besides the cluster's kube-dns pods (HYPERBOLA_DNS_CIDRS), on port 53 only: NodeLocal DNSCache's 169.254.20.10/32 when the cluster runs it."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.dns_cidrs : can(cidrhost(c, 0)) && cidrhost(c, 0) == split("/", c)[0]])
    error_message = "Each DNS range must be a CIDR without host bits, such as 169.254.20.10/32."
  }
}

variable "warm_placeholders" {
  description = "HYPERBOLA_WARM_PLACEHOLDERS: placeholder pods that each hold a default workspace's requests on the workspace nodes, at a priority any workspace preempts (docs/operations/warm-path.md). Each is a workspace's room paid for while nobody uses it; 0 keeps none."
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.warm_placeholders >= 0 && var.warm_placeholders <= 1000 && floor(var.warm_placeholders) == var.warm_placeholders
    error_message = "warm_placeholders is a whole number from 0 to 1000."
  }
}

variable "warm_prepull" {
  description = "HYPERBOLA_WARM_PREPULL: a DaemonSet keeps the workspace image pulled on every workspace node (a tiny pod per node and the image's disk space)."
  type        = bool
  default     = false
  nullable    = false
}

variable "placeholder_priority_class" {
  description = "HYPERBOLA_PLACEHOLDER_PRIORITY_CLASS: the PriorityClass the placeholders name (cluster-addons creates it)."
  type        = string
  default     = "hyperbola-placeholder"
  nullable    = false
}
variable "warm_volumes" {
  description = "HYPERBOLA_WARM_VOLUMES: how many workspace volumes the sweep keeps provisioned ahead, so a new session's claim binds at once (docs/operations/warm-path.md). 0: off. The cluster-addons module's warm_volumes must match (it grants the rights)."
  type        = number
  default     = 0

  validation {
    condition     = var.warm_volumes >= 0 && floor(var.warm_volumes) == var.warm_volumes
    error_message = "warm_volumes must be a whole number, 0 or more."
  }
}
