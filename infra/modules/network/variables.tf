variable "project_id" {
  description = "Project that owns the network."
  type        = string
}

variable "name" {
  description = "Name of the VPC; subnets, router and NAT are named after it."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$", var.name))
    error_message = "The name must be a lowercase RFC 1035 label of at most 42 characters."
  }
}

variable "region" {
  description = "Region of the subnets, router and NAT (the same region as the cluster and Cloud Run)."
  type        = string
}

variable "nodes_cidr" {
  description = "Primary range of the nodes subnet (one address per node)."
  type        = string

  validation {
    condition     = can(cidrhost(var.nodes_cidr, 0))
    error_message = "The nodes range must be an IPv4 CIDR block."
  }
}

variable "pods_cidr" {
  description = "Secondary range for Pod IPs; each node takes a block sized by max_pods_per_node (a /26 for 32 Pods)."
  type        = string

  validation {
    condition     = can(cidrhost(var.pods_cidr, 0))
    error_message = "The Pods range must be an IPv4 CIDR block."
  }
}

variable "services_cidr" {
  description = "Secondary range for ClusterIP Services."
  type        = string

  validation {
    condition     = can(cidrhost(var.services_cidr, 0))
    error_message = "The Services range must be an IPv4 CIDR block."
  }
}

variable "serverless_cidr" {
  description = "Range of the subnet Cloud Run takes addresses from for Direct VPC egress (a /26 or larger; each instance uses one address, with headroom during revisions)."
  type        = string

  validation {
    condition     = can(cidrhost(var.serverless_cidr, 0)) && tonumber(split("/", var.serverless_cidr)[1]) <= 26
    error_message = "The serverless range must be an IPv4 CIDR block of /26 or larger."
  }
}

variable "pods_range_name" {
  description = "Name of the Pods secondary range."
  type        = string
  default     = "pods"
}

variable "services_range_name" {
  description = "Name of the Services secondary range."
  type        = string
  default     = "services"
}

variable "nat_ip_count" {
  description = "Reserved external addresses for Cloud NAT (MANUAL_ONLY): known in advance and stable (output nat_ips). 0 lets Google allocate them (AUTO_ONLY), which may change them. One address serves about 1000 nodes at the default 64 ports per node."
  type        = number
  default     = 0

  validation {
    condition     = var.nat_ip_count >= 0 && var.nat_ip_count <= 16 && floor(var.nat_ip_count) == var.nat_ip_count
    error_message = "Between 0 and 16 NAT addresses."
  }
}

variable "workspace_port" {
  description = "code-server's port in workspace pods (the control plane's user_pod_port): the one port the serverless subnet may reach in the Pods range."
  type        = number
  default     = 8080

  validation {
    condition     = var.workspace_port >= 1 && var.workspace_port <= 65535 && floor(var.workspace_port) == var.workspace_port
    error_message = "The workspace port must be a port number."
  }
}
