terraform {
  required_providers {
    hyperbola = {
      source = "hyperbola-in/hyperbola"
    }
  }
}

# Endpoint mode: through a deployed Hyperbola API (`make run` starts one on
# http://127.0.0.1:8080). Both settings fall back to HYPERBOLA_ENDPOINT and
# HYPERBOLA_API_KEY, so `provider "hyperbola" {}` is enough when they are exported.
provider "hyperbola" {
  endpoint = "http://127.0.0.1:8080"
  api_key  = var.hyperbola_api_key
}

variable "hyperbola_api_key" {
  type        = string
  sensitive   = true
  default     = null # null: HYPERBOLA_API_KEY
  description = "API key of the Hyperbola API."
}

# Direct mode: the provider runs Hyperbola's session core itself, against the
# cluster and the Redis that hold the workspaces (no API in between).
#
# provider "hyperbola" {
#   kubeconfig   = pathexpand("~/.kube/config") # or kube_endpoint + kube_ca, or in-cluster
#   kube_context = "gke_my-project_europe-west1_hyperbola"
#   redis_url    = "redis://10.0.0.3:6379/0"
#   namespace    = "hyperbola"
#   domain       = "preview.example.com"
# }
