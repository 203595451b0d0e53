output "api_email" {
  description = "Email of session-api's service account (its Kubernetes username under GKE)."
  value       = google_service_account.workload["api"].email
}

output "sweep_email" {
  description = "Email of idle-sweep's service account (its Kubernetes username under GKE)."
  value       = google_service_account.workload["sweep"].email
}

output "scheduler_email" {
  description = "Email of the service account Cloud Scheduler signs idle-sweep's OIDC tokens as."
  value       = google_service_account.scheduler.email
}

output "project_roles" {
  description = "Project-level roles granted to each workload service account, for review."
  value       = { for k, v in google_project_iam_member.workload : k => v.role }
}
