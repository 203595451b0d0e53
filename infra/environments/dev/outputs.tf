output "api_url" {
  description = "Base URL of the HTTP API (session-api): point clients and the provider's endpoint here."
  value       = module.control_plane.api_url
}

output "api_keys_secret" {
  description = "Secret Manager secret with session-api's API keys, comma-separated."
  value       = module.control_plane.api_keys_secret_id
}

output "api_key_command" {
  description = "Prints the first API key from Secret Manager."
  value       = "gcloud secrets versions access latest --secret=${module.control_plane.api_keys_secret_id} --project=${var.project_id} | cut -d, -f1"
}

output "api_key" {
  description = "The first API key (terraform output -raw api_key)."
  value       = module.control_plane.api_key
  sensitive   = true
}

output "idle_sweep_url" {
  description = "URL of idle-sweep (only the scheduler's service account may invoke it)."
  value       = module.control_plane.sweep_url
}

output "scheduler_job" {
  description = "Cloud Scheduler job that calls idle-sweep every minute."
  value       = module.control_plane.scheduler_job_name
}

output "functions_image" {
  description = "Image both Cloud Run services run."
  value       = local.functions_image
}

output "backup_image" {
  description = "Image of the backup Jobs (HYPERBOLA_BACKUP_IMAGE): push it before the second apply (infra/cloudbuild/images.yaml)."
  value       = local.backup_image
}

output "workspace_image" {
  description = "Default workspace image (USER_POD_IMAGE)."
  value       = local.workspace_image
}

output "image_repository" {
  description = "Artifact Registry path to push images to."
  value       = module.registry.repository_url
}

output "routing" {
  description = "How workspace hosts are served (HYPERBOLA_ROUTING): gateway or ingress."
  value       = var.routing
}

output "ingress_ip" {
  description = "External IP of ingress-nginx, or null without it (gateway routing after the migration)."
  value       = module.cluster_addons.ingress_ip
}

output "gateway_ip" {
  description = "The Gateway's reserved global address (gateway routing), or null."
  value       = one(module.gateway[*].address)
}

output "wildcard_dns_record" {
  description = "DNS record to create (unless dns_managed_zone did it) so workspace URLs resolve; it names the entry point wildcard_dns_target chooses."
  value       = "*.${var.domain}. 300 IN A ${local.entry_ip}"
}

output "dns_authorization_record" {
  description = "Gateway routing: the record that lets Google issue the wildcard certificate (created with dns_managed_zone; otherwise create it yourself). Null with ingress routing."
  value       = one(module.gateway[*].dns_authorization_record)
}

output "certificate" {
  description = "Gateway routing: the Certificate Manager certificate (gcloud certificate-manager certificates describe NAME: state ACTIVE once issued), or null."
  value       = one(module.gateway[*].certificate)
}

output "cluster_name" {
  description = "GKE cluster name."
  value       = module.gke.name
}

output "get_credentials_command" {
  description = "Configures kubectl for the cluster."
  value       = "gcloud container clusters get-credentials ${module.gke.name} --zone ${module.gke.location} --project ${var.project_id}"
}

output "namespace" {
  description = "Namespace of the workspaces."
  value       = module.cluster_addons.namespace
}

output "redis_host" {
  description = "Private address of Memorystore (reachable only from the VPC)."
  value       = "${module.redis.host}:${module.redis.port}"
}

output "control_plane_service_accounts" {
  description = "Service accounts of session-api, idle-sweep and the scheduler."
  value = {
    api       = module.identities.api_email
    sweep     = module.identities.sweep_email
    scheduler = module.identities.scheduler_email
  }
}

output "provider_block" {
  description = "Terraform provider configuration for the hyperbola provider (set api_key from the secret or an environment variable)."
  value       = <<-EOT
    provider "hyperbola" {
      endpoint = "${module.control_plane.api_url}"
      api_key  = var.hyperbola_api_key # gcloud secrets versions access latest --secret=${module.control_plane.api_keys_secret_id} | cut -d, -f1
    }
  EOT
}

output "activator_host" {
  description = "HYPERBOLA_ACTIVATOR_HOST (session-api's run.app host, also the hyperbola-activator Service's target), or null with wake_on_access off."
  value       = module.control_plane.activator_host
}

output "wake_secret" {
  description = "Secret Manager secret holding HYPERBOLA_WAKE_SECRET, or null with wake_on_access off."
  value       = module.control_plane.wake_secret_id
}

output "activity_url" {
  description = "HYPERBOLA_ACTIVITY_URL: where workspaces report real use, or null when they get none."
  value       = module.control_plane.activity_url
}

output "activity_key_secret" {
  description = "Secret Manager secret holding HYPERBOLA_ACTIVITY_KEY (the key of the workspaces' activity credentials)."
  value       = module.control_plane.activity_key_secret_id
}

output "trusted_proxies" {
  description = "HYPERBOLA_TRUSTED_PROXIES of both services: Cloud Run's front end, the cluster's egress (with wake_on_access) and extra_trusted_proxies."
  value       = module.control_plane.trusted_proxies
}

output "nat_ips" {
  description = "Reserved Cloud NAT addresses of the nodes (their internet egress); empty with nat_ip_count = 0."
  value       = module.network.nat_ips
}

output "named_api_keys" {
  description = "The named keys with roles by name (api_key_roles): terraform output -json named_api_keys."
  value       = module.control_plane.named_api_keys
  sensitive   = true
}
