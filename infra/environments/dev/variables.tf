# ---------------------------------------------------------------------------------------
# Required: what only you know.

variable "project_id" {
  description = "GCP project to deploy into (an empty project with billing enabled)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "A project id is 6-30 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "domain" {
  description = "Parent domain of the workspaces: each is served at https://vs-code-<id>.<domain>, so *.<domain> must point at the entry point (output wildcard_dns_record)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain))
    error_message = "The domain must be a lowercase DNS name such as preview.example.com (no scheme, no trailing dot)."
  }
}

variable "acme_email" {
  description = "Email registered with Let's Encrypt for the workspace certificates: needed with ingress routing (and while keep_ingress), not with gateway routing."
  type        = string
  default     = null

  validation {
    condition     = var.acme_email == null ? true : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.acme_email))
    error_message = "The ACME email must be an email address."
  }
}

# ---------------------------------------------------------------------------------------
# Routing (docs/operations/routing.md).

variable "routing" {
  description = "How workspace hosts are served. gateway: GKE's managed Gateway (a global external Application Load Balancer) with one Certificate Manager wildcard certificate, an HTTPRoute per workspace, the activator behind an in-cluster relay; no ingress-nginx, no cert-manager. ingress: ingress-nginx and one Let's Encrypt certificate per workspace (50 new certificates per week at most). A deployment that runs ingress today must set \"ingress\" before applying this version, then migrate (routing.md)."
  type        = string
  default     = "gateway"
  nullable    = false

  validation {
    condition     = contains(["ingress", "gateway"], var.routing)
    error_message = "Routing is ingress or gateway."
  }
}

variable "keep_ingress" {
  description = "The migration's first phase, with routing = gateway: keep ingress-nginx, cert-manager and every workspace's Ingress beside the Gateway and its HTTPRoutes (HYPERBOLA_KEEP_INGRESS=true), so both entry points serve every session while the wildcard record moves. Set false once the record has moved and its TTL has passed."
  type        = bool
  default     = false
  nullable    = false
}

variable "wildcard_dns_target" {
  description = "Which entry point the *.<domain> record names (created with dns_managed_zone; printed as output wildcard_dns_record): ingress or gateway. Null follows the routing, except that with keep_ingress it stays on ingress until set to gateway: moving it is a step of its own in the migration."
  type        = string
  default     = null

  validation {
    condition     = var.wildcard_dns_target == null ? true : contains(["ingress", "gateway"], var.wildcard_dns_target)
    error_message = "The wildcard record names ingress, gateway, or null (follow the routing)."
  }
}

variable "gateway_name" {
  description = "Name of the shared Gateway the control plane writes in the workspace namespace (HYPERBOLA_GATEWAY_NAME)."
  type        = string
  default     = "hyperbola"
}

variable "relay_image" {
  description = "Full reference of the activator relay's image (gateway routing with wake_on_access). Null uses <registry>/hyperbola-relay:<relay_image_tag>, built from images/relay and pushed with infra/cloudbuild/images.yaml before the second apply."
  type        = string
  default     = null
}

variable "relay_image_tag" {
  description = "Tag of images/relay in the project registry (hyperbola-relay), used when relay_image is null."
  type        = string
  default     = "1"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.relay_image_tag))
    error_message = "A Docker tag is letters, digits, _, . and -, at most 128 characters."
  }
}

# ---------------------------------------------------------------------------------------
# Placement and naming.

variable "region" {
  description = "Region of Cloud Run, Memorystore, the registry, the subnets and the Scheduler job."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "The region must look like us-central1."
  }
}

variable "zone" {
  description = "Zone of the (zonal) GKE cluster; must be in var.region."
  type        = string
  default     = "us-central1-a"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.zone))
    error_message = "The zone must look like us-central1-a."
  }
}

variable "name" {
  description = "Base name of the resources (VPC, cluster, Redis, service accounts, secrets)."
  type        = string
  default     = "hyperbola"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{1,14}[a-z0-9]$", var.name))
    error_message = "The name must be a lowercase label of 3-16 characters."
  }
}

variable "labels" {
  description = "Extra labels on the GCP resources that take labels."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Protect the cluster, the Cloud Run services and Firestore from `terraform destroy`. Set false (and apply) before tearing a dev project down."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------
# The control plane's image and configuration.

variable "functions_image" {
  description = "Full image reference of ./functions/cmd/server. Null uses <registry>/functions:<functions_image_tag> in the repository this configuration creates."
  type        = string
  default     = null
}

variable "functions_image_tag" {
  description = "Tag of the functions image in the project registry (used when functions_image is null). Push a new tag and apply to roll out a new build."
  type        = string
  default     = "v1"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.functions_image_tag))
    error_message = "A Docker tag is letters, digits, _, . and -, at most 128 characters."
  }
}

variable "user_pod_image" {
  description = "Full reference of the workspace image (code-server listening on 8080, with an unauthenticated /healthz). Null: <registry>/hyperbola-workspace:<workspace_image_tag> when that tag is set (images/workspace, pushed with infra/cloudbuild/images.yaml), else docker.io/codercom/code-server:4.96.4."
  type        = string
  default     = null
}

variable "workspace_image_tag" {
  description = "Tag of images/workspace in the project registry (hyperbola-workspace), used when user_pod_image is null. Null keeps the public docker.io/codercom/code-server:4.96.4."
  type        = string
  default     = null

  validation {
    condition     = var.workspace_image_tag == null ? true : can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.workspace_image_tag))
    error_message = "A Docker tag is letters, digits, _, . and -, at most 128 characters."
  }
}

variable "backup_image" {
  description = "Full reference of the backup Jobs' image (HYPERBOLA_BACKUP_IMAGE: a shell with find, du and df, zip and unzip, uid 1000). Null uses <registry>/hyperbola-backup:<backup_image_tag>, built from images/backup and pushed with infra/cloudbuild/images.yaml before the second apply."
  type        = string
  default     = null
}

variable "backup_image_tag" {
  description = "Tag of images/backup in the project registry (hyperbola-backup), used when backup_image is null. Push a new tag and apply to roll out a new backup image."
  type        = string
  default     = "1"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.backup_image_tag))
    error_message = "A Docker tag is letters, digits, _, . and -, at most 128 characters."
  }
}

variable "workspace_node_selector" {
  description = "Node labels that workspace and backup pods require (HYPERBOLA_NODE_SELECTOR), such as { \"hyperbola.dev/pool\" = \"workspaces\" } (the label of the workspaces pool). Empty: any node."
  type        = map(string)
  default     = {}
  nullable    = false
}

variable "workspace_tolerations" {
  description = "Taints that workspace and backup pods tolerate (HYPERBOLA_TOLERATIONS), for a node pool tainted for them: { key, value (optional: without it any value), effect = NoSchedule | PreferNoSchedule | NoExecute }."
  type = list(object({
    key    = string
    value  = optional(string)
    effect = string
  }))
  default  = []
  nullable = false
}

variable "session_ttl_seconds" {
  description = "Maximum life of a session (SESSION_TTL); expired sessions are backed up and deleted by the sweep."
  type        = number
  default     = 86400

  validation {
    condition     = var.session_ttl_seconds >= 600
    error_message = "The session TTL must be at least 600 seconds."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the workspaces."
  type        = string
  default     = "hyperbola"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "The namespace must be a DNS label."
  }
}

variable "workspace_storage_class" {
  description = "StorageClass of workspace PVCs (GKE's standard-rwo is a balanced persistent disk that allows expansion)."
  type        = string
  default     = "standard-rwo"
}

variable "warm_volumes" {
  description = "Workspace volumes kept provisioned ahead so a new session starts without waiting for a disk (HYPERBOLA_WARM_VOLUMES; docs/operations/warm-path.md). Each is a billed disk of the default workspace size. 0: off; above 0 the control plane gets cluster-scoped rights on PersistentVolumes."
  type        = number
  default     = 0
}

variable "api_key_count" {
  description = "Number of API keys generated for session-api (two allow rotation without downtime)."
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

  validation {
    condition     = var.api_max_instances >= 1 && var.api_max_instances <= 100
    error_message = "Between 1 and 100 instances (each takes an address in the serverless subnet)."
  }
}

variable "extra_env" {
  description = "Further environment for both Cloud Run services, for settings without a variable of their own (HYPERBOLA_IDLE_TIMEOUT, HYPERBOLA_CREATE_RATE_LIMIT, ...; the table in docs/operations/deploy.md)."
  type        = map(string)
  default     = {}
}

variable "sweep_probe_url" {
  description = "HYPERBOLA_SWEEP_PROBE_URL template ({id}, {pod_ip}, {domain}, {namespace}, {port}). Null: http://{pod_ip}:{port}/healthz, the workspace's Ready pod at its address over Direct VPC egress (independent of its certificate). https://vs-code-{id}.{domain}/healthz goes through the public Ingress, where a workspace whose certificate is pending never answers and never sleeps."
  type        = string
  default     = null

  validation {
    condition     = var.sweep_probe_url == null ? true : can(regex("^https?://", var.sweep_probe_url)) && (strcontains(var.sweep_probe_url, "{id}") || strcontains(var.sweep_probe_url, "{pod_ip}"))
    error_message = "The probe URL is an http(s):// template that contains {id} or {pod_ip}."
  }
}

# ---------------------------------------------------------------------------------------
# The IDE extension's reports of real use (docs/operations/trust-model.md).

variable "activity_url" {
  description = "HYPERBOLA_ACTIVITY_URL: where workspaces report real use (the IDE extension, with each session's activity credential). Null is session-api's public run.app URL; \"\" turns the reports off (workspaces sleep by the heartbeat rule with its cap)."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------
# Wake on access and client addresses (docs/operations/wake-on-access.md).

variable "wake_on_access" {
  description = "Serve a sleeping workspace's address from the activator (wakes it for its owner). True generates HYPERBOLA_WAKE_SECRET in Secret Manager and gives both Cloud Run services it, HYPERBOLA_ACTIVATOR_HOST and HYPERBOLA_ACTIVATOR_SERVICE; false sets none of them."
  type        = bool
  default     = true
}

variable "activator_ca_file" {
  description = "Path (on the machine running Terraform) of a PEM bundle of root CAs, such as /etc/ssl/certs/ca-certificates.crt, that verifies session-api's certificate. Null uses the public roots cluster-addons ships (Google Trust Services and GlobalSign). Either way it becomes the Secret hyperbola-activator-ca (HYPERBOLA_ACTIVATOR_CA_SECRET): nginx sends SNI to Cloud Run and verifies it."
  type        = string
  default     = null

  validation {
    condition     = var.activator_ca_file == null ? true : fileexists(var.activator_ca_file)
    error_message = "The CA bundle file does not exist."
  }
}

variable "extra_trusted_proxies" {
  description = "More CIDRs or addresses for HYPERBOLA_TRUSTED_PROXIES, beside Cloud Run's front end and (with wake_on_access) the cluster's egress: the nodes range and the NAT addresses. Add what the activator logs as ip for every visitor, if it is one address for all."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for p in var.extra_trusted_proxies : can(cidrhost(p, 0)) || can(cidrhost("${p}/32", 0)) || can(cidrhost("${p}/128", 0))
    ])
    error_message = "Each trusted proxy is a CIDR block (10.10.0.0/20) or a single address (203.0.113.7)."
  }
}

variable "nat_ip_count" {
  description = "Reserved external addresses for the nodes' Cloud NAT (output nat_ips; trusted as proxies with wake_on_access). 0: addresses allocated by Google, which may change. Changing it on a running deployment changes the nodes' egress address (open connections through the NAT reset)."
  type        = number
  default     = 1

  validation {
    condition     = var.nat_ip_count >= 0 && var.nat_ip_count <= 16 && floor(var.nat_ip_count) == var.nat_ip_count
    error_message = "Between 0 and 16 NAT addresses."
  }
}

# ---------------------------------------------------------------------------------------
# Usage report prices (GET /usage).

variable "price_per_hour" {
  description = "HYPERBOLA_PRICE_PER_HOUR: estimated cost of one workspace per running hour. Null keeps the app's default, 0.0123 (GKE Autopilot list price for 250m CPU + 256Mi); on this Standard cluster a fair figure is a node's hourly price divided by the workspaces it holds (8-10 on e2-standard-4)."
  type        = number
  default     = null

  validation {
    condition     = var.price_per_hour == null ? true : var.price_per_hour >= 0
    error_message = "The price per hour must not be negative."
  }
}

variable "storage_price_per_gb_month" {
  description = "HYPERBOLA_STORAGE_PRICE_PER_GB_MONTH: cost of one GiB of workspace volume per month. Null keeps the app's default, 0 (storage left out of the report)."
  type        = number
  default     = null

  validation {
    condition     = var.storage_price_per_gb_month == null ? true : var.storage_price_per_gb_month >= 0
    error_message = "The storage price must not be negative."
  }
}

variable "currency" {
  description = "HYPERBOLA_CURRENCY: ISO 4217 code of the prices above."
  type        = string
  default     = "USD"

  validation {
    condition     = can(regex("^[A-Z]{3}$", var.currency))
    error_message = "The currency is an ISO 4217 code: three capital letters such as USD or EUR."
  }
}

# ---------------------------------------------------------------------------------------
# Data stores.

variable "redis_tier" {
  description = "Memorystore tier: BASIC (one node) or STANDARD_HA (replica and automatic failover)."
  type        = string
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "The Redis tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_memory_size_gb" {
  description = "Memorystore memory in GiB."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_memory_size_gb >= 1 && var.redis_memory_size_gb <= 300
    error_message = "Memory must be between 1 and 300 GiB."
  }
}

variable "firestore_location" {
  description = "Firestore location (region or multi-region such as nam5); null uses var.region. Fixed once created."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------
# Cluster.

variable "node_machine_type" {
  description = "Machine type of workspace nodes; e2-standard-4 fits the seed's 8-10 workspaces (250m/256Mi each) with headroom."
  type        = string
  default     = "e2-standard-4"
}

variable "node_min_count" {
  description = "Minimum number of workspace nodes."
  type        = number
  default     = 1

  validation {
    condition     = var.node_min_count >= 1
    error_message = "Keep at least one node (the ingress controller and cert-manager run there)."
  }
}

variable "node_max_count" {
  description = "Maximum number of workspace nodes (8-10 running workspaces each: 10 nodes is about 100 concurrent users)."
  type        = number
  default     = 10

  validation {
    condition     = var.node_max_count >= 1 && var.node_max_count <= 200
    error_message = "Between 1 and 200 nodes."
  }
}

variable "master_authorized_networks" {
  description = "CIDRs allowed to reach the GKE control plane (where you run terraform/kubectl). Empty: authorized networks off, the endpoint is protected by IAM and RBAC only. When set, Cloud Run's subnet is added automatically."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []
}

# ---------------------------------------------------------------------------------------
# Network ranges (change only if they collide with networks you peer with).

variable "nodes_cidr" {
  description = "Primary range of the nodes subnet."
  type        = string
  default     = "10.10.0.0/20"
}

variable "pods_cidr" {
  description = "Secondary range for Pods (a /16 fits 1024 nodes at 32 Pods each)."
  type        = string
  default     = "10.20.0.0/16"
}

variable "services_cidr" {
  description = "Secondary range for Services."
  type        = string
  default     = "10.30.0.0/20"
}

variable "serverless_cidr" {
  description = "Subnet for Cloud Run Direct VPC egress."
  type        = string
  default     = "10.10.16.0/24"
}

variable "master_ipv4_cidr_block" {
  description = "The /28 of the GKE control plane's private endpoint."
  type        = string
  default     = "172.16.0.0/28"
}

# ---------------------------------------------------------------------------------------
# In-cluster add-ons.

variable "ingress_nginx_chart_version" {
  description = "ingress-nginx Helm chart version (4.15.1 ships controller v1.15.1)."
  type        = string
  default     = "4.15.1"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.ingress_nginx_chart_version))
    error_message = "The chart version looks like 4.15.1."
  }
}

variable "cert_manager_chart_version" {
  description = "cert-manager Helm chart version."
  type        = string
  default     = "v1.19.4"
}

variable "acme_server" {
  description = "ACME directory: Let's Encrypt production by default; use https://acme-staging-v02.api.letsencrypt.org/directory while testing."
  type        = string
  default     = "https://acme-v02.api.letsencrypt.org/directory"
}

variable "dns_managed_zone" {
  description = "Name of a Cloud DNS zone in this project that serves var.domain; when set, the *.<domain> record (and, with gateway routing, the certificate's DNS authorization CNAME) is created. Null: create them where your DNS lives (outputs wildcard_dns_record, dns_authorization_record)."
  type        = string
  default     = null
}

variable "backup_storage_class" {
  description = "StorageClass of the backup PVC hyperbola-backups: standard-rwo (persistent disk, ReadWriteOnce, default) or standard-rwx (Filestore, ReadWriteMany, 1 TiB minimum)."
  type        = string
  default     = "standard-rwo"

  validation {
    condition     = contains(["standard-rwo", "premium-rwo", "standard-rwx", "premium-rwx"], var.backup_storage_class)
    error_message = "Use standard-rwo, premium-rwo, standard-rwx or premium-rwx."
  }
}

variable "backup_volume_size" {
  description = "Size of the backup PVC (50Gi holds hundreds of zipped workspaces; Filestore needs 1Ti)."
  type        = string
  default     = "50Gi"
}

variable "backup_retention_days" {
  description = "Days an archive of a deleted workspace is kept before the sweep removes it (HYPERBOLA_BACKUP_RETENTION); 0 keeps archives forever."
  type        = number
  default     = 30
}

variable "warm_placeholders" {
  description = "Placeholder pods that each hold a default workspace's room on the workspace nodes, so a new workspace preempts one instead of waiting for the autoscaler to add a node (docs/operations/warm-path.md). Each costs a running workspace's share of a node; 0 keeps none."
  type        = number
  default     = 0
  nullable    = false
}

variable "warm_prepull" {
  description = "Keep the workspace image pulled on every workspace node (a DaemonSet), so a workspace on a new node does not wait for the pull."
  type        = bool
  default     = false
  nullable    = false
}
