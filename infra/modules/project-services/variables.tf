variable "project_id" {
  description = "Project in which the APIs are enabled."
  type        = string
}

variable "services" {
  description = "Service names to enable, such as container.googleapis.com."
  type        = list(string)

  validation {
    condition     = alltrue([for s in var.services : can(regex("^[a-z0-9.-]+\\.googleapis\\.com$", s))])
    error_message = "Each service must be an API name ending in .googleapis.com."
  }
}
