variable "project_id" {
  description = "Project that owns the instance."
  type        = string
}

variable "name" {
  description = "Instance id."
  type        = string

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{0,38}[a-z0-9]$", var.name))
    error_message = "The instance id must be a lowercase label of 2-40 characters."
  }
}

variable "region" {
  description = "Region of the instance (the same as Cloud Run's)."
  type        = string
}

variable "network_id" {
  description = "ID of the VPC the instance is peered with."
  type        = string
}

variable "tier" {
  description = "Service tier: BASIC (single node, cheapest) or STANDARD_HA (replica with automatic failover)."
  type        = string
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.tier)
    error_message = "The tier must be BASIC or STANDARD_HA."
  }
}

variable "memory_size_gb" {
  description = "Memory in GiB. 1 GiB holds far more than the 10,000 sessions the sweep is benchmarked with."
  type        = number
  default     = 1

  validation {
    condition     = var.memory_size_gb >= 1 && var.memory_size_gb <= 300
    error_message = "Memory must be between 1 and 300 GiB."
  }
}

variable "redis_version" {
  description = "Redis version of the instance."
  type        = string
  default     = "REDIS_7_2"

  validation {
    condition     = can(regex("^REDIS_[0-9]+(_[0-9]+)?$", var.redis_version))
    error_message = "The version must look like REDIS_7_2."
  }
}

variable "labels" {
  description = "Labels put on the instance."
  type        = map(string)
  default     = {}
}
