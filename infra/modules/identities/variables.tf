variable "project_id" {
  description = "Project that owns the service accounts."
  type        = string
}

variable "prefix" {
  description = "Prefix of the service account ids (<prefix>-api, <prefix>-sweep, <prefix>-scheduler)."
  type        = string
  default     = "hyperbola"

  validation {
    # account ids are 6-30 characters; the longest suffix is "-scheduler" (10).
    condition     = can(regex("^[a-z][-a-z0-9]{1,18}[a-z0-9]$", var.prefix))
    error_message = "The prefix must be a lowercase label of 3-20 characters."
  }
}
