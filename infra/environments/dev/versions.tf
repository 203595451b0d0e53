terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State is local by default. For anything shared, keep it in a GCS bucket with versioning
  # (it holds the generated API keys): create the bucket, then uncomment and `terraform init
  # -migrate-state`.
  # backend "gcs" {
  #   bucket = "PROJECT-tfstate"
  #   prefix = "hyperbola/dev"
  # }
}
