variable "project_id" {
  description = "Project of the ingress IP."
  type        = string
}

variable "region" {
  description = "Region of the cluster; the ingress IP is regional (a network load balancer)."
  type        = string
}

variable "prefix" {
  description = "Prefix of the GCP resources this module names (the ingress IP)."
  type        = string
  default     = "hyperbola"
}

variable "domain" {
  description = "Parent domain of the workspace hosts (named in the ingress IP's description)."
  type        = string
}

variable "enable_ingress" {
  description = "Run ingress-nginx (on a reserved regional IP), cert-manager and the Let's Encrypt ClusterIssuer: ingress routing, or gateway routing while both entry points serve (keep_ingress). False removes them."
  type        = bool
  default     = true
  nullable    = false
}

variable "enable_relay" {
  description = "Gateway routing: hyperbola-activator becomes a ClusterIP Service in front of the activator relay's Deployment (relay_image), with its NetworkPolicy, HealthCheckPolicy and GCPBackendPolicy. False keeps the ExternalName Service of ingress routing. A switch of its own, known at plan, because the image's reference may not be."
  type        = bool
  default     = false
  nullable    = false
}

variable "relay_image" {
  description = "Image of the activator relay (images/relay, hyperbola-relay:<tag>), needed with enable_relay."
  type        = string
  default     = null

  validation {
    condition     = var.relay_image == null ? true : can(regex("^[a-z0-9.-]+(:[0-9]+)?/[^\\s:@]+(:[A-Za-z0-9_.-]+|@sha256:[a-f0-9]{64})$", var.relay_image))
    error_message = "The relay image must be a full reference with a tag or digest, such as us-central1-docker.pkg.dev/PROJECT/hyperbola/hyperbola-relay:1."
  }
}

variable "relay_replicas" {
  description = "Replicas of the activator relay (spread over nodes when it can)."
  type        = number
  default     = 2
  nullable    = false

  validation {
    condition     = var.relay_replicas >= 1 && floor(var.relay_replicas) == var.relay_replicas
    error_message = "At least one relay replica, a whole number."
  }
}

variable "gateway_source_cidrs" {
  description = "Where the Gateway's traffic and its health checks come from: Google's front ends and health checkers. The relay's NetworkPolicy admits them (the workspaces' own take HYPERBOLA_GATEWAY_SOURCE_CIDRS)."
  type        = list(string)
  default     = ["35.191.0.0/16", "130.211.0.0/22"]
  nullable    = false

  validation {
    condition     = length(var.gateway_source_cidrs) > 0 && alltrue([for c in var.gateway_source_cidrs : can(cidrhost(c, 0))])
    error_message = "Give at least one CIDR block, such as 35.191.0.0/16."
  }
}

variable "namespace" {
  description = "Namespace of the workspaces and the control plane's Role."
  type        = string
  default     = "hyperbola"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "The namespace must be a DNS label."
  }
}

variable "api_service_account_email" {
  description = "session-api's Google service account; bound to the Role as a Kubernetes User."
  type        = string
}

variable "sweep_service_account_email" {
  description = "idle-sweep's Google service account; bound to the Role as a Kubernetes User."
  type        = string
}

variable "ingress_namespace" {
  description = "Namespace of ingress-nginx (workspace NetworkPolicies admit traffic from it)."
  type        = string
  default     = "ingress-nginx"
}

variable "ingress_class_name" {
  description = "Name of the IngressClass ingress-nginx serves."
  type        = string
  default     = "nginx"
}

variable "ingress_nginx_chart_version" {
  description = "Version of the ingress-nginx Helm chart."
  type        = string
}

variable "cert_manager_chart_version" {
  description = "Version of the cert-manager Helm chart (jetstack), such as v1.19.4."
  type        = string

  validation {
    condition     = can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+$", var.cert_manager_chart_version))
    error_message = "The cert-manager chart version looks like v1.19.4."
  }
}

variable "cluster_issuer_name" {
  description = "Name of the Let's Encrypt ClusterIssuer."
  type        = string
  default     = "letsencrypt"
}

variable "acme_email" {
  description = "Contact address registered with Let's Encrypt (expiry and policy notices); needed with enable_ingress."
  type        = string
  default     = null

  validation {
    condition     = var.acme_email == null ? true : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.acme_email))
    error_message = "The ACME email must be an email address."
  }
}

variable "acme_server" {
  description = "ACME directory URL: Let's Encrypt production by default; the staging URL avoids rate limits while testing."
  type        = string
  default     = "https://acme-v02.api.letsencrypt.org/directory"

  validation {
    condition     = startswith(var.acme_server, "https://")
    error_message = "The ACME server must be an https:// URL."
  }
}

variable "backup_pvc_name" {
  description = "Name of the backup PVC that backup Jobs write to."
  type        = string
  default     = "hyperbola-backups"
}

variable "backup_storage_class" {
  description = "StorageClass of the backup PVC: standard-rwo/premium-rwo (a persistent disk, ReadWriteOnce) or standard-rwx/premium-rwx (Filestore, ReadWriteMany)."
  type        = string
  default     = "standard-rwo"

  validation {
    condition     = contains(["standard-rwo", "premium-rwo", "standard-rwx", "premium-rwx"], var.backup_storage_class)
    error_message = "Use standard-rwo, premium-rwo, standard-rwx or premium-rwx."
  }
}

variable "backup_volume_size" {
  description = "Requested size of the backup PVC (a Kubernetes quantity such as 50Gi; Filestore classes need at least 1Ti)."
  type        = string
  default     = "50Gi"

  validation {
    condition     = can(regex("^[0-9]+(Gi|Ti)$", var.backup_volume_size))
    error_message = "The size must be a whole number of Gi or Ti, such as 50Gi."
  }
}

variable "create_activator_service" {
  description = "Create the hyperbola-activator Service that reaches session-api (wake on access): ExternalName, or the relay's with relay_image."
  type        = bool
  default     = true
}

variable "activator_host" {
  description = "Host name of session-api (from its run.app URL), the target of the hyperbola-activator Service or of its relay."
  type        = string
  default     = ""

  validation {
    condition     = !can(regex("^https?://", var.activator_host))
    error_message = "Give a host name, not a URL."
  }
}

variable "activator_ca_bundle" {
  description = "PEM bundle of the CAs that verify session-api's run.app certificate (a system bundle, say). The Secret activator_ca_secret_name (key ca.crt, HYPERBOLA_ACTIVATOR_CA_SECRET) is created with the activator's Service from it; null uses the public roots this module ships (activator-roots.pem: Google Trust Services and GlobalSign)."
  type        = string
  default     = null

  validation {
    condition     = var.activator_ca_bundle == null ? true : strcontains(var.activator_ca_bundle, "-----BEGIN CERTIFICATE-----")
    error_message = "The CA bundle must hold PEM certificates (-----BEGIN CERTIFICATE-----)."
  }
}

variable "activator_ca_secret_name" {
  description = "Name of the Secret that holds the activator's CA bundle (HYPERBOLA_ACTIVATOR_CA_SECRET; the app's default is hyperbola-activator-ca)."
  type        = string
  default     = "hyperbola-activator-ca"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$", var.activator_ca_secret_name))
    error_message = "The Secret name is a DNS subdomain."
  }
}

variable "namespace_quota" {
  description = "ResourceQuota hard limits of the workspace namespace (the sum of every workspace and Job in it). Keep limits.cpu out: workspaces have no CPU limit."
  type        = map(string)
  default = {
    "requests.cpu"               = "64"
    "requests.memory"            = "256Gi"
    "limits.memory"              = "1Ti"
    "requests.storage"           = "5Ti"
    "persistentvolumeclaims"     = "500"
    "pods"                       = "300"
    "requests.ephemeral-storage" = "200Gi"
    "limits.ephemeral-storage"   = "2Ti"
  }

  validation {
    condition     = !contains(keys(var.namespace_quota), "limits.cpu")
    error_message = "Workspaces have no CPU limit: a limits.cpu quota would refuse every one."
  }
}

variable "max_container_memory" {
  description = "LimitRange: a container's memory limit at most. The control plane sets 4 times the request, so 4 x HYPERBOLA_MAX_MEMORY."
  type        = string
  default     = "64Gi"
}

variable "max_container_ephemeral_storage" {
  description = "LimitRange: a container's ephemeral-storage limit at most (a workspace's is 4Gi)."
  type        = string
  default     = "4Gi"
}

variable "max_claim_storage" {
  description = "LimitRange: a PersistentVolumeClaim's size at most; at least HYPERBOLA_MAX_STORAGE."
  type        = string
  default     = "100Gi"
}

variable "placeholder_priority_class_name" {
  description = "Name of the warm path's placeholders' PriorityClass (HYPERBOLA_PLACEHOLDER_PRIORITY_CLASS): value -10, preemptionPolicy Never."
  type        = string
  default     = "hyperbola-placeholder"
}

variable "warm_volumes" {
  description = "Size of the warm volume pool (HYPERBOLA_WARM_VOLUMES); above 0 the control plane gets cluster-scoped rights on PersistentVolumes and read on Nodes (docs/operations/trust-model.md). 0: off, no such rights."
  type        = number
  default     = 0

  validation {
    condition     = var.warm_volumes >= 0 && floor(var.warm_volumes) == var.warm_volumes
    error_message = "warm_volumes must be a whole number, 0 or more."
  }
}
