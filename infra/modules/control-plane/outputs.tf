output "api_url" {
  description = "URL of session-api."
  value       = google_cloud_run_v2_service.this["api"].uri
}

output "api_host" {
  description = "Host name of session-api (for an ExternalName Service or an Ingress upstream-vhost)."
  value       = trimprefix(google_cloud_run_v2_service.this["api"].uri, "https://")
}

output "sweep_url" {
  description = "URL of idle-sweep (invocable only by the scheduler's service account)."
  value       = google_cloud_run_v2_service.this["sweep"].uri
}

output "sweep_audience" {
  description = "OIDC audience of the scheduler's tokens (SWEEP_OIDC_AUDIENCE)."
  value       = local.sweep_audience
}

output "api_keys_secret_id" {
  description = "Secret Manager secret holding session-api's API keys (comma-separated)."
  value       = google_secret_manager_secret.api_keys["api"].secret_id
}

output "sweep_keys_secret_id" {
  description = "Secret Manager secret holding idle-sweep's own API key."
  value       = google_secret_manager_secret.api_keys["sweep"].secret_id
}

output "api_key" {
  description = "The first session-api API key."
  value       = random_password.api_key["api-0"].result
  sensitive   = true
}

output "named_api_keys_secret_id" {
  description = "Secret Manager secret holding session-api's named keys with roles (API_KEYS_JSON); null without api_key_roles."
  value       = length(var.api_key_roles) > 0 ? google_secret_manager_secret.named_api_keys[0].secret_id : null
}

output "named_api_keys" {
  description = "The named keys by name (api_key_roles), to hand to each holder."
  value       = { for name, p in random_password.named_api_key : name => p.result }
  sensitive   = true
}

output "scheduler_job_name" {
  description = "Name of the Cloud Scheduler job (run it by hand with gcloud scheduler jobs run)."
  value       = google_cloud_scheduler_job.idle_sweep.name
}

output "activator_host" {
  description = "HYPERBOLA_ACTIVATOR_HOST given to both services (session-api's run.app host), or null with wake_on_access off."
  value       = var.wake_on_access ? local.activator_host : null
}

output "wake_secret_id" {
  description = "Secret Manager secret holding HYPERBOLA_WAKE_SECRET, or null with wake_on_access off."
  value       = var.wake_on_access ? google_secret_manager_secret.wake[0].secret_id : null
}

output "trusted_proxies" {
  description = "The trusted proxies passed as HYPERBOLA_TRUSTED_PROXIES (unless extra_env overrides it)."
  value       = var.trusted_proxies
}

output "activity_url" {
  description = "HYPERBOLA_ACTIVITY_URL given to both services (where workspaces report use), or null when workspaces get none."
  value       = local.activity_url == "" ? null : local.activity_url
}

output "activity_key_secret_id" {
  description = "Secret Manager secret holding HYPERBOLA_ACTIVITY_KEY, the key of the workspaces' activity credentials."
  value       = google_secret_manager_secret.activity.secret_id
}
