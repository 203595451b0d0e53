output "host" {
  description = "Private IP of the instance (REDIS_HOST)."
  value       = google_redis_instance.this.host
}

output "port" {
  description = "Port of the instance (REDIS_PORT): 6378, the TLS port, with in-transit encryption."
  value       = google_redis_instance.this.port
}

output "auth_enabled" {
  description = "AUTH is on: the control plane needs auth_string (REDIS_PASSWORD). Known at plan."
  value       = local.auth_enabled
}

output "tls" {
  description = "In-transit encryption (server authentication) is on: the control plane needs ca_pem (HYPERBOLA_REDIS_CA). Known at plan."
  value       = local.tls
}

output "auth_string" {
  description = "AUTH string of the instance (REDIS_PASSWORD): keep it in Secret Manager, as control-plane does."
  value       = google_redis_instance.this.auth_string
  sensitive   = true
}

output "ca_pem" {
  description = "PEM of the CAs that sign the instance's server certificate (HYPERBOLA_REDIS_CA): every one listed, so a rotation's new CA is trusted before the server switches to it."
  value       = join("", [for c in google_redis_instance.this.server_ca_certs : c.cert])
}

output "tier" {
  description = "Tier the instance runs in."
  value       = google_redis_instance.this.tier
}
