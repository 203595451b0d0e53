provider "google" {
  project = var.project_id
  region  = var.region
}

# The operator's own credentials (gcloud auth application-default login) reach the cluster's
# public endpoint to install the add-ons. The token is short-lived, which is fine for one
# apply.
data "google_client_config" "current" {}

provider "kubernetes" {
  host                   = "https://${module.gke.endpoint}"
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = base64decode(module.gke.ca_certificate)
}

provider "helm" {
  kubernetes = {
    host                   = "https://${module.gke.endpoint}"
    token                  = data.google_client_config.current.access_token
    cluster_ca_certificate = base64decode(module.gke.ca_certificate)
  }
}
