variable "project_id" {
  description = "Project of the address, the certificate, its map and the optional DNS record."
  type        = string
}

variable "prefix" {
  description = "Prefix of the names of the GCP resources this module creates."
  type        = string
  default     = "hyperbola"
}

variable "domain" {
  description = "Parent domain of the workspace hosts: the certificate covers *.<domain> and <domain>."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain))
    error_message = "The domain must be a lowercase DNS name such as preview.example.com."
  }
}

variable "gateway_name" {
  description = "Name of the Gateway the control plane writes (HYPERBOLA_GATEWAY_NAME); only named in descriptions here."
  type        = string
  default     = "hyperbola"
}

variable "dns_managed_zone" {
  description = "Cloud DNS managed zone (in this project) that serves the domain; when set, the DNS authorization's CNAME is created there. Null: create it yourself (output dns_authorization_record)."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels on the Certificate Manager resources."
  type        = map(string)
  default     = {}
}
