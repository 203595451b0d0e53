# Artifact Registry Docker repository for the control plane's image (built from
# ./functions/cmd/server) and, optionally, the workspace image. The GKE nodes may pull from it;
# Cloud Run pulls through its own service agent, which has access within the project.
resource "google_artifact_registry_repository" "this" {
  project       = var.project_id
  location      = var.location
  repository_id = var.repository_id
  format        = "DOCKER"
  description   = "Hyperbola images: the control plane (session-api, idle-sweep) and workspace images."
  labels        = var.labels
}

resource "google_artifact_registry_repository_iam_member" "readers" {
  for_each = toset(var.reader_members)

  project    = google_artifact_registry_repository.this.project
  location   = google_artifact_registry_repository.this.location
  repository = google_artifact_registry_repository.this.name
  role       = "roles/artifactregistry.reader"
  member     = each.value
}
