variable "project_id" {
  description = "Project that owns the repository."
  type        = string
}

variable "location" {
  description = "Region of the repository (the same region as Cloud Run and GKE keeps pulls local)."
  type        = string
}

variable "repository_id" {
  description = "Repository id; images are LOCATION-docker.pkg.dev/PROJECT/REPOSITORY_ID/NAME:TAG."
  type        = string
  default     = "hyperbola"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.repository_id))
    error_message = "The repository id must be lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "reader_members" {
  description = "IAM members allowed to pull (for example serviceAccount:NODES@PROJECT.iam.gserviceaccount.com)."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels put on the repository."
  type        = map(string)
  default     = {}
}
