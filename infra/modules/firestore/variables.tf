variable "project_id" {
  description = "Project that owns the database."
  type        = string
}

variable "database_id" {
  description = "Database id; the app uses \"(default)\"."
  type        = string
  default     = "(default)"
}

variable "location_id" {
  description = "Firestore location: a region such as us-central1 or a multi-region such as nam5. Cannot be changed after creation."
  type        = string

  validation {
    condition     = can(regex("^([a-z]+-[a-z]+[0-9]+|nam[0-9]+|eur[0-9]+)$", var.location_id))
    error_message = "The location must be a region (us-central1) or a multi-region (nam5, eur3)."
  }
}

variable "deletion_protection" {
  description = "Protect the database from deletion (and leave it in place if Terraform destroys the resource)."
  type        = bool
  default     = true
}
