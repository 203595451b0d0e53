# Not part of the generated docs: makes this directory a root module that
# `terraform apply` runs as is (the provider reads HYPERBOLA_ENDPOINT and
# HYPERBOLA_API_KEY, or HYPERBOLA_REDIS_URL for direct mode, from the environment).
terraform {
  required_providers {
    hyperbola = {
      source = "hyperbola-in/hyperbola"
    }
  }
}

provider "hyperbola" {}
