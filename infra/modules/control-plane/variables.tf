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
  description = "IngressClass of the workspace Ingresses (HYPERBOLA_INGRESS_CLASS)."
  type        = string
}

variable "ingress_namespace" {
  description = "Namespace of the ingress controller, the only source workspace NetworkPolicies admit (HYPERBOLA_INGRESS_NAMESPACE)."
  type        = string
}

variable "cluster_issuer" {
  description = "cert-manager ClusterIssuer named in each workspace Ingress (HYPERBOLA_CLUSTER_ISSUER)."
  type        = string
}

variable "backup_pvc" {
  description = "Name of the PVC backup Jobs write zips to (HYPERBOLA_BACKUP_PVC)."
  type        = string
}

variable "user_pod_image" {
  description = "Workspace image (USER_POD_IMAGE)."
  type        = string
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
  description = "Further environment for both services (for example HYPERBOLA_CREATE_RATE_LIMIT). It may override HYPERBOLA_TRUSTED_PROXIES and HYPERBOLA_SWEEP_PROBE_URL, not the variables set from other inputs."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k in keys(var.extra_env) :
      can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k)) && !contains(["FUNCTION_TARGET", "API_KEYS", "PORT"], k) && !startswith(k, "K_")
    ])
    error_message = "Env names must be identifiers and must not be FUNCTION_TARGET, API_KEYS, PORT or K_* (set by this module or reserved by Cloud Run)."
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
