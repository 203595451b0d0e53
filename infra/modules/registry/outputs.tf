output "repository_id" {
  description = "Repository id."
  value       = google_artifact_registry_repository.this.repository_id
}

output "repository_url" {
  description = "Docker path prefix of the repository: LOCATION-docker.pkg.dev/PROJECT/REPOSITORY_ID."
  value       = "${google_artifact_registry_repository.this.location}-docker.pkg.dev/${google_artifact_registry_repository.this.project}/${google_artifact_registry_repository.this.repository_id}"
}
