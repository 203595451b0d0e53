variable "project_id" {
  description = "Project that owns the cluster."
  type        = string
}

variable "name" {
  description = "Cluster name; the node service account and firewall rule are named after it."
  type        = string

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{0,22}[a-z0-9]$", var.name))
    error_message = "The cluster name must be a lowercase label of 2-24 characters (the node service account id adds \"-nodes\")."
  }
}

variable "location" {
  description = "Zone of the cluster (zonal on purpose: zonal disks for workspaces and backups must share a zone)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.location))
    error_message = "The location must be a zone such as us-central1-a."
  }
}

variable "network_id" {
  description = "ID of the VPC the cluster joins."
  type        = string
}

variable "subnetwork_id" {
  description = "ID of the nodes subnet (with the Pods and Services secondary ranges)."
  type        = string
}

variable "pods_range_name" {
  description = "Secondary range name for Pods."
  type        = string
}

variable "services_range_name" {
  description = "Secondary range name for Services."
  type        = string
}

variable "serverless_cidr" {
  description = "Cloud Run Direct VPC egress range; added to the authorized networks when those are enabled."
  type        = string
}

variable "master_ipv4_cidr_block" {
  description = "The /28 that holds the control plane's private endpoint; must not overlap any other range in the VPC."
  type        = string

  validation {
    condition     = can(cidrhost(var.master_ipv4_cidr_block, 0)) && endswith(var.master_ipv4_cidr_block, "/28")
    error_message = "The control plane range must be an IPv4 /28."
  }
}

variable "master_authorized_networks" {
  description = "Networks allowed to reach the control plane (operators running Terraform or kubectl). Empty leaves authorized networks off: the endpoint accepts connections from anywhere and relies on IAM + RBAC."
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  default = []

  validation {
    condition     = alltrue([for n in var.master_authorized_networks : can(cidrhost(n.cidr_block, 0))])
    error_message = "Each authorized network needs an IPv4 CIDR block."
  }
}

variable "release_channel" {
  description = "GKE release channel."
  type        = string
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE"], var.release_channel)
    error_message = "The release channel must be RAPID, REGULAR or STABLE."
  }
}

variable "machine_type" {
  description = "Machine type of the workspace nodes (sized for 8-10 workspaces of 250m/256Mi each)."
  type        = string
  default     = "e2-standard-4"
}

variable "node_disk_size_gb" {
  description = "Boot disk size of each node in GB (holds container images, including code-server's)."
  type        = number
  default     = 50

  validation {
    condition     = var.node_disk_size_gb >= 20
    error_message = "Nodes need at least a 20 GB boot disk."
  }
}

variable "min_nodes" {
  description = "Minimum number of workspace nodes."
  type        = number
  default     = 1

  validation {
    condition     = var.min_nodes >= 1
    error_message = "Keep at least one node: the ingress controller and cert-manager run there."
  }
}

variable "max_nodes" {
  description = "Maximum number of workspace nodes (about 8-10 running workspaces each)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_nodes >= 1 && var.max_nodes <= 1000
    error_message = "The maximum node count must be between 1 and 1000."
  }
}

variable "max_pods_per_node" {
  description = "Pods per node; 32 gives each node a /26 from the Pods range and fits 8-10 workspaces plus system Pods."
  type        = number
  default     = 32

  validation {
    condition     = var.max_pods_per_node >= 16 && var.max_pods_per_node <= 110
    error_message = "Pods per node must be between 16 and 110."
  }
}

variable "node_tag" {
  description = "Network tag on every node, used by the webhook firewall rule."
  type        = string
  default     = "hyperbola-gke-node"
}

variable "enable_filestore_csi" {
  description = "Enable the Filestore CSI driver (needed only for a ReadWriteMany backup volume)."
  type        = bool
  default     = false
}

variable "gateway_api_channel" {
  description = "Gateway API on the cluster: CHANNEL_STANDARD installs GKE's Gateway controller and the standard-channel CRDs (gateway routing); null leaves the setting alone (ingress routing)."
  type        = string
  default     = null

  validation {
    condition     = var.gateway_api_channel == null ? true : contains(["CHANNEL_STANDARD", "CHANNEL_DISABLED"], var.gateway_api_channel)
    error_message = "The Gateway API channel is CHANNEL_STANDARD, CHANNEL_DISABLED or null."
  }
}

variable "deletion_protection" {
  description = "Refuse to destroy the cluster from Terraform."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels put on the cluster and its nodes."
  type        = map(string)
  default     = {}
}
